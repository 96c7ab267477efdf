"""Multi-version entries of a partition: overwritten states kept for a window; reads at a version.

A segment's `entries` hold the latest committed entry of each key. When a commit at
version `v` overwrites or deletes a key, the state it replaces goes to the segment's
`history` as `(v, old entry)`: "this was the key's state until version v". Keys
created by a commit need nothing (before it they were absent), and keys that do not
change have no history at all, so memory grows only with recent changes.

A read at version `r` takes the latest entry when its version is at most `r` (the
common case, no history touched); otherwise the first kept state that ended after
`r`, if it had begun by `r` (an entry's own version is where its state begins);
otherwise the key did not exist at `r`. States are forgotten, oldest first, once
they ended at or before the horizon (what was visible `mvcc_window_ms` ago, passed in
by the coordinator) or while the kept bytes exceed the budget. `floor` is the newest
end of a forgotten state: a read below it of a key whose latest entry is newer than
the read may have lost its answer, and is refused as too old.

Reads run without the partition lock, beside commits: a commit records the old state
before it replaces the entry, and the forgetting raises `floor` before it removes a
state, and a reader checks `floor` again after it looked, so it never returns a
state that was being forgotten under it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

from grid.entry import version_of
from grid.errors import ReadVersionTooOld
from grid.memory.segment import Segment

# Bytes of bookkeeping per kept state beyond the entry itself: the tuple in the
# key's chain, its share of the list, and the expiry record (CPython 3.11, 64-bit).
STATE_OVERHEAD_BYTES = 150
VERSIONS_BYTES_MAX_DEFAULT = 256 * 1024 * 1024


@dataclass
class VersionStats:
    kept: int = 0
    kept_bytes: int = 0
    dropped_by_age: int = 0
    dropped_by_budget: int = 0


class Versions:
    """The kept states of one partition, in the order they were overwritten."""

    def __init__(self, bytes_max: int = VERSIONS_BYTES_MAX_DEFAULT) -> None:
        # 0 keeps nothing: every read must then be at the latest version.
        self.bytes_max = bytes_max
        self.horizon = 0
        self.floor = 0
        # (end version, segment, key, bytes) of every kept state, oldest first: commits
        # apply in version order, so this is also each key's chain order.
        self._expiring: deque[tuple[int, Segment, str, int]] = deque()
        self.stats = VersionStats()

    def overwritten(self, segment: Segment, key: str, old: bytes, end: int) -> None:
        """Keeps the state a commit at version `end` is about to replace (call it first)."""
        if self.bytes_max == 0:
            self.floor = end
            return
        chain = segment.history.get(key)
        if chain is None:
            segment.history[key] = [(end, old)]
        else:
            chain.append((end, old))
        size = len(old) + len(key) + STATE_OVERHEAD_BYTES
        self._expiring.append((end, segment, key, size))
        stats = self.stats
        stats.kept += 1
        stats.kept_bytes += size

    def forget(self, horizon: int = 0) -> None:
        """Drops states that ended at or before the horizon, then oldest ones over budget."""
        self.horizon = max(self.horizon, horizon)
        expiring = self._expiring
        stats = self.stats
        while expiring:
            end, segment, key, size = expiring[0]
            if end <= self.horizon:
                stats.dropped_by_age += 1
            elif stats.kept_bytes > self.bytes_max:
                stats.dropped_by_budget += 1
            else:
                break
            expiring.popleft()
            # Raised before the state goes, so a reader walking the chain now notices.
            self.floor = max(self.floor, end)
            chain = segment.history.get(key)
            if chain is not None:
                if len(chain) <= 1:
                    del segment.history[key]
                else:
                    del chain[0]
            stats.kept -= 1
            stats.kept_bytes -= size

    def drop_segment(self, segment: Segment) -> None:
        """Forgets the states of a dropped map's segment."""
        kept = [item for item in self._expiring if item[1] is not segment]
        dropped = len(self._expiring) - len(kept)
        if dropped:
            self.stats.kept -= dropped
            self.stats.kept_bytes -= sum(item[3] for item in self._expiring if item[1] is segment)
            self._expiring = deque(kept)

    def read(self, segment: Segment | None, key: str, version: int) -> bytes | None:
        """The key's entry as of `version`, or None where it did not exist then."""
        if segment is None:
            return None
        entry = segment.entries.get(key)
        if entry is not None and version_of(entry) <= version:
            return entry
        if entry is None and segment.version <= version:
            return None
        return self._read_history(segment, key, version)

    def _read_history(self, segment: Segment, key: str, version: int) -> bytes | None:
        if version < self.floor:
            raise ReadVersionTooOld(version, self.floor)
        # A copy: a commit may append to the chain and a forget may shorten it meanwhile.
        chain = list(segment.history.get(key, ()))
        found: bytes | None = None
        position = bisect_right(chain, version, key=_end)
        if position < len(chain):
            entry = chain[position][1]
            # A state starts at its own version; before it the key was absent (created
            # then, or created again after a delete).
            if version_of(entry) <= version:
                found = entry
        if version < self.floor:
            raise ReadVersionTooOld(version, self.floor)
        return found


def _end(state: tuple[int, bytes]) -> int:
    return state[0]
