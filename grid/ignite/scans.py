"""One scan of a map's entries cache serving every partition's read at a version.

A map's entries live in one cache for every partition and namespace (grid/ignite/records.py),
and Ignite keeps no index of our partitions, so a partition's entries are found by scanning the
whole cache: an SQL image of a map on 64 partitions scanned it 64 times. A scan serves any read
at a version ``v`` if it started after every commit numbered up to ``v`` had applied (the read
version at its start is at least ``v``): an entry it found no newer than ``v`` is the key's
state at ``v`` (a later commit gives the key a later version), and the rest are read from kept
states under the partition's lock (grid/ignite/partition.py ``items_at``). So one scan, kept for
a moment, answers all the partitions of one snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grid.ignite.records import entries_cache_name

# How long a scan is offered to later reads (each still checks its read version against it).
KEEP_S = 2.0


@dataclass(frozen=True)
class _Scan:
    read_version: int
    taken_s: float
    by_partition: dict[int, dict[str, bytes]]


class MapScans:
    def __init__(
        self,
        scan_caches: Callable[[str], Any],
        read_version: Callable[[], int],
        namespace: str,
    ) -> None:
        self._scan_caches = scan_caches
        self._read_version = read_version
        self._prefix = f"{namespace}|p"
        self._lock = threading.Lock()
        self._scans: dict[str, _Scan] = {}
        # Whole-cache scans made (a count for tests).
        self.scans_made = 0

    def entries(self, map_name: str, version: int, index: int) -> dict[str, bytes]:
        """Partition ``index``'s entries of a map from a scan that started once every commit
        numbered up to ``version`` had applied (made now when none such is kept)."""
        with self._lock:
            # Dropped once stale: a scan holds the namespace's whole map.
            self._scans = {
                name: kept for name, kept in self._scans.items() if not self._stale(kept)
            }
            scan = self._scans.get(map_name)
            if scan is None or scan.read_version < version:
                scan = self._scans[map_name] = self._scan(map_name)
            return scan.by_partition.get(index, {})

    @staticmethod
    def _stale(scan: _Scan) -> bool:
        return time.monotonic() - scan.taken_s > KEEP_S

    def _scan(self, map_name: str) -> _Scan:
        read_version = self._read_version()
        taken_s = time.monotonic()
        by_partition: dict[int, dict[str, bytes]] = {}
        prefix = self._prefix
        with self._scan_caches(entries_cache_name(map_name)).scan(page_size=1000) as cursor:
            for name, value in cursor:
                if not isinstance(name, str) or not name.startswith(prefix):
                    continue
                index, _, key = name[len(prefix) :].partition("|")
                if index.isdigit():
                    by_partition.setdefault(int(index), {})[key] = bytes(value)
        self.scans_made += 1
        return _Scan(read_version, taken_s, by_partition)
