"""The commit sequence of a shared store, as the transaction manager uses it.

Several coordinators on one store share one order of commits: the numbers come from the store
(grid/redis/sequence.py: a counter and the numbers in flight, with leases by the store's clock),
and the read version is the newest number below every number in flight, so a read at it sees
each commit on all of its partitions or on none, whichever coordinator made it. Nothing is held
in this process, so commits made here run concurrently (the store orders them; a one-phase step
that finds a later-numbered commit already on its keys refuses, grid.errors.StaleVersion, and the
manager applies it again with a new number). The horizon is this coordinator's own sample of the
read versions it saw: it starts at 0 (keep everything) and trails the read version by the
window, so a coordinator that just started forgets nothing another's readers may still use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from coordinator.clock import Clock
from coordinator.transactions.sequence import Horizon


class StoreSequence(Protocol):
    """What a shared backend's commit sequence provides (grid.redis.sequence)."""

    def take(self, owner: str) -> int: ...

    def release(self, number: int) -> None: ...

    def read_version(self) -> int: ...

    def expired(self, scan_max: int = 1000) -> list[tuple[int, str]]: ...


class StoreCommitSequence:
    def __init__(self, store: StoreSequence, clock: Clock, *, window_ms: int = 5000) -> None:
        self.store = store
        self.window_ms = window_ms
        self._horizon = Horizon(0, clock, window_ms)

    @contextmanager
    def commit(self, owner: bytes = b"") -> Iterator[int]:
        """Holds a number for `owner` (a transaction id) while the caller applies its commit.

        A transaction holding a number already gets the same one: a recovery sweeper finishing
        a transaction its coordinator left half-committed commits it at the number the
        partitions already committed were given."""
        number = self.store.take((owner or os.urandom(16)).hex())
        try:
            yield number
        finally:
            # A commit that failed (a conflict) leaves a gap: numbers need not be dense.
            self.store.release(number)

    def read_version(self) -> int:
        # At least 1: a read version of 0 means "none" on the wire (the latest value).
        visible = max(self.store.read_version(), 1)
        self._horizon.note(visible)
        return visible

    def horizon(self) -> int:
        return self._horizon.note(max(self.store.read_version(), 1))

    def expired(self) -> list[tuple[int, str]]:
        """Numbers held past their lease (by the store's clock), with their holders."""
        return self.store.expired()

    def release(self, number: int) -> None:
        self.store.release(number)
