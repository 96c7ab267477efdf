"""What sketch calls return: each answer with the error bounds its kind promises.

Every estimate has ``kind`` and ``value`` (the kind's main figure), ``keys_found`` (how
many of the asked keys held a sketch) and ``memory_bytes`` (the size of the sketch it
was answered from). An hll estimate is also a ``float``, so it can be used as a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DistinctCount(float):
    """hll: the estimated number of distinct items; a float, with ``.value`` the same number.

    ``intervals`` maps 1, 2 and 3 standard deviations (about 68%, 95% and 99.7%
    confidence) to (lower, upper) bounds; ``lower_bound`` and ``upper_bound`` are the
    2-standard-deviation ones. ``relative_standard_error`` is one standard deviation
    as a fraction of the estimate.
    """

    kind = "hll"
    intervals: dict[int, tuple[float, float]]
    relative_standard_error: float
    keys_found: int
    memory_bytes: int

    def __new__(
        cls,
        estimate: float,
        intervals: dict[int, tuple[float, float]],
        relative_standard_error: float,
        keys_found: int = 1,
        memory_bytes: int = 0,
    ) -> DistinctCount:
        count = super().__new__(cls, estimate)
        count.intervals = dict(intervals)
        count.relative_standard_error = relative_standard_error
        count.keys_found = keys_found
        count.memory_bytes = memory_bytes
        return count

    @property
    def value(self) -> float:
        return float(self)

    @property
    def estimate(self) -> float:
        return float(self)

    @property
    def standard_error(self) -> float:
        """One standard deviation, in items."""
        return float(self) * self.relative_standard_error

    @property
    def lower_bound(self) -> float:
        return self.intervals[2][0]

    @property
    def upper_bound(self) -> float:
        return self.intervals[2][1]

    def interval(self, standard_deviations: int = 2) -> tuple[float, float]:
        """(lower, upper) at 1, 2 or 3 standard deviations."""
        return self.intervals[standard_deviations]

    def __repr__(self) -> str:
        lower, upper = self.intervals.get(2, (float("nan"), float("nan")))
        return (
            f"DistinctCount({float(self):.1f}, 95% in [{lower:.1f}, {upper:.1f}], "
            f"rse={self.relative_standard_error:.4f})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        arguments = (
            float(self),
            self.intervals,
            self.relative_standard_error,
            self.keys_found,
            self.memory_bytes,
        )
        return (DistinctCount, arguments)


@dataclass(frozen=True)
class CountMinSummary:
    """cms: the total weight added (``value``) and the additive error of every frequency.

    No frequency is below the true count, and none exceeds it by more than
    ``error_bound`` (epsilon x total weight) with probability ``confidence``.
    """

    value: float
    total_weight: float
    epsilon: float
    error_bound: float
    confidence: float
    width: int
    depth: int
    keys_found: int
    memory_bytes: int
    kind: str = "cms"


@dataclass(frozen=True)
class BloomSummary:
    """bloom: how full the filter is; ``value`` is the number of items added.

    ``expected_false_positive_rate`` is the rate the current fill implies; it stays
    near ``error_rate`` while no more than ``capacity_items`` distinct items went in.
    """

    value: int
    items_added: int
    bits: int
    hashes: int
    bits_set: int
    capacity_items: int
    error_rate: float
    expected_false_positive_rate: float
    keys_found: int = 1
    memory_bytes: int = 0
    kind: str = "bloom"


@dataclass(frozen=True)
class ReservoirSample:
    """reservoir: a uniform sample without replacement (``value`` and ``items``)."""

    value: tuple[Any, ...]
    items: tuple[Any, ...]
    items_seen: int
    k: int
    keys_found: int = 1
    memory_bytes: int = 0
    kind: str = "reservoir"


@dataclass(frozen=True)
class Quantile:
    """The value at a normalized rank; the true value at that rank lies in
    [lower_value, upper_value] with 99% confidence."""

    rank: float
    value: float
    lower_value: float
    upper_value: float


@dataclass(frozen=True)
class Rank:
    """The fraction of items at or below ``value``, within [lower_rank, upper_rank] (99%)."""

    value: float
    rank: float
    lower_rank: float
    upper_rank: float


@dataclass(frozen=True)
class QuantileSummary:
    """kll: quantiles at ranks 0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99 and 1 (or the
    ranks asked for); ``value`` is the median (NaN for an empty sketch).

    Each rank is within ``normalized_rank_error`` of the truth with 99% confidence.
    """

    value: float
    quantiles: tuple[Quantile, ...]
    normalized_rank_error: float
    items_seen: int
    keys_found: int = 1
    memory_bytes: int = 0
    kind: str = "kll"

    def quantile(self, rank: float) -> Quantile:
        for item in self.quantiles:
            if item.rank == rank:
                return item
        raise KeyError(f"rank {rank} was not asked for; asked {[q.rank for q in self.quantiles]}")


@dataclass(frozen=True)
class FrequentItem:
    """One heavy hitter; its true count is certain to lie in [lower_bound, upper_bound]."""

    item: str
    estimate: int
    lower_bound: int
    upper_bound: int


@dataclass(frozen=True)
class TopItems:
    """topk: the heaviest items, heaviest first (``value`` and ``items``).

    No false negatives: every item whose true count exceeds ``maximum_error`` is listed
    (up to k); ``maximum_error`` never exceeds ``error_bound`` = epsilon x total weight.
    """

    value: tuple[FrequentItem, ...]
    items: tuple[FrequentItem, ...]
    total_weight: int
    maximum_error: int
    error_bound: float
    keys_found: int = 1
    memory_bytes: int = 0
    kind: str = "topk"


@dataclass(frozen=True)
class Frequency:
    """cms, topk: how often one item occurred (``value`` is the estimate).

    The true count lies in [lower_bound, upper_bound] with probability ``confidence``
    (1.0 for topk, whose bounds are certain).
    """

    item: str
    value: float
    lower_bound: float
    upper_bound: float
    error_bound: float
    total_weight: float
    confidence: float

    @property
    def estimate(self) -> float:
        return self.value


@dataclass(frozen=True)
class SketchMapInfo:
    """A sketch map: kind, normalized parameters, the most bytes one sketch can take,
    and how many keys and bytes it holds."""

    name: str
    kind: str
    params: dict[str, Any]
    sketch_bytes_max: int
    keys: int
    memory_bytes: int


@dataclass(frozen=True)
class KindAccuracy:
    """Observed error of one kind over the monitored keys (see the README for units)."""

    kind: str
    keys: int
    samples: int
    mean_relative_error: float
    max_relative_error: float
    error_bound: float
    outside_bound: int


@dataclass(frozen=True)
class AccuracyReport:
    kinds: dict[str, KindAccuracy]
    sample_rate: float
    tracked_keys: int
    overflowed_keys: int
    refused_keys: int
    untrusted_keys: int


Estimate = (
    DistinctCount | CountMinSummary | BloomSummary | ReservoirSample | QuantileSummary | TopItems
)
