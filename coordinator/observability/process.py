"""Process metrics beside the resident size (coordinator/memory.py): the memory limit
the process runs under and the pauses of Python's garbage collector."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from coordinator.metrics import SHORT_BUCKETS_S, Registry

CGROUP_MEMORY_MAX = "/sys/fs/cgroup/memory.max"
CGROUP_V1_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"


def memory_limit_bytes() -> int:
    """The cgroup's memory limit, else the machine's memory (0 where neither is known)."""
    for path in (CGROUP_MEMORY_MAX, CGROUP_V1_LIMIT):
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0


class GarbageCollectorPauses:
    """Times every collection through `gc.callbacks`, by generation."""

    def __init__(self, metrics: Registry) -> None:
        histogram = metrics.histogram(
            "shoal_gc_pause_seconds",
            "time of one garbage collection, by generation",
            ("generation",),
            SHORT_BUCKETS_S,
        )
        self._children = [histogram.labels(generation=str(index)) for index in range(3)]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            generation = min(int(info.get("generation", 0)), 2)
            self._children[generation].observe(time.perf_counter() - self._started)
            self._started = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


def collect_limit() -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "shoal_process_memory_limit_bytes",
        "memory the process may use (its cgroup's limit, else the machine's memory)",
        memory_limit_bytes(),
    )
