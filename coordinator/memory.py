"""The process's memory: its resident size as metrics, and freed memory handed back.

A large statement or commit leaves the allocators holding the memory it freed: glibc's
heap keeps freed chunks, and Arrow's allocator (mimalloc) keeps freed pages for reuse,
so the resident size stayed near its peak long after the work ended. The keeper samples
the resident size and, when glibc's heap holds `trim_growth_bytes` freed (mallinfo2) or
the resident size has grown by as much since the last trim, asks both allocators to
hand back what they hold free (`malloc_trim(0)` through ctypes on glibc,
`release_unused` on Arrow's pool).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from coordinator.metrics import Registry

log = logging.getLogger(__name__)

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """The resident set size of this process (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def peak_resident_bytes() -> int:
    """The largest resident set size this process has had (VmHWM)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc_free_bytes() -> Callable[[], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallinfo2 = ctypes.CDLL(name).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.argtypes = []
    mallinfo2.restype = _MallInfo2
    return lambda: int(mallinfo2().fordblks)


def held_free_bytes() -> int:
    """Bytes glibc's heap holds freed but not handed back (0 where unknown)."""
    measure = _GLIBC_FREE_BYTES
    return measure() if measure is not None else 0


def _glibc_trim() -> Callable[[], None] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        malloc_trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        # Not glibc (musl has no malloc_trim): nothing to trim.
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return lambda: malloc_trim(0)


def hand_back() -> None:
    """Asks Arrow's pool and glibc's heap to return the memory they hold free."""
    pa.default_memory_pool().release_unused()
    trim = _GLIBC_TRIM
    if trim is not None:
        trim()


_GLIBC_TRIM = _glibc_trim()
_GLIBC_FREE_BYTES = _glibc_free_bytes()


@dataclass
class MemoryKeeper:
    """Keeps the memory gauges current and hands memory back after growth."""

    metrics: Registry
    trim_growth_bytes: int = 64 * 1024 * 1024
    interval_s: float = 5.0
    measure: Callable[[], int] = resident_bytes
    held_free: Callable[[], int] = held_free_bytes
    trim: Callable[[], None] = hand_back
    _trimmed_at_bytes: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._resident = self.metrics.gauge(
            "shoal_process_resident_bytes", "resident set size of the server process"
        )
        self._peak = self.metrics.gauge(
            "shoal_process_resident_peak_bytes", "largest resident set size of the server process"
        )
        self._trims = self.metrics.counter(
            "shoal_memory_trims_total", "times freed memory was handed back to the system"
        )
        self._trimmed_at_bytes = self.measure()

    def sample(self) -> int:
        """Updates the gauges; hands memory back when the heap holds `trim_growth_bytes`
        freed, or (where that cannot be known) the resident size grew by as much since
        the last time. Returns the resident size measured (after any trim)."""
        resident = self.measure()
        threshold = self.trim_growth_bytes
        if threshold and (
            self.held_free() > threshold or resident > self._trimmed_at_bytes + threshold
        ):
            self.trim()
            self._trims.inc()
            resident = self.measure()
            self._trimmed_at_bytes = resident
        elif resident < self._trimmed_at_bytes:
            # Memory came back by itself: growth is counted from the new low.
            self._trimmed_at_bytes = resident
        self._resident.set(resident)
        self._peak.set(max(peak_resident_bytes(), resident))
        return resident

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memory-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.sample()
            except Exception:
                log.exception("sampling the process's memory failed")
