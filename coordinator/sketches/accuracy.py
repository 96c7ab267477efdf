"""Accuracy monitoring: exact answers kept beside a sample of sketch keys, compared on demand.

Every commit passes through ``around_commit``. For the writes to sketch keys in the
monitor's sample (a stable hash of ``map/key``) it feeds the committed batch to the
library's ``AccuracyMonitor``, which keeps the exact answer. ``measure`` compares each
tracked key's committed sketch with that answer and publishes the observed relative
error per kind as metrics.

The exact answer is only right if the monitor saw every item the sketch holds, so a
key is tracked from its first add (when it held no sketch) onwards, and dropped when
it is deleted or when a commit touching it fails in a way that leaves its outcome
unknown. A key that already held a sketch the monitor never saw (data from before a
restart, or from another coordinator) is not trusted and not measured, and so is a tracked
key whose entry no longer has the version of the last commit the monitor saw: on a shared
store another coordinator's adds reach it without passing here. Commits to
sampled keys are observed one at a time under a lock, so the check before a commit
and the observation after it cannot interleave with another commit to a sampled key.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coordinator.metrics import Registry
from coordinator.sketches.apply import SpecCache, load_sketch
from coordinator.sketches.items import decode_items
from coordinator.transactions.manager import CommitResult
from grid.backend import PartitionStore
from grid.catalog import Catalog
from grid.entry import value_of, version_of
from grid.errors import Conflict, GridError, InvalidArgument, NotFound, ResourceExhausted
from grid.memory.records import Op
from grid.participant import Write
from grid.partitioner import Partitioner
from grid.sketches import AccuracyMonitor, AccuracyStats, SketchKind, SketchSpec

# Failures that happen before anything is applied: the sketch is as it was.
_NOT_APPLIED = (Conflict, InvalidArgument, NotFound, ResourceExhausted)
_UNTRUSTED_REMEMBERED_MAX = 10_000


@dataclass(frozen=True)
class AccuracyConfig:
    """What the monitor samples and how much exact state it may keep."""

    sample_rate: float = 0.01
    keys_max: int = 100
    items_per_key_max: int = 10_000


@dataclass(frozen=True)
class KindAccuracy:
    """The observed error of one kind over the keys measured in one pass."""

    stats: AccuracyStats
    keys: int


@dataclass(frozen=True)
class AccuracyReport:
    kinds: tuple[KindAccuracy, ...]
    sample_rate: float
    tracked_keys: int
    overflowed_keys: int
    refused_keys: int
    untrusted_keys: int


@dataclass(frozen=True)
class _Watched:
    write: Write
    name: str
    spec: SketchSpec
    # The write's place in its commit: its version is the commit result's at that place.
    position: int


class SketchAccuracy:
    """Feeds committed sketch batches of sampled keys to an AccuracyMonitor and measures it."""

    def __init__(
        self,
        config: AccuracyConfig,
        catalog: Catalog,
        specs: SpecCache,
        partitioner: Partitioner,
        partitions: Sequence[PartitionStore],
        rng: random.Random,
        metrics: Registry,
    ) -> None:
        self.config = config
        self._monitor = AccuracyMonitor(
            sample_rate=config.sample_rate,
            max_tracked_keys=config.keys_max,
            max_exact_items_per_key=config.items_per_key_max,
        )
        self._catalog = catalog
        self._specs = specs
        self._partitioner = partitioner
        self._partitions = partitions
        self._rng = rng
        self._lock = threading.Lock()
        # Tracked keys (their monitor name) and where they live.
        self._keys: dict[str, tuple[str, str]] = {}
        # The version each tracked key's entry had after the last commit the monitor saw.
        # Another coordinator on a shared store (or any path around this one) changes it, and
        # the exact answer would then miss items: the key is dropped, never measured wrong.
        self._seen_versions: dict[str, int] = {}
        self._untrusted: set[str] = set()
        self._error = metrics.gauge(
            "shoal_sketch_observed_relative_error",
            "Observed relative error of sketches against exact answers, by kind (mean, max)",
            ("kind", "stat"),
        )
        self._bound = metrics.gauge(
            "shoal_sketch_error_bound", "The relative error each sketch kind promises", ("kind",)
        )
        self._outside = metrics.gauge(
            "shoal_sketch_outside_bound",
            "Measurements outside the kind's bound, last pass",
            ("kind",),
        )
        self._samples = metrics.gauge(
            "shoal_sketch_accuracy_samples",
            "Measurements made in the last pass, by kind",
            ("kind",),
        )
        self._tracked = metrics.gauge(
            "shoal_sketch_accuracy_tracked_keys", "Sketch keys with exact answers kept"
        )

    # Observing commits -----------------------------------------------------------

    def around_commit(
        self, writes: Sequence[Write], commit: Callable[[], CommitResult]
    ) -> CommitResult:
        """Run a commit; observe its sketch writes to sampled keys once it has committed."""
        watched = self._watched(writes)
        if not watched:
            return commit()
        with self._lock:
            observed = self._before(watched)
            try:
                result = commit()
            except _NOT_APPLIED:
                raise
            except BaseException:
                # The outcome is unknown: the exact answers of these keys may be wrong.
                for item in watched:
                    self._distrust(item.name)
                raise
            if not result.replayed:
                self._after(observed, result.versions)
            return result

    def _watched(self, writes: Sequence[Write]) -> list[_Watched]:
        watched: list[_Watched] = []
        for position, write in enumerate(writes):
            op = write.op
            if op is not Op.SKETCH_ADD and op is not Op.DELETE:
                continue
            definition = self._catalog.find(write.map)
            if definition is None or definition.sketch is None:
                continue
            name = f"{write.map}/{write.key}"
            if self._monitor.is_sampled(name):
                watched.append(_Watched(write, name, self._specs.spec(write.map), position))
        return watched

    def _before(self, watched: list[_Watched]) -> list[_Watched]:
        observed: list[_Watched] = []
        for item in watched:
            if item.write.op is Op.DELETE:
                self._distrust(item.name)
                continue
            stored = self._stored(item.write.map, item.write.key)
            if stored is None:
                # A fresh key: from here the monitor sees every batch it holds.
                self._monitor.forget(item.name)
                self._keys.pop(item.name, None)
                self._untrusted.discard(item.name)
                observed.append(item)
            elif item.name in self._keys and self._unchanged(item.name, stored):
                observed.append(item)
            else:
                self._distrust(item.name)
        return observed

    def _after(self, observed: list[_Watched], versions: tuple[int, ...]) -> None:
        for item in observed:
            write = item.write
            if item.position >= len(versions):
                # A retry whose first answer was forgotten: the version is not known.
                self._distrust(item.name)
                continue
            try:
                items = decode_items(write.value, item.spec.kind)
            except GridError:
                continue
            if self._monitor.observe(item.name, item.spec, items):
                self._keys[item.name] = (write.map, write.key)
                self._seen_versions[item.name] = versions[item.position]
        self._tracked.set(len(self._keys))

    def _unchanged(self, name: str, entry: bytes) -> bool:
        return self._seen_versions.get(name) == version_of(entry)

    def _distrust(self, name: str) -> None:
        self._monitor.forget(name)
        self._keys.pop(name, None)
        self._seen_versions.pop(name, None)
        if len(self._untrusted) < _UNTRUSTED_REMEMBERED_MAX:
            self._untrusted.add(name)

    def _stored(self, map_name: str, key: str) -> bytes | None:
        """The key's stored entry (grid.entry: value and version), or None."""
        return self._partitions[self._partitioner.partition_of(key)].get(map_name, key)

    # Measuring -------------------------------------------------------------------

    def measure(self) -> AccuracyReport:
        """Compare every tracked key's sketch with its exact answer; publish per-kind errors."""
        by_kind: dict[SketchKind, list[AccuracyStats]] = {}
        with self._lock:
            for name, (map_name, key) in list(self._keys.items()):
                definition = self._catalog.find(map_name)
                stored = self._stored(map_name, key)
                if definition is None or definition.sketch is None or stored is None:
                    # Dropped or deleted behind the monitor's back: start again on next add.
                    self._monitor.forget(name)
                    del self._keys[name]
                    self._seen_versions.pop(name, None)
                    continue
                if not self._unchanged(name, stored):
                    # Changed by a commit this monitor did not see (another coordinator).
                    self._distrust(name)
                    continue
                spec = self._specs.spec(map_name)
                sketch = load_sketch(spec, value_of(stored), self._rng, map_name)
                stats = self._monitor.measure(name, sketch)
                if stats is not None:
                    by_kind.setdefault(spec.kind, []).append(stats)
            kinds = tuple(
                KindAccuracy(_combine(kind, measured), len(measured))
                for kind, measured in sorted(by_kind.items())
            )
            report = AccuracyReport(
                kinds=kinds,
                sample_rate=self.config.sample_rate,
                tracked_keys=self._monitor.tracked_keys,
                overflowed_keys=self._monitor.overflowed_keys,
                refused_keys=self._monitor.refused_keys,
                untrusted_keys=len(self._untrusted),
            )
        self._publish(report)
        return report

    def _publish(self, report: AccuracyReport) -> None:
        for item in report.kinds:
            kind = item.stats.kind.value
            self._error.labels(kind=kind, stat="mean").set(item.stats.mean_relative_error)
            self._error.labels(kind=kind, stat="max").set(item.stats.max_relative_error)
            self._bound.labels(kind=kind).set(item.stats.error_bound)
            self._outside.labels(kind=kind).set(item.stats.outside_bound)
            self._samples.labels(kind=kind).set(item.stats.samples)
        self._tracked.set(report.tracked_keys)


def _combine(kind: SketchKind, measured: list[AccuracyStats]) -> AccuracyStats:
    samples = sum(stats.samples for stats in measured)
    error_sum = sum(stats.mean_relative_error * stats.samples for stats in measured)
    return AccuracyStats(
        kind=kind,
        samples=samples,
        mean_relative_error=error_sum / samples if samples else 0.0,
        max_relative_error=max((stats.max_relative_error for stats in measured), default=0.0),
        error_bound=max((stats.error_bound for stats in measured), default=0.0),
        outside_bound=sum(stats.outside_bound for stats in measured),
    )
