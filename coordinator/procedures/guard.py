"""What keeps a procedure in bounds: its time limit, and no I/O outside ``tx``.

A procedure runs in the thread that serves its call, so its limit cannot be a separate
thread to abandon (it would keep the GIL and its locks). Instead one watchdog thread
keeps every running call's deadline and, when one passes while the call is in the
procedure's own code, raises `ProcedureTimeout` in that thread
(``PyThreadState_SetAsyncExc``, as debuggers do). It is never raised while the call is in
the coordinator's code (a ``tx`` call, the commit): each call says, under its lock, when
it enters and leaves the procedure's code, and a call that leaves finds any interruption
pending for it, clears it, and raises it itself at a place that holds no state. So an
interrupted procedure aborts cleanly: nothing was committed, no lock is held.

An audit hook (PEP 578, installed once per process) refuses, in a thread that is in a
procedure's code, the events that reach outside: files, sockets, processes, sleeping.
Both are raised as BaseException subclasses, so the usual ``except Exception`` of a
procedure does not swallow them; a procedure that swallows them anyway is failed
regardless, as the call remembers why it was stopped.

What cannot be stopped: Python raises an asynchronous exception only between bytecodes,
so a procedure stuck in one long C call (a huge ``sum``, a regex) is interrupted when
that call returns. A call that catches the interruption and goes on is interrupted
again every REPEAT_S while it stays in its code; one that catches every interruption
forever (`except BaseException` around its whole loop) keeps its thread. Nor can the
hook see writes to descriptors already open (`os.write(2, ...)`, `print`) or what a
thread the procedure starts does: procedures are code the operator deploys, and these
bounds catch mistakes, not malice.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
import time
from collections import deque
from typing import Any

log = logging.getLogger(__name__)


class ProcedureTimeout(BaseException):
    """Raised in a procedure's thread when its time limit passes."""


class ProcedureIORefused(BaseException):
    """Raised in a procedure's thread when it reaches outside the grid."""


# Audit events a procedure may not cause, by exact name or by prefix (ending in a dot).
REFUSED_EVENTS = frozenset(
    {
        "open",
        "os.system",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "os.posix_spawn",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.mkdir",
        "os.truncate",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.putenv",
        "os.unsetenv",
        "subprocess.Popen",
        "time.sleep",
        "urllib.Request",
        "shutil.copyfile",
        "shutil.rmtree",
        "shutil.move",
        "ctypes.dlopen",
        "ctypes.call_function",
    }
)
REFUSED_PREFIXES = ("socket.", "os.exec", "os.spawn", "ftplib.", "smtplib.", "http.", "webbrowser")


# How often a call that swallowed its interruption and stayed in its code is interrupted again.
REPEAT_S = 0.05


def _refused(event: str) -> bool:
    return event in REFUSED_EVENTS or event.startswith(REFUSED_PREFIXES)


_current = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, arguments: tuple[Any, ...]) -> None:
    run: Run | None = getattr(_current, "run", None)
    if run is None or not run.in_procedure or not _refused(event):
        return
    refusal = ProcedureIORefused(f"a procedure may not do I/O outside tx (it attempted {event})")
    with run.lock:
        if run.stopped is None:
            run.stopped = refusal
    raise refusal


def install_audit_hook() -> None:
    """Installs the I/O refusal once per process (an audit hook cannot be removed)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> int:
    """Sets (or, with None, clears) the exception pending for a thread."""
    argument: Any = None if exception is None else ctypes.py_object(exception)
    return int(ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), argument))


class Run:
    """One call of a procedure, from its first attempt to its commit; used by its own
    thread (enter/leave) and by the watchdog (interrupt), under its lock."""

    __slots__ = ("deadline_s", "done", "in_procedure", "limit_ms", "lock", "stopped", "thread_id")

    def __init__(self, deadline_s: float, limit_ms: int) -> None:
        self.deadline_s = deadline_s
        self.limit_ms = limit_ms
        self.thread_id = threading.get_ident()
        self.lock = threading.Lock()
        self.in_procedure = False
        self.done = False
        # Why the call was stopped (ProcedureTimeout, ProcedureIORefused), once it was.
        self.stopped: BaseException | None = None

    def enter_procedure(self) -> None:
        """The thread goes (back) into the procedure's code."""
        with self.lock:
            self.in_procedure = True
            stopped = self.stopped
        if stopped is not None:
            raise stopped

    def leave_procedure(self) -> None:
        """The thread comes back to the coordinator's code (a tx call, the commit); raises
        if the call was stopped meanwhile, after clearing what was pending for it."""
        with self.lock:
            self.in_procedure = False
            if self.stopped is None:
                return
            _raise_in(self.thread_id, None)
            stopped = self.stopped
        raise stopped

    def interrupt(self, reason: str) -> bool:
        """Called by the watchdog: stops the call at its next step in procedure code.
        Whether the call is still running: one that caught the interruption and went on
        (`except BaseException` in a loop) is interrupted again until it ends, or it
        would hold its thread forever."""
        with self.lock:
            if self.done:
                return False
            if self.stopped is None:
                self.stopped = ProcedureTimeout(reason)
            if self.in_procedure:
                _raise_in(self.thread_id, ProcedureTimeout)
            return True

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.in_procedure = False


class Watchdog:
    """One thread that interrupts the calls whose deadline passed.

    Every call has the same limit, so deadlines arrive in order and a deque holds them;
    the thread is woken only when the deque was empty, not once per call.
    """

    def __init__(self, limit_ms: int) -> None:
        self.limit_ms = limit_ms
        self._runs: deque[Run] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.limit_ms and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="procedure-watchdog")
            self._thread.daemon = True
            self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def begin(self) -> Run:
        """A run for a call starting now, watched when the limit is not 0."""
        limit_ms = self.limit_ms
        run = Run(time.monotonic() + limit_ms / 1000 if limit_ms else float("inf"), limit_ms)
        _current.run = run
        if limit_ms:
            with self._condition:
                self._runs.append(run)
                if len(self._runs) == 1:
                    self._condition.notify()
        return run

    @staticmethod
    def end(run: Run) -> None:
        run.finish()
        _current.run = None

    def _watch(self) -> None:
        runs = self._runs
        while True:
            with self._condition:
                while not runs and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                first = runs[0]
                wait_s = first.deadline_s - time.monotonic()
                if first.done:
                    runs.popleft()
                    continue
                if wait_s > 0:
                    self._condition.wait(wait_s)
                    continue
                runs.popleft()
            try:
                again = first.interrupt(
                    f"the procedure ran past its time limit of {first.limit_ms} ms"
                )
            except Exception:
                log.exception("could not interrupt a procedure past its time limit")
                again = False
            if again:
                # Looked at again after REPEAT_S, or once the deadlines ahead of it passed.
                first.deadline_s = time.monotonic() + REPEAT_S
                with self._condition:
                    runs.append(first)
