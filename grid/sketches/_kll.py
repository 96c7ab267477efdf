"""KLL quantiles and ranks of numbers, on DataSketches' kll_doubles_sketch."""

from __future__ import annotations

import math
from collections.abc import Sequence

from datasketches import kll_doubles_sketch

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchFormatError, SketchParameterError
from grid.sketches._items import number, numeric_array
from grid.sketches._results import Quantile, Rank
from grid.sketches._spec import SketchKind, SketchSpec


class KllSketch(Sketch):
    """The kll kind: quantiles and ranks of a stream of numbers.

    Ranks are inclusive (the rank of v is the fraction of items at or below v), the
    convention of a CDF and of numpy's "inverted_cdf" quantiles. Errors are DataSketches'
    single-sided normalized rank error, a bound that holds with 99% confidence.
    Serialized as DataSketches' KLL doubles image.
    """

    kind = SketchKind.KLL

    def __init__(self, spec: SketchSpec, sketch: kll_doubles_sketch | None = None) -> None:
        super().__init__(spec)
        self._k = int(spec.params["k"])
        self._sketch = kll_doubles_sketch(self._k) if sketch is None else sketch

    @classmethod
    def deserialize(cls, spec: SketchSpec, data: bytes) -> KllSketch:
        """Read DataSketches KLL doubles bytes as a sketch of this spec."""
        try:
            sketch = kll_doubles_sketch.deserialize(bytes(data))
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise SketchFormatError(f"not a kll sketch: {error}") from None
        if len(sketch.serialize()) != len(data):
            raise SketchFormatError(f"a kll image of this content is not {len(data)} bytes long")
        if sketch.k != int(spec.params["k"]):
            raise SketchFormatError(f"the bytes hold k={sketch.k}, the spec {spec.params['k']}")
        return cls(spec, sketch)

    def update_many(self, items: Items) -> None:
        values = numeric_array(items, self.kind.value)
        if len(values):
            # The array overload runs the whole batch in C++.
            self._sketch.update(values)

    def merge(self, other: Sketch) -> None:
        source = self._mergeable(other)
        source_sketch = source._sketch
        if source is self:
            source_sketch = kll_doubles_sketch.deserialize(self._sketch.serialize())
        self._sketch.merge(source_sketch)

    def serialize(self) -> bytes:
        return bytes(self._sketch.serialize())

    def memory_bytes(self) -> int:
        # The Python binding reports no size; the image is the retained items and levels.
        return len(self._sketch.serialize())

    def items_seen(self) -> int | None:
        return int(self._sketch.n)

    def is_empty(self) -> bool:
        return bool(self._sketch.is_empty())

    def empty_like(self) -> KllSketch:
        return KllSketch(self.spec)

    def normalized_rank_error(self) -> float:
        """The 99%-confidence bound on the error of a rank, as a fraction of all items."""
        return float(self._sketch.normalized_rank_error(False))

    def quantile(self, rank: float) -> Quantile:
        return self.quantiles([rank])[0]

    def quantiles(self, ranks: Sequence[float]) -> tuple[Quantile, ...]:
        checked = [_rank_argument(rank) for rank in ranks]
        error = self.normalized_rank_error()
        items_seen = int(self._sketch.n)
        if self._sketch.is_empty():
            return tuple(Quantile(rank, math.nan, math.nan, math.nan, error, 0) for rank in checked)
        # One call for the values and one for each bound keeps the C++ crossings to three.
        values = self._values_at(checked)
        lowers = self._values_at([max(0.0, rank - error) for rank in checked])
        uppers = self._values_at([min(1.0, rank + error) for rank in checked])
        return tuple(
            Quantile(rank, value, lower, upper, error, items_seen)
            for rank, value, lower, upper in zip(checked, values, lowers, uppers, strict=True)
        )

    def _values_at(self, ranks: list[float]) -> list[float]:
        values = [float(value) for value in self._sketch.get_quantiles(ranks, True)]
        # The retained items need not include the extremes, but the sketch keeps them
        # exactly, and ranks 0 and 1 are the smallest and largest item by definition.
        minimum = float(self._sketch.get_min_value())
        maximum = float(self._sketch.get_max_value())
        return [
            minimum if rank <= 0.0 else maximum if rank >= 1.0 else value
            for rank, value in zip(ranks, values, strict=True)
        ]

    def rank(self, value: float) -> Rank:
        checked = number(value, "value")
        error = self.normalized_rank_error()
        if self._sketch.is_empty():
            return Rank(checked, math.nan, math.nan, math.nan, error, 0)
        estimate = float(self._sketch.get_rank(checked, True))
        return Rank(
            value=checked,
            rank=estimate,
            lower_rank=max(0.0, estimate - error),
            upper_rank=min(1.0, estimate + error),
            normalized_rank_error=error,
            items_seen=int(self._sketch.n),
        )


def _rank_argument(rank: object) -> float:
    checked = number(rank, "rank")
    if not 0.0 <= checked <= 1.0:
        raise SketchParameterError("rank", f"must be from 0 to 1, not {checked}")
    return checked
