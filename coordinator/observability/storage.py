"""Storage metrics: fsync latency, log bytes written, checkpoint duration (as they happen),
and entries and bytes per map and the log's size (computed when scraped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from coordinator.metrics import LATENCY_BUCKETS_S, SHORT_BUCKETS_S, Registry
from grid.backend import PartitionStore

# Bytes per map walk every entry; a scrape every few seconds need not pay that each time.
MAP_BYTES_REFRESH_S = 30.0


class StorageTelemetry:
    """The memory backend's `StorageObserver`: its disk work as metrics."""

    def __init__(self, metrics: Registry) -> None:
        self._fsync = metrics.histogram(
            "shoal_wal_fsync_seconds", "time of one write-ahead log fsync", buckets=SHORT_BUCKETS_S
        )
        self._written = metrics.counter(
            "shoal_wal_written_bytes_total", "bytes written to the write-ahead logs"
        )
        self._checkpoint = metrics.histogram(
            "shoal_checkpoint_seconds",
            "time of one partition checkpoint",
            buckets=LATENCY_BUCKETS_S,
        )

    def fsynced(self, seconds: float) -> None:
        self._fsync.observe(seconds)

    def appended(self, frame_bytes: int) -> None:
        self._written.inc(frame_bytes)

    def checkpointed(self, seconds: float) -> None:
        self._checkpoint.observe(seconds)


class MapFigures:
    """Entries and bytes per map, and the size of the logs, read at scrape time."""

    def __init__(
        self,
        partitions: Callable[[], Sequence[PartitionStore]],
        *,
        refresh_s: float = MAP_BYTES_REFRESH_S,
    ) -> None:
        self._partitions = partitions
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._bytes: dict[str, int] = {}
        self._bytes_at = -float("inf")

    def collect(self) -> Iterable[Metric]:
        entries: dict[str, int] = {}
        log_bytes = 0
        partitions = self._partitions()
        refresh = time.monotonic() - self._bytes_at >= self._refresh_s
        sizes: dict[str, int] = {}
        for partition in partitions:
            segments = getattr(getattr(partition, "participant", None), "segments", {})
            for name, segment in list(segments.items()):
                entries[name] = entries.get(name, 0) + len(segment.entries)
                if refresh:
                    sizes[name] = sizes.get(name, 0) + segment.memory_bytes()
            # A property of the memory backend's partitions; other backends have no log.
            log_bytes += int(getattr(partition, "log_bytes", 0))
        with self._lock:
            if refresh:
                self._bytes, self._bytes_at = sizes, time.monotonic()
            known_bytes = dict(self._bytes)
        entry_family = GaugeMetricFamily(
            "shoal_map_entries", "entries stored in a map", labels=("map",)
        )
        bytes_family = GaugeMetricFamily(
            "shoal_map_bytes",
            "estimated bytes held by a map's entries (refreshed at most every 30 s)",
            labels=("map",),
        )
        for name in sorted(entries):
            entry_family.add_metric((name,), entries[name])
            bytes_family.add_metric((name,), known_bytes.get(name, 0))
        yield entry_family
        yield bytes_family
        yield GaugeMetricFamily(
            "shoal_wal_bytes", "bytes of the write-ahead logs not yet checkpointed", log_bytes
        )
