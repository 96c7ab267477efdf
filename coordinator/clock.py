"""Time and randomness, passed into everything with timeouts, leases, TTLs or retries.

Tests pass a `ManualClock` and a seeded `random.Random`, so a failure replays from its seed.
"""

from __future__ import annotations

import threading
import time
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
