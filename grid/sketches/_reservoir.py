"""Reservoir samples: a uniform sample of fixed size k, written here with a seeded rng.

DataSketches' var_opt_sketch with unit weights does sample uniformly, but its random
source is seeded inside the C++ library and cannot be passed in, so runs could not be
replayed; this kind draws every random number from a ``random.Random`` it is given.

Method: each item gets an independent uniform tag in [0, 1) and the sample is the k
items with the smallest tags, which is a uniform sample without replacement. Once the
sample is full, the gap until the next item whose tag beats the largest kept tag t is
geometric with parameter t, so it is drawn directly and the items in between are
skipped (Li's Algorithm L, stated with tags). Keeping the tags makes a merge exact and
free of randomness: the k smallest tags of two samples are the sample of the two
streams together, in either order.

Byte format, version 1 (all integers little-endian):

====== ====== =================================================================
offset bytes  field
====== ====== =================================================================
0      4      magic ``b"SHRS"``
4      1      format version, 1
5      3      zero
8      4      k (u32)
12     4      c, the number of sampled items, at most k (u32)
16     8      items seen (u64)
24     8c     the tags, ascending (IEEE 754 doubles)
24+8c  4c     the byte length of each item's JSON (u32), in tag order
24+12c ...    the items as compact UTF-8 JSON with sorted keys, concatenated
====== ====== =================================================================
"""

from __future__ import annotations

import heapq
import math
import random
import struct
from collections.abc import Sequence
from typing import Any

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchFormatError
from grid.sketches._items import check_json_types, json_bytes, json_value
from grid.sketches._results import ReservoirSample
from grid.sketches._spec import SketchKind, SketchSpec

MAGIC = b"SHRS"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sB3xIIQ")

# A heap entry: (negated tag, so the heap top is the largest tag; insertion order, so
# equal tags never compare payloads; payload: JSON bytes, or an index into the batch
# being added while that batch is planned).
_Entry = tuple[float, int, bytes | int]


class ReservoirSketch(Sketch):
    """The reservoir kind: a uniform sample of k of the items seen, as JSON values."""

    kind = SketchKind.RESERVOIR

    def __init__(self, spec: SketchSpec, rng: random.Random) -> None:
        super().__init__(spec)
        self._k = int(spec.params["k"])
        self._rng = rng
        self._heap: list[_Entry] = []
        self._items_seen = 0
        self._order = 0
        # Items to pass over before the next one enters a full sample, or -1 to draw it.
        # It is not serialized: the gap is geometric, so memoryless, and drawing it
        # afresh after a restart or a merge samples from the same distribution.
        self._skip = -1

    @classmethod
    def deserialize(cls, spec: SketchSpec, data: bytes, rng: random.Random) -> ReservoirSketch:
        """Read bytes written by serialize (format version 1) as a sample of this spec."""
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise SketchFormatError(f"a reservoir needs {_HEADER.size} header bytes")
        magic, version, k, count, items_seen = _HEADER.unpack_from(data)
        if magic != MAGIC or version != FORMAT_VERSION:
            raise SketchFormatError(f"not a reservoir of format {FORMAT_VERSION}: {magic!r}")
        reservoir = cls(spec, rng)
        if k != reservoir._k or count > k or count > items_seen:
            raise SketchFormatError(
                f"the bytes hold k={k} with {count} of {items_seen} items; "
                f"the spec has k={reservoir._k}"
            )
        tags_end = _HEADER.size + 8 * count
        lengths_end = tags_end + 4 * count
        if len(data) < lengths_end:
            raise SketchFormatError("the reservoir bytes end inside the tags")
        tags = struct.unpack_from(f"<{count}d", data, _HEADER.size)
        lengths = struct.unpack_from(f"<{count}I", data, tags_end)
        if lengths_end + sum(lengths) != len(data):
            raise SketchFormatError("the reservoir's item lengths do not add up to its size")
        offset = lengths_end
        for tag, length in zip(tags, lengths, strict=True):
            if not 0.0 <= tag < 1.0:
                raise SketchFormatError(f"a reservoir tag must be in [0, 1), not {tag}")
            reservoir._push(tag, data[offset : offset + length])
            offset += length
        reservoir._items_seen = items_seen
        return reservoir

    def _push(self, tag: float, payload: bytes) -> None:
        self._order += 1
        heapq.heappush(self._heap, (-tag, self._order, payload))

    def update_many(self, items: Items) -> None:
        batch = list(items)
        kind = self.kind.value
        check_json_types(batch, kind)
        if len(batch) <= len(self._heap):
            # A batch no larger than the sample: encoding all of it costs less than
            # copying the sample, and once it is encoded nothing can fail.
            payloads: Sequence[bytes | int] = [
                json_bytes(item, kind, index) for index, item in enumerate(batch)
            ]
            self._order, self._skip = self._select(self._heap, payloads)
        else:
            # Plan on a copy with batch positions as payloads, encode only the items
            # that stay, then commit: a value that is not JSON raises before any change.
            heap = list(self._heap)
            order, skip = self._select(heap, range(len(batch)))
            self._heap = [
                (tag, entry_order, json_bytes(batch[payload], kind, payload))
                if isinstance(payload, int)
                else (tag, entry_order, payload)
                for tag, entry_order, payload in heap
            ]
            self._order, self._skip = order, skip
        self._items_seen += len(batch)

    def _select(self, heap: list[_Entry], payloads: Sequence[bytes | int]) -> tuple[int, int]:
        """Run the batch through the sample held in heap; return the new (order, skip)."""
        order = self._order
        skip = self._skip
        rng = self._rng
        count = len(payloads)
        position = 0
        while position < count and len(heap) < self._k:
            order += 1
            heapq.heappush(heap, (-rng.random(), order, payloads[position]))
            position += 1
        while position < count:
            if skip < 0:
                skip = self._draw_skip(-heap[0][0])
            if position + skip >= count:
                skip -= count - position
                break
            position += skip
            # The entering item's tag is uniform below the largest tag, which it replaces.
            order += 1
            heapq.heapreplace(heap, (heap[0][0] * rng.random(), order, payloads[position]))
            position += 1
            skip = -1
        return order, skip

    def _draw_skip(self, largest_tag: float) -> int:
        """Draw how many items pass before one has a tag below largest_tag."""
        if largest_tag <= 0.0:
            # No uniform tag can beat a zero; nothing more ever enters.
            return 1 << 62
        uniform = 1.0 - self._rng.random()
        # P(skip = s) = (1 - t)^s t, drawn by inverting the geometric distribution.
        return int(math.log(uniform) / math.log1p(-largest_tag))

    def merge(self, other: Sketch) -> None:
        source = self._mergeable(other)
        if source is self:
            # Pairing every tag with its own copy would bias the sample toward repeats;
            # the sample of the stream twice over is kept as this one, with twice the count.
            self._items_seen *= 2
            return
        entries = [(-negated_tag, payload) for negated_tag, _, payload in self._heap + source._heap]
        self._heap = []
        for tag, payload in heapq.nsmallest(self._k, entries, key=lambda entry: entry[0]):
            assert isinstance(payload, bytes)
            self._push(tag, payload)
        self._items_seen += source._items_seen
        # The largest kept tag may have changed, so the pending skip is redrawn.
        self._skip = -1

    def _sorted_entries(self) -> list[tuple[float, bytes]]:
        entries: list[tuple[float, bytes]] = []
        for negated_tag, _, payload in sorted(self._heap, key=lambda entry: -entry[0]):
            assert isinstance(payload, bytes)
            entries.append((-negated_tag, payload))
        return entries

    def serialize(self) -> bytes:
        entries = self._sorted_entries()
        count = len(entries)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, self._k, count, self._items_seen)
        tags = struct.pack(f"<{count}d", *(tag for tag, _ in entries))
        lengths = struct.pack(f"<{count}I", *(len(payload) for _, payload in entries))
        return b"".join([header, tags, lengths, *(payload for _, payload in entries)])

    def memory_bytes(self) -> int:
        # The serialized size: the tags, lengths and JSON texts that make up the state.
        payload_bytes = sum(
            len(payload) for _, _, payload in self._heap if isinstance(payload, bytes)
        )
        return _HEADER.size + 12 * len(self._heap) + payload_bytes

    def items_seen(self) -> int | None:
        return self._items_seen

    def is_empty(self) -> bool:
        return self._items_seen == 0

    def empty_like(self) -> ReservoirSketch:
        return ReservoirSketch(self.spec, self._rng)

    def sample(self) -> ReservoirSample:
        items: list[Any] = [json_value(payload) for _, payload in self._sorted_entries()]
        return ReservoirSample(items=tuple(items), items_seen=self._items_seen, k=self._k)
