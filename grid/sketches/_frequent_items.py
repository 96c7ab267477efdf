"""Top-k frequent items, on DataSketches' frequent_strings_sketch (Misra-Gries)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from datasketches import NO_FALSE_NEGATIVES, frequent_strings_sketch

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchFormatError, SketchParameterError
from grid.sketches._items import item_text, item_texts
from grid.sketches._results import Frequency, FrequentItem, TopItems
from grid.sketches._spec import SketchKind, SketchSpec, top_k_capacity


class FrequentItemsSketch(Sketch):
    """The topk kind: the heaviest items of a stream, as canonical item texts.

    Every count is certain to lie within its bounds, whose width (the maximum error)
    never exceeds epsilon * total weight with epsilon = 3.5 / 2^lg_max_k. Serialized as
    DataSketches' frequent-items image of strings.
    """

    kind = SketchKind.TOP_K

    def __init__(self, spec: SketchSpec, sketch: frequent_strings_sketch | None = None) -> None:
        super().__init__(spec)
        self._lg_max_k = int(spec.params["lg_max_k"])
        self._k = int(spec.params["k"])
        self._sketch = frequent_strings_sketch(self._lg_max_k) if sketch is None else sketch

    @classmethod
    def deserialize(cls, spec: SketchSpec, data: bytes) -> FrequentItemsSketch:
        """Read DataSketches frequent-strings bytes as a sketch of this spec."""
        try:
            sketch = frequent_strings_sketch.deserialize(bytes(data))
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise SketchFormatError(f"not a topk sketch: {error}") from None
        if sketch.get_serialized_size_bytes() != len(data):
            raise SketchFormatError(f"a topk image of this content is not {len(data)} bytes long")
        lg_max_k = int(spec.params["lg_max_k"])
        # The binding does not expose the map size, but epsilon is 3.5 over it.
        if sketch.epsilon != frequent_strings_sketch.get_epsilon_for_lg_size(lg_max_k):
            raise SketchFormatError(f"the bytes hold another map size than lg_max_k={lg_max_k}")
        return cls(spec, sketch)

    def update_many(self, items: Items) -> None:
        texts = item_texts(items, self.kind.value)
        # Counting a batch first is one weighted update per distinct item, and the
        # sketch's bounds hold for weighted streams.
        update = self._sketch.update
        for text, count in Counter(texts).items():
            update(text, count)

    def merge(self, other: Sketch) -> None:
        source = self._mergeable(other)
        source_sketch = source._sketch
        if source is self:
            source_sketch = frequent_strings_sketch.deserialize(self._sketch.serialize())
        self._sketch.merge(source_sketch)

    def serialize(self) -> bytes:
        return bytes(self._sketch.serialize())

    def memory_bytes(self) -> int:
        return int(self._sketch.get_serialized_size_bytes())

    def items_seen(self) -> int | None:
        return int(self._sketch.total_weight)

    def is_empty(self) -> bool:
        return bool(self._sketch.is_empty())

    def empty_like(self) -> FrequentItemsSketch:
        return FrequentItemsSketch(self.spec)

    def epsilon(self) -> float:
        """The a priori error as a fraction of the total weight."""
        return float(self._sketch.epsilon)

    def maximum_error(self) -> int:
        """The width of every item's bounds now: what the sketch has had to forget."""
        # Every item, kept or not, has upper - lower equal to the sketch's offset.
        return int(self._sketch.get_upper_bound("") - self._sketch.get_lower_bound(""))

    def frequency(self, item: Any) -> Frequency:
        text = item_text(item)
        total_weight = float(self._sketch.total_weight)
        return Frequency(
            item=text,
            estimate=float(self._sketch.get_estimate(text)),
            lower_bound=float(self._sketch.get_lower_bound(text)),
            upper_bound=float(self._sketch.get_upper_bound(text)),
            error_bound=self.epsilon() * total_weight,
            total_weight=total_weight,
            confidence=1.0,
        )

    def top(self, k: int | None = None) -> TopItems:
        count = self._k if k is None else k
        capacity = top_k_capacity(self._lg_max_k)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= capacity:
            raise SketchParameterError("k", f"must be an integer from 1 to {capacity}, not {k!r}")
        # No false negatives: every item whose true count passes the maximum error is
        # listed; some listed items may be lighter than that.
        rows = self._sketch.get_frequent_items(NO_FALSE_NEGATIVES)
        items = tuple(
            FrequentItem(str(item), int(estimate), int(lower), int(upper))
            for item, estimate, lower, upper in rows[:count]
        )
        total_weight = int(self._sketch.total_weight)
        return TopItems(
            items=items,
            total_weight=total_weight,
            maximum_error=self.maximum_error(),
            error_bound=self.epsilon() * total_weight,
        )
