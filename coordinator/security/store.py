"""The auth records in the grid's system map `__auth`, so every coordinator sharing the
grid sees the same tokens and grants.

Each coordinator keeps an `AuthState` snapshot and reads the map again every
`refresh_ms` (250 ms): a revoked token stops working everywhere within that period
plus a call. Changes are read-modify-write transactions on the records they touch
(a conflict with another coordinator's change is retried).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from coordinator.clock import Clock
from coordinator.keyvalue import KeyValue
from coordinator.security.permissions import AUTH_MAP
from coordinator.security.state import AuthState
from grid.catalog import Catalog
from grid.entry import value_of, version_of
from grid.errors import Conflict
from grid.memory.records import Op
from grid.protocol import Read, Write

log = logging.getLogger(__name__)

REFRESH_MS = 250
ATTEMPTS_MAX = 20
Commit = Callable[[Sequence[Read], Sequence[Write]], Any]
Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class AuthStore:
    def __init__(
        self,
        keyvalue: KeyValue,
        catalog: Catalog,
        commit: Commit,
        clock: Clock,
        *,
        refresh_ms: int = REFRESH_MS,
    ) -> None:
        self._keyvalue = keyvalue
        self._commit = commit
        self.clock = clock
        self._refresh_s = refresh_ms / 1000
        catalog.create_system(AUTH_MAP, now_ms=clock.now_ms())
        self._seen: dict[str, bytes] = {}
        self.state = AuthState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()

    # Reading ------------------------------------------------------------------------

    def refresh(self) -> AuthState:
        """Reads the map; builds a new snapshot only when a record changed."""
        entries: dict[str, bytes] = {}
        for chunk in self._keyvalue.scan(AUTH_MAP):
            entries.update(chunk)
        with self._lock:
            if entries != self._seen:
                records = {}
                for key, entry in entries.items():
                    try:
                        records[key] = orjson.loads(value_of(entry))
                    except orjson.JSONDecodeError:
                        continue
                self.state = AuthState.from_records(records)
                self._seen = entries
            return self.state

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="auth-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:
                # The grid closing under the last refresh, or a store briefly away: the
                # previous snapshot stays in force and the next period tries again.
                log.warning(
                    "reading the auth map failed; keeping the previous state", exc_info=True
                )

    # Writing ------------------------------------------------------------------------

    def update(self, changes: dict[str, Change]) -> dict[str, dict[str, Any] | None]:
        """Applies each key's change (document or None → document, or None to delete) in
        one transaction conditional on what was read; returns the new documents."""
        for _ in range(ATTEMPTS_MAX):
            reads: list[Read] = []
            writes: list[Write] = []
            results: dict[str, dict[str, Any] | None] = {}
            for key, change in changes.items():
                entry = self._keyvalue.get(AUTH_MAP, key)
                version = 0 if entry is None else version_of(entry)
                current = None if entry is None else orjson.loads(value_of(entry))
                new = change(current)
                results[key] = new
                reads.append(Read(AUTH_MAP, key, version))
                if new is not None:
                    writes.append(Write(Op.PUT, AUTH_MAP, key, orjson.dumps(new)))
                elif entry is not None:
                    writes.append(Write(Op.DELETE, AUTH_MAP, key))
            try:
                self._commit(reads, writes)
            except Conflict:
                continue
            self.refresh()
            return results
        raise Conflict("the auth map kept changing under this update; retry")

    def put(self, key: str, document: dict[str, Any]) -> None:
        self.update({key: lambda _: document})


def system_commit(manager: Any) -> Commit:
    """The coordinator's own commit into a system map."""

    def commit(reads: Sequence[Read], writes: Sequence[Write]) -> Any:
        return manager.commit(os.urandom(16), list(reads), list(writes), system=True)

    return commit
