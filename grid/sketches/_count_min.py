"""Count-Min frequency estimates, on DataSketches' count_min_sketch."""

from __future__ import annotations

import math
from collections import Counter

from datasketches import count_min_sketch

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchFormatError
from grid.sketches._items import item_text, item_texts
from grid.sketches._results import Frequency
from grid.sketches._spec import SketchKind, SketchSpec

# DataSketches' default hash seed: keeping it lets any DataSketches user read and merge
# our sketches, and two sketches merge only when their seeds match.
HASH_SEED = 9001


class CountMinSketch(Sketch):
    """The cms kind: estimates how often each item occurred.

    An estimate never falls below the true count and exceeds it by at most
    epsilon * total_weight (epsilon = e / width) with probability 1 - e^-depth.
    Serialized as DataSketches' count-min image.
    """

    kind = SketchKind.COUNT_MIN

    def __init__(self, spec: SketchSpec, sketch: count_min_sketch | None = None) -> None:
        super().__init__(spec)
        self._width = int(spec.params["width"])
        self._depth = int(spec.params["depth"])
        if sketch is None:
            sketch = count_min_sketch(self._depth, self._width, HASH_SEED)
        self._sketch = sketch

    @classmethod
    def deserialize(cls, spec: SketchSpec, data: bytes) -> CountMinSketch:
        """Read DataSketches count-min bytes as a sketch of this spec."""
        try:
            sketch = count_min_sketch.deserialize(bytes(data))
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise SketchFormatError(f"not a cms sketch: {error}") from None
        if sketch.get_serialized_size_bytes() != len(data):
            # DataSketches reads a truncated image without complaint.
            raise SketchFormatError(f"a cms image of this shape is not {len(data)} bytes long")
        found = (sketch.num_buckets, sketch.num_hashes, sketch.seed)
        wanted = (int(spec.params["width"]), int(spec.params["depth"]), HASH_SEED)
        if found != wanted:
            raise SketchFormatError(
                f"the bytes hold (width, depth, seed)={found}, the spec wants {wanted}"
            )
        return cls(spec, sketch)

    def update_many(self, items: Items) -> None:
        texts = item_texts(items, self.kind.value)
        # Counting a batch first turns a skewed stream into one call per distinct item;
        # the sketch is linear, so adding a count of w is adding the item w times.
        update = self._sketch.update
        for text, count in Counter(texts).items():
            update(text, float(count))

    def merge(self, other: Sketch) -> None:
        source = self._mergeable(other)
        # DataSketches refuses to merge a sketch into itself; a copy is the same data.
        source_sketch = source._sketch
        if source is self:
            source_sketch = count_min_sketch.deserialize(self._sketch.serialize())
        self._sketch.merge(source_sketch)

    def serialize(self) -> bytes:
        return bytes(self._sketch.serialize())

    def memory_bytes(self) -> int:
        return int(self._sketch.get_serialized_size_bytes())

    def items_seen(self) -> int | None:
        return int(self._sketch.total_weight)

    def is_empty(self) -> bool:
        return bool(self._sketch.is_empty())

    def empty_like(self) -> CountMinSketch:
        return CountMinSketch(self.spec)

    def epsilon(self) -> float:
        """The relative error: an estimate exceeds the truth by at most epsilon * total weight."""
        return float(self._sketch.get_relative_error())

    def frequency(self, item: object) -> Frequency:
        text = item_text(item)
        estimate = float(self._sketch.get_estimate(text))
        total_weight = float(self._sketch.total_weight)
        error_bound = self.epsilon() * total_weight
        # DataSketches' C++ bounds read the other way round (its lower bound is the
        # estimate); a count-min only overestimates, so the truth lies below the estimate.
        return Frequency(
            item=text,
            estimate=estimate,
            lower_bound=max(0.0, estimate - error_bound),
            upper_bound=estimate,
            error_bound=error_bound,
            total_weight=total_weight,
            confidence=1.0 - math.exp(-self._depth),
        )
