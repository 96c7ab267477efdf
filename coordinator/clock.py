"""Time and randomness, passed into everything with timeouts, leases, TTLs or retries.

Tests pass a `ManualClock` and a seeded `random.Random`, so a failure replays from its seed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the epoch (leases are compared across processes)."""
        ...

    def sleep_s(self, seconds: float) -> None: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep_s(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; `sleep_s` advances it."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now_ms

    def sleep_s(self, seconds: float) -> None:
        self.advance_ms(int(seconds * 1000))

    def advance_ms(self, milliseconds: int) -> None:
        with self._lock:
            self._now_ms += milliseconds


class StoreClock:
    """The clock of a shared store, for leases every coordinator compares alike.

    Reading the store's time on every call would cost a round trip per lease, so the offset
    between the store's clock and this process's is measured (at most every `refresh_s`) and
    added to the local clock: what the coordinators' clocks say stops mattering, and the
    drift of a process's clock between two measurements is far below a lease."""

    def __init__(self, store_time_ms: Callable[[], int], refresh_s: float = 1.0) -> None:
        self._store_time_ms = store_time_ms
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._measured = -refresh_s

    def now_ms(self) -> int:
        local = time.monotonic()
        if local - self._measured >= self._refresh_s:
            with self._lock:
                if local - self._measured >= self._refresh_s:
                    before = time.time_ns() // 1_000_000
                    store = self._store_time_ms()
                    after = time.time_ns() // 1_000_000
                    self._offset_ms = store - (before + after) // 2
                    self._measured = local
        return time.time_ns() // 1_000_000 + self._offset_ms

    def sleep_s(self, seconds: float) -> None:
        time.sleep(seconds)
