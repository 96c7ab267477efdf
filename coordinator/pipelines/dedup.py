"""The deduplication window of one Kafka partition: event keys of its latest events.

The window is a list of segments, one per committed batch, each holding the event keys
that batch saw. A batch's segment is written to the grid in the batch's own transaction,
so after a crash the window is exactly what was committed. The window keeps at least the
last `capacity` events (whole segments are dropped, oldest first, only while the rest
still covers `capacity`), so a repeat within `capacity` events of the original is caught.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class DedupWindow:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a dedup window holds at least one event")
        self.capacity = capacity
        # (segment id, its keys), oldest first; ids are the batches' first offsets.
        self._segments: deque[tuple[int, list[str]]] = deque()
        self._counts: dict[str, int] = {}
        self._size = 0
        # Keys seen elsewhere that count as repeats too, and are never stored with this
        # window (re-delivery of a lost range sees the live pipeline's window).
        self.also: frozenset[str] = frozenset()

    def __contains__(self, key: object) -> bool:
        return key in self._counts or key in self.also

    def __len__(self) -> int:
        return self._size

    @property
    def segment_ids(self) -> list[int]:
        return [segment_id for segment_id, _ in self._segments]

    def add_segment(self, segment_id: int, keys: Iterable[str]) -> None:
        items = list(keys)
        if self._segments and segment_id <= self._segments[-1][0]:
            raise ValueError(f"segment {segment_id} is not newer than {self._segments[-1][0]}")
        self._segments.append((segment_id, items))
        counts = self._counts
        for key in items:
            counts[key] = counts.get(key, 0) + 1
        self._size += len(items)

    def expired(self, incoming: int = 0) -> list[int]:
        """Segments to drop once `incoming` more keys join: those the newer ones (and the
        incoming keys) already cover `capacity` without."""
        dropped: list[int] = []
        size = self._size + incoming
        for segment_id, keys in self._segments:
            if size - len(keys) < self.capacity:
                break
            size -= len(keys)
            dropped.append(segment_id)
        return dropped

    def drop(self, segment_ids: Iterable[int]) -> None:
        wanted = set(segment_ids)
        kept: deque[tuple[int, list[str]]] = deque()
        counts = self._counts
        for segment_id, keys in self._segments:
            if segment_id not in wanted:
                kept.append((segment_id, keys))
                continue
            for key in keys:
                remaining = counts[key] - 1
                if remaining:
                    counts[key] = remaining
                else:
                    del counts[key]
            self._size -= len(keys)
        self._segments = kept
