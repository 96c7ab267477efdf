"""Read versions in use: readers reading now hold the horizon back so their states stay kept.

A long read at one version (an SQL snapshot build, an export, a sandbox seed, a scan at a
read version) needs the overwritten states that ended after its version until it is done,
however long that takes on a big, busy grid. While it is registered here, the horizon passed
to the partitions (what may be dropped by age) stays at or below the oldest registered read
version; the byte budget still drops states oldest first, and a reader that loses one that
way is refused "read version too old" as before (the partitions' floor says so).

The hot path pays one truthiness test of a dict when nobody is registered: no lock, no scan.
On a shared store this holds only the horizon this coordinator passes; another coordinator's
commits forget by their own (see docs/architecture/transactions.md, "Why read versions").
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Readers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # token -> the read version it holds the horizon at.
        self._held: dict[int, int] = {}
        self._tokens = itertools.count(1)

    @contextmanager
    def holding(self, take: Callable[[], int]) -> Iterator[int]:
        """Registers a reader, then takes its read version with `take` (which checks it is
        still kept), holds the horizon at it while the caller reads, and lets go on every
        way out (an exception, a generator closed by a cancelled stream)."""
        token = next(self._tokens)
        # Held at 0 while the version is taken: a horizon computed meanwhile cannot pass
        # the version about to be taken, and `take` checks it against the horizon after.
        with self._lock:
            self._held[token] = 0
        try:
            version = take()
            with self._lock:
                self._held[token] = version
            yield version
        finally:
            with self._lock:
                del self._held[token]

    def cap(self, horizon: int) -> int:
        """The horizon no further than the oldest read version held."""
        if not self._held:
            return horizon
        with self._lock:
            oldest = min(self._held.values(), default=horizon)
        return min(horizon, oldest)

    def oldest(self) -> int | None:
        """The oldest read version held (None: nobody reads), for metrics and tests."""
        with self._lock:
            return min(self._held.values(), default=None)
