"""The answers sketches give: typed results that carry their error bounds."""

from __future__ import annotations

from dataclasses import dataclass

from grid.sketches._errors import SketchParameterError
from grid.sketches._items import JsonValue


@dataclass(frozen=True)
class Interval:
    """Bounds on a distinct count at a number of standard deviations (1, 2 or 3)."""

    standard_deviations: int
    lower: float
    upper: float


@dataclass(frozen=True)
class DistinctCount:
    """An hll answer: the estimated number of distinct items and its error.

    relative_standard_error is the a priori error of one standard deviation for a
    sketch of this lg_k that may have been merged (the looser of the two cases).
    """

    estimate: float
    intervals: tuple[Interval, ...]
    relative_standard_error: float

    def interval(self, standard_deviations: int) -> Interval:
        """Return the interval at 1, 2 or 3 standard deviations."""
        for interval in self.intervals:
            if interval.standard_deviations == standard_deviations:
                return interval
        raise SketchParameterError("standard_deviations", "must be 1, 2 or 3")


@dataclass(frozen=True)
class Frequency:
    """A cms or topk answer: how often one item occurred, with bounds.

    The true count lies in [lower_bound, upper_bound] with probability confidence
    (1.0 for topk, whose bounds are certain). error_bound is the additive error the
    sketch promises: epsilon times total_weight for cms.
    """

    item: str
    estimate: float
    lower_bound: float
    upper_bound: float
    error_bound: float
    total_weight: float
    confidence: float


@dataclass(frozen=True)
class BloomFill:
    """How full a Bloom filter is, and the false-positive rate that fill implies."""

    bits: int
    hashes: int
    bits_set: int
    items_added: int
    capacity_items: int
    error_rate: float
    expected_false_positive_rate: float


@dataclass(frozen=True)
class ReservoirSample:
    """A reservoir answer: a uniform sample without replacement of the items seen."""

    items: tuple[JsonValue, ...]
    items_seen: int
    k: int


@dataclass(frozen=True)
class Quantile:
    """A kll answer: the value at a normalized rank, and the values at rank +- the error.

    Ranks are inclusive: value is the smallest retained value whose rank (the fraction
    of items at or below it) reaches rank. The bounds hold with 99% confidence. An
    empty sketch answers NaN.
    """

    rank: float
    value: float
    lower_value: float
    upper_value: float
    normalized_rank_error: float
    items_seen: int


@dataclass(frozen=True)
class Rank:
    """A kll answer: the fraction of items at or below a value, with 99% bounds."""

    value: float
    rank: float
    lower_rank: float
    upper_rank: float
    normalized_rank_error: float
    items_seen: int


@dataclass(frozen=True)
class FrequentItem:
    """One item of a topk answer; its true count is within [lower_bound, upper_bound]."""

    item: str
    estimate: int
    lower_bound: int
    upper_bound: int


@dataclass(frozen=True)
class TopItems:
    """A topk answer, heaviest first, with no false negatives.

    Every item whose true count exceeds maximum_error is listed (up to the k asked
    for); maximum_error never exceeds error_bound, the a priori epsilon times the
    total weight.
    """

    items: tuple[FrequentItem, ...]
    total_weight: int
    maximum_error: int
    error_bound: float
