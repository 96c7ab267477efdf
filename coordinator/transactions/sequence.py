"""The commit sequence: one total order of commits, the same on every partition.

Every commit (one phase or three, a plain put, a batch, a pipeline's batch, a
recovered transaction) takes the next number of the sequence and applies to all
of its partitions while it holds that number; the number is the version of every
key it writes. Holding the sequence while applying makes two things true at once:
a commit's partitions apply commits in sequence order (so appends, whose order is
visible, end in the same order on every partition), and a number is *visible* (a
read version, see `read_version`) only once its commit is applied everywhere, so a
read at a version sees each transaction on all of its partitions or on none.

Only the in-memory steps run inside; waiting for the log to reach the disk happens
after, so commits still share their fsyncs. With several coordinators on a shared
store the number comes from a counter in the store (see docs/architecture/commit-order.md).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from coordinator.clock import Clock
from grid.backend import PartitionStore
from grid.participant import ApplyOnePhase, Reply

# How many (time, version) samples the horizon keeps; one per sample interval.
SAMPLES_MAX = 4096


class Horizon:
    """The oldest version reads may still use: the read version that was visible `window_ms`
    ago, from samples of the visible version (one per window/64, so the horizon trails by
    at most that much: versions are kept a little longer, never less)."""

    def __init__(self, start: int, clock: Clock, window_ms: int) -> None:
        self._clock = clock
        self.window_ms = window_ms
        # (time, visible version) samples, oldest first.
        self._samples: deque[tuple[int, int]] = deque()
        self._lock = threading.Lock()
        self._sample_interval_ms = max(1, window_ms // 64)
        self.version = start

    def note(self, visible: int) -> int:
        """Samples the visible version now; returns the horizon."""
        now_ms = self._clock.now_ms()
        with self._lock:
            samples = self._samples
            if not samples or now_ms - samples[-1][0] >= self._sample_interval_ms:
                samples.append((now_ms, visible))
                if len(samples) > SAMPLES_MAX:
                    self.version = max(self.version, samples.popleft()[1])
            elif samples[-1][0] == now_ms:
                samples[-1] = (now_ms, visible)
            cutoff = now_ms - self.window_ms
            # A version sampled at or before the cutoff was visible then; the newest wins.
            while samples and samples[0][0] <= cutoff:
                self.version = max(self.version, samples.popleft()[1])
            if self.window_ms == 0:
                self.version = visible
            return self.version


class CommitOrder(Protocol):
    """What the manager needs of a commit sequence: in process (`CommitSequence`) or in a
    shared store (coordinator.transactions.store_sequence)."""

    def commit(
        self, owner: bytes = b"", *, several_steps: bool = False
    ) -> AbstractContextManager[int]: ...

    def read_version(self) -> int: ...

    def horizon(self) -> int: ...

    def deadline(self, number: int) -> int:
        """When a held number's lease ends (0: never, in process)."""
        ...

    def apply_last(
        self, store: PartitionStore, event: ApplyOnePhase
    ) -> tuple[Reply, Callable[[], None]]:
        """Applies the last step of a commit holding `event.version` (`store.apply`); a
        shared store may give the number back in the same round trip."""
        ...


class CommitSequence:
    def __init__(self, start: int, clock: Clock, *, window_ms: int = 5000) -> None:
        self._lock = threading.Lock()
        self.window_ms = window_ms
        # The last number handed out, and the last whose commit is applied everywhere.
        # At least 1: a read version of 0 means "none" on the wire (the latest value).
        start = max(start, 1)
        self._last = start
        self._visible = start
        self._horizon = Horizon(start, clock, window_ms)

    @contextmanager
    def commit(self, owner: bytes = b"", *, several_steps: bool = False) -> Iterator[int]:
        """Holds the next number of the sequence while the caller applies its commit
        (`owner`, the transaction, and `several_steps` matter only to a shared store's
        sequence: coordinator.transactions.store_sequence)."""
        with self._lock:
            version = self._last + 1
            self._last = version
            try:
                yield version
            finally:
                # A commit that failed (a conflict) leaves a gap: numbers need not be dense.
                self._visible = version
                self._horizon.note(version)

    def read_version(self) -> int:
        """The newest version whose commits are all applied: a consistent point to read at."""
        return self._visible

    def deadline(self, number: int) -> int:
        return 0

    def apply_last(
        self, store: PartitionStore, event: ApplyOnePhase
    ) -> tuple[Reply, Callable[[], None]]:
        return store.apply(event)

    def horizon(self) -> int:
        """The oldest version reads may still use: what was visible `window_ms` ago."""
        return self._horizon.note(self._visible)
