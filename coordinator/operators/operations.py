"""Long operations as resources: an id, a state, progress, a result; polled or watched.

An operator's long call (creating a seeded sandbox, a diff) returns at once with an
operation; its work runs in a thread of its own and reports progress here, and callers
read it (`get`) or wait for its next change (`wait_change`). Finished operations are
kept for `RETENTION_MS` and at most `KEPT_MAX` of them, then forgotten (an id unknown
then is NOT_FOUND). They live in the coordinator's memory: a restart forgets them, and
the resources they made (a sandbox) say on their own what state they are in.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from coordinator.clock import Clock
from grid.errors import GridError, NotFound

log = logging.getLogger(__name__)

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
RETENTION_MS = 3_600_000
KEPT_MAX = 256


@dataclass(frozen=True)
class OperationView:
    id: str
    kind: str
    subject: str
    state: str = RUNNING
    phase: str = ""
    done: int = 0
    total: int = 0
    unit: str = ""
    started_at_ms: int = 0
    finished_at_ms: int = 0
    error_code: str = ""
    error: str = ""
    result: Any = None
    # Bumped on every change, so a watcher knows whether it has seen this state.
    revision: int = 0

    @property
    def finished(self) -> bool:
        return self.state != RUNNING


@dataclass
class Progress:
    """What the work of an operation holds to report how far it got."""

    _operations: Operations
    operation_id: str
    cancelled: threading.Event = field(default_factory=threading.Event)

    def phase(self, phase: str, *, total: int = 0, unit: str = "") -> None:
        self._operations._update(self.operation_id, phase=phase, done=0, total=total, unit=unit)

    def advance(self, done: int, total: int | None = None) -> None:
        changes: dict[str, Any] = {"done": done}
        if total is not None:
            changes["total"] = total
        self._operations._update(self.operation_id, **changes)


Work = Callable[[Progress], Any]


class Operations:
    """Every operation of this coordinator; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._views: dict[str, OperationView] = {}
        self._changed = threading.Condition()

    def start(self, kind: str, subject: str, work: Work, *, phase: str = "") -> OperationView:
        """Runs `work(progress)` in a thread of its own; its return value is the result,
        a GridError it raises fails the operation with that status, anything else with
        INTERNAL (logged)."""
        operation_id = f"{kind}-{os.urandom(6).hex()}"
        view = OperationView(
            id=operation_id,
            kind=kind,
            subject=subject,
            phase=phase,
            started_at_ms=self._clock.now_ms(),
        )
        with self._changed:
            self._forget_old()
            self._views[operation_id] = view
        progress = Progress(self, operation_id)
        thread = threading.Thread(
            target=self._run, args=(work, progress), name=f"operation-{operation_id}", daemon=True
        )
        thread.start()
        return view

    def _run(self, work: Work, progress: Progress) -> None:
        operation_id = progress.operation_id
        try:
            result = work(progress)
        except GridError as error:
            log.info("operation %s failed: %s: %s", operation_id, error.status, error.message)
            self._update(
                operation_id,
                state=FAILED,
                error_code=error.status,
                error=error.message,
                finished_at_ms=self._clock.now_ms(),
            )
        except Exception as error:
            log.exception("operation %s failed", operation_id)
            self._update(
                operation_id,
                state=FAILED,
                error_code="INTERNAL",
                error=f"{type(error).__name__}: {error}",
                finished_at_ms=self._clock.now_ms(),
            )
        else:
            self._update(
                operation_id,
                state=SUCCEEDED,
                phase="done",
                result=result,
                finished_at_ms=self._clock.now_ms(),
            )

    def _update(self, operation_id: str, **changes: Any) -> None:
        with self._changed:
            view = self._views.get(operation_id)
            if view is None:
                return
            self._views[operation_id] = replace(view, revision=view.revision + 1, **changes)
            self._changed.notify_all()

    def get(self, operation_id: str) -> OperationView:
        with self._changed:
            view = self._views.get(operation_id)
        if view is None:
            raise NotFound(
                f"no operation '{operation_id}' (unknown, or finished more than an hour ago)",
                field="id",
            )
        return view

    def wait_change(self, operation_id: str, seen_revision: int, timeout_s: float) -> OperationView:
        """The operation once its revision is past `seen_revision`, or as it is after
        `timeout_s`."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    (view := self._views.get(operation_id)) is None or view.revision > seen_revision
                ),
                timeout_s,
            )
        return self.get(operation_id)

    def _forget_old(self) -> None:
        now_ms = self._clock.now_ms()
        finished = sorted(
            (view for view in self._views.values() if view.finished),
            key=lambda view: view.finished_at_ms,
        )
        for position, view in enumerate(finished):
            too_many = len(finished) - position > KEPT_MAX
            if too_many or now_ms - view.finished_at_ms > RETENTION_MS:
                del self._views[view.id]
