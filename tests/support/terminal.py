"""A command run on a pseudo-terminal, as a person at a keyboard runs it.

The child gets a new session whose controlling terminal is the pty, so typing Ctrl-C
(``press_ctrl_c``) makes the terminal send SIGINT to it, exactly as in a real terminal,
and ``isatty()`` is true for its standard streams (prompts, progress lines).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from types import TracebackType

# Runs in the child before the command: a new session, then the pty (its standard input)
# becomes the session's controlling terminal.
_ATTACH_AND_EXEC = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    def __init__(self, command: Sequence[str], *, columns: int = 200) -> None:
        self._master, replica = os.openpty()
        fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ATTACH_AND_EXEC, *command],
            stdin=replica,
            stdout=replica,
            stderr=replica,
            close_fds=True,
        )
        os.close(replica)
        self.output = ""

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    def press_ctrl_c(self) -> None:
        os.write(self._master, b"\x03")

    def read_until(self, text: str, *, timeout_s: float, start: int = 0) -> int:
        """Reads until ``text`` appears in the output after ``start``; returns the index
        just past it. Fails, showing the output so far, when it does not in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.output.find(text, start)
            if found >= 0:
                return found + len(text)
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise AssertionError(f"{text!r} did not appear; the terminal shows:\n{self.output}")
            self._read(remaining_s)

    def _read(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self._master], [], [], min(timeout_s, 0.5))
        if not ready:
            return
        try:
            data = os.read(self._master, 65536)
        except OSError:  # the child closed the terminal (EIO): nothing more will come
            data = b""
        if not data:
            if self.process.poll() is None:
                time.sleep(0.05)
            return
        self.output += data.decode(errors="replace")

    def wait(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        return self.process.wait(timeout=max(deadline - time.monotonic(), 0.1))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        os.close(self._master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
