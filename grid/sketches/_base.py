"""The interface every sketch kind shares: batch update, merge, serialize, size and queries."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Self, TypeAlias

import numpy as np
import numpy.typing as npt

from grid.sketches._errors import SketchKindError, SketchParameterError
from grid.sketches._results import (
    BloomFill,
    DistinctCount,
    Frequency,
    Quantile,
    Rank,
    ReservoirSample,
    TopItems,
)
from grid.sketches._spec import SketchKind, SketchSpec

Items: TypeAlias = Sequence[Any] | npt.NDArray[np.generic]


class Sketch(abc.ABC):
    """A sketch of one kind, as a grid value.

    Every kind updates in batches, merges with a sketch of the same spec (a union,
    commutative: a.merge(b) and b.merge(a) hold the same data), serializes to bytes
    and reports its size. Each query belongs to one kind; asking it of another kind
    raises SketchKindError, so a server can dispatch on any sketch without checks.
    """

    kind: ClassVar[SketchKind]

    def __init__(self, spec: SketchSpec) -> None:
        if spec.kind != self.kind:
            raise SketchKindError(f"a {type(self).__name__}", spec.kind.value, (self.kind.value,))
        self._spec = spec

    @property
    def spec(self) -> SketchSpec:
        """The spec the sketch was created with."""
        return self._spec

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._spec!r} items_seen={self.items_seen()}>"

    @abc.abstractmethod
    def update_many(self, items: Items) -> None:
        """Add a batch of items; a bad item raises SketchItemError and changes nothing."""

    def update(self, item: Any) -> None:
        """Add one item (a batch of one)."""
        self.update_many([item])

    @abc.abstractmethod
    def merge(self, other: Sketch) -> None:
        """Fold another sketch of the same spec into this one (a union)."""

    @abc.abstractmethod
    def serialize(self) -> bytes:
        """Return the portable bytes of the sketch (DataSketches' format where it has one)."""

    @abc.abstractmethod
    def memory_bytes(self) -> int:
        """Return about how many bytes the sketch holds."""

    @abc.abstractmethod
    def items_seen(self) -> int | None:
        """Return how many items went in, or None where the format does not keep it (hll)."""

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """Return whether no item has gone in."""

    @abc.abstractmethod
    def empty_like(self) -> Self:
        """Return a new empty sketch of the same spec (and, for a reservoir, the same rng)."""

    def check_mergeable(self, other: Sketch) -> None:
        """Raise unless other has this sketch's kind and parameters."""
        require_spec(self.spec, other)

    def _mergeable(self, other: Sketch) -> Self:
        """Check other for a merge and return it typed as this sketch's class."""
        self.check_mergeable(other)
        if not isinstance(other, type(self)):
            raise SketchKindError("merge", type(other).__name__, (type(self).__name__,))
        return other

    def _wrong_kind(self, operation: str, *expected: SketchKind) -> SketchKindError:
        return SketchKindError(operation, self.kind.value, tuple(kind.value for kind in expected))

    def distinct_count(self) -> DistinctCount:
        """hll: the estimated number of distinct items."""
        raise self._wrong_kind("distinct_count", SketchKind.HYPERLOGLOG)

    def frequency(self, item: Any) -> Frequency:
        """cms, topk: the estimated count of one item."""
        raise self._wrong_kind("frequency", SketchKind.COUNT_MIN, SketchKind.TOP_K)

    def might_contain(self, item: Any) -> bool:
        """bloom: False if the item was never added; True if it probably was."""
        raise self._wrong_kind("might_contain", SketchKind.BLOOM)

    def might_contain_many(self, items: Items) -> list[bool]:
        """bloom: might_contain for each item of a batch."""
        raise self._wrong_kind("might_contain_many", SketchKind.BLOOM)

    def fill(self) -> BloomFill:
        """bloom: how full the filter is and its expected false-positive rate."""
        raise self._wrong_kind("fill", SketchKind.BLOOM)

    def sample(self) -> ReservoirSample:
        """reservoir: the uniform sample."""
        raise self._wrong_kind("sample", SketchKind.RESERVOIR)

    def quantile(self, rank: float) -> Quantile:
        """kll: the value at a normalized rank from 0 to 1."""
        raise self._wrong_kind("quantile", SketchKind.KLL)

    def quantiles(self, ranks: Sequence[float]) -> tuple[Quantile, ...]:
        """kll: the values at several normalized ranks."""
        raise self._wrong_kind("quantiles", SketchKind.KLL)

    def rank(self, value: float) -> Rank:
        """kll: the fraction of items at or below a value."""
        raise self._wrong_kind("rank", SketchKind.KLL)

    def top(self, k: int | None = None) -> TopItems:
        """topk: the k heaviest items (the spec's k when not given)."""
        raise self._wrong_kind("top", SketchKind.TOP_K)


def require_spec(spec: SketchSpec, sketch: Sketch) -> None:
    """Raise SketchKindError or SketchParameterError unless sketch has exactly this spec."""
    if sketch.kind != spec.kind:
        raise SketchKindError("merge", sketch.kind.value, (spec.kind.value,))
    if sketch.spec != spec:
        for name, value in spec.params.items():
            found = sketch.spec.params.get(name)
            if found != value:
                raise SketchParameterError(
                    name, f"merge needs equal specs: {value} wanted, {found} in the sketch"
                )
