"""The accuracy monitor: observed sketch error on a sample of keys, against exact answers.

For a deterministic sample of keys (a stable hash of the key below sample_rate) the
monitor keeps the exact answer beside the sketch: the set of items for hll and bloom,
exact counts for cms and topk, the values for kll, the count and items for a
reservoir. Measuring a key compares the sketch with it and adds to per-kind totals,
so an operator sees the observed error of each kind next to the error it promises.

What "relative error" means differs by kind, each normalized so it compares with the
kind's own bound:

- hll: |estimate - distinct| / distinct; bound: 3 relative standard errors.
- cms: |estimate - count| / total weight, per item; bound: epsilon. An underestimate
  is out of bound whatever its size, as a count-min never underestimates.
- topk: |estimate - count| / total weight, per item; bound: the a priori epsilon. A
  count outside the item's certain bounds is out of bound.
- kll: the distance of each asked rank from the true rank of the value answered;
  bound: the normalized rank error (a 99% bound, so about 1% may fall outside).
- bloom: the false-positive rate over fixed probe items; bound: twice the
  configured error rate. A false negative is out of bound.
- reservoir: |items seen - count| / count; bound 0. A sampled item never added, or a
  sample of the wrong size, is out of bound.

Memory is bounded twice: at most max_tracked_keys keys, and at most
max_exact_items_per_key exact entries a key. A key whose exact state passes that is
dropped to a marker (its slot stays taken, so the bound holds) and counted as
overflowed. The monitor only knows the items it observes: after merging foreign data
into a sampled key's sketch, forget the key.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchParameterError
from grid.sketches._items import item_text, item_texts, json_bytes, numeric_array
from grid.sketches._spec import SketchKind, SketchSpec

# The ranks at which a kll sketch is checked: the tails matter as much as the median.
_CHECKED_RANKS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
_PERSONALIZATION = b"shoal-accuracy"
_PROBE_PREFIX = "\x00shoal-accuracy-probe:"

Key = str | bytes | int


@dataclass(frozen=True)
class AccuracyStats:
    """Observed error of one kind (or one measurement): see the module for each kind."""

    kind: SketchKind
    samples: int
    mean_relative_error: float
    max_relative_error: float
    error_bound: float
    outside_bound: int


@dataclass
class _Totals:
    samples: int = 0
    error_sum: float = 0.0
    error_max: float = 0.0
    bound_max: float = 0.0
    outside: int = 0

    def add(self, error: float, bound: float, within: bool) -> None:
        self.samples += 1
        self.error_sum += error
        self.error_max = max(self.error_max, error)
        self.bound_max = max(self.bound_max, bound)
        self.outside += 0 if within else 1

    def add_all(self, other: _Totals) -> None:
        self.samples += other.samples
        self.error_sum += other.error_sum
        self.error_max = max(self.error_max, other.error_max)
        self.bound_max = max(self.bound_max, other.bound_max)
        self.outside += other.outside

    def stats(self, kind: SketchKind) -> AccuracyStats:
        mean = self.error_sum / self.samples if self.samples else 0.0
        return AccuracyStats(kind, self.samples, mean, self.error_max, self.bound_max, self.outside)


@dataclass
class _Tracked:
    """The exact state of one sampled key; only the field of its kind is filled."""

    spec: SketchSpec
    texts: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    values: list[float] = field(default_factory=list)
    encoded: set[bytes] = field(default_factory=set)
    items_seen: int = 0
    overflowed: bool = False

    def size(self) -> int:
        return len(self.texts) + len(self.counts) + len(self.values) + len(self.encoded)

    def drop(self) -> None:
        self.texts, self.counts, self.values, self.encoded = set(), Counter(), [], set()
        self.overflowed = True


class AccuracyMonitor:
    """Keeps exact answers for a sample of keys and reports the observed error per kind."""

    def __init__(
        self,
        *,
        sample_rate: float = 0.01,
        max_tracked_keys: int = 100,
        max_exact_items_per_key: int = 10_000,
        checks_per_measure: int = 1_000,
        bloom_probes: int = 1_000,
    ) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise SketchParameterError("sample_rate", f"must be in (0, 1], not {sample_rate}")
        for name, value in (
            ("max_tracked_keys", max_tracked_keys),
            ("max_exact_items_per_key", max_exact_items_per_key),
            ("checks_per_measure", checks_per_measure),
            ("bloom_probes", bloom_probes),
        ):
            if value < 1:
                raise SketchParameterError(name, f"must be at least 1, not {value}")
        self._sample_rate = sample_rate
        self._max_tracked_keys = max_tracked_keys
        self._max_exact_items_per_key = max_exact_items_per_key
        self._checks_per_measure = checks_per_measure
        self._probes = [f"{_PROBE_PREFIX}{index}" for index in range(bloom_probes)]
        self._tracked: dict[str, _Tracked] = {}
        self._totals: dict[SketchKind, _Totals] = {}
        self._refused_keys = 0

    @property
    def tracked_keys(self) -> int:
        """Keys holding a slot, overflowed ones included."""
        return len(self._tracked)

    @property
    def overflowed_keys(self) -> int:
        """Keys whose exact state passed max_exact_items_per_key and was dropped."""
        return sum(1 for tracked in self._tracked.values() if tracked.overflowed)

    @property
    def refused_keys(self) -> int:
        """Sampled keys not tracked because every slot was taken."""
        return self._refused_keys

    def is_sampled(self, key: Key) -> bool:
        """Whether a key is in the sample: the same answer in every process, every run."""
        digest = hashlib.blake2b(
            item_text(key).encode("utf-8"), digest_size=8, person=_PERSONALIZATION
        ).digest()
        return int.from_bytes(digest, "little") < self._sample_rate * 2.0**64

    def observe(self, key: Key, spec: SketchSpec, items: Items) -> bool:
        """Record a batch the key's sketch accepted; return whether the key is tracked."""
        if not self.is_sampled(key):
            return False
        name = item_text(key)
        tracked = self._tracked.get(name)
        if tracked is None or tracked.spec != spec:
            if tracked is None and len(self._tracked) >= self._max_tracked_keys:
                self._refused_keys += 1
                return False
            tracked = _Tracked(spec)
            self._tracked[name] = tracked
        batch = items if isinstance(items, Sequence | np.ndarray) else list(items)
        tracked.items_seen += len(batch)
        if tracked.overflowed:
            return True
        kind = spec.kind
        if kind in (SketchKind.COUNT_MIN, SketchKind.TOP_K):
            tracked.counts.update(item_texts(batch, kind.value))
        elif kind is SketchKind.KLL:
            tracked.values.extend(numeric_array(batch, kind.value).tolist())
        elif kind is SketchKind.RESERVOIR:
            tracked.encoded.update(
                json_bytes(item, kind.value, index) for index, item in enumerate(batch)
            )
        else:
            tracked.texts.update(item_texts(batch, kind.value))
        if tracked.size() > self._max_exact_items_per_key:
            tracked.drop()
        return True

    def forget(self, key: Key) -> None:
        """Stop tracking a key (deleted, or merged with data the monitor never saw)."""
        self._tracked.pop(item_text(key), None)

    def measure(self, key: Key, sketch: Sketch) -> AccuracyStats | None:
        """Compare a tracked key's sketch with its exact answer; None if not measurable."""
        tracked = self._tracked.get(item_text(key))
        if tracked is None or tracked.overflowed or tracked.spec != sketch.spec:
            return None
        totals = _Totals()
        kind = sketch.kind
        if kind is SketchKind.HYPERLOGLOG:
            self._measure_distinct(sketch, len(tracked.texts), totals)
        elif kind in (SketchKind.COUNT_MIN, SketchKind.TOP_K):
            self._measure_counts(sketch, tracked.counts, totals)
        elif kind is SketchKind.KLL:
            self._measure_ranks(sketch, tracked.values, totals)
        elif kind is SketchKind.BLOOM:
            self._measure_membership(sketch, tracked.texts, totals)
        else:
            self._measure_sample(sketch, tracked, totals)
        self._totals.setdefault(kind, _Totals()).add_all(totals)
        return totals.stats(kind)

    def report(self) -> dict[str, AccuracyStats]:
        """Observed error of every kind measured so far, keyed by kind (a str enum)."""
        return {kind: totals.stats(kind) for kind, totals in self._totals.items()}

    def _measure_distinct(self, sketch: Sketch, distinct: int, totals: _Totals) -> None:
        answer = sketch.distinct_count()
        error = abs(answer.estimate - distinct) / max(distinct, 1)
        bound = 3.0 * answer.relative_standard_error
        totals.add(error, bound, error <= bound)

    def _measure_counts(self, sketch: Sketch, counts: Counter[str], totals: _Totals) -> None:
        # The heaviest items first: they are what a top-k answer is about.
        for text, count in counts.most_common(self._checks_per_measure):
            answer = sketch.frequency(text)
            weight = max(answer.total_weight, 1.0)
            error = abs(answer.estimate - count) / weight
            bound = answer.error_bound / weight
            if sketch.kind is SketchKind.COUNT_MIN:
                within = 0.0 <= answer.estimate - count <= answer.error_bound
            else:
                within = answer.lower_bound <= count <= answer.upper_bound and error <= bound
            totals.add(error, bound, within)

    def _measure_ranks(self, sketch: Sketch, values: list[float], totals: _Totals) -> None:
        if not values:
            return
        values.sort()
        count = len(values)
        for answer in sketch.quantiles(_CHECKED_RANKS):
            below = bisect.bisect_left(values, answer.value) / count
            at_or_below = bisect.bisect_right(values, answer.value) / count
            error = max(0.0, below - answer.rank, answer.rank - at_or_below)
            bound = answer.normalized_rank_error
            totals.add(error, bound, error <= bound)

    def _measure_membership(self, sketch: Sketch, members: set[str], totals: _Totals) -> None:
        checked = list(itertools.islice(members, self._checks_per_measure))
        false_negatives = sum(1 for present in sketch.might_contain_many(checked) if not present)
        probes = [probe for probe in self._probes if probe not in members]
        false_positives = sum(sketch.might_contain_many(probes))
        rate = false_positives / max(len(probes), 1)
        bound = 2.0 * float(sketch.spec.params["error_rate"])
        totals.add(rate, bound, rate <= bound and false_negatives == 0)

    def _measure_sample(self, sketch: Sketch, tracked: _Tracked, totals: _Totals) -> None:
        answer = sketch.sample()
        seen = tracked.items_seen
        error = abs(answer.items_seen - seen) / max(seen, 1)
        members = tracked.encoded
        kind = sketch.kind.value
        sampled = [json_bytes(item, kind, index) for index, item in enumerate(answer.items)]
        within = (
            error == 0.0
            and len(answer.items) == min(answer.k, seen)
            and all(item in members for item in sampled)
        )
        totals.add(error, 0.0, within)
