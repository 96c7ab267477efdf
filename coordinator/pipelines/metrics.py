"""Counters, apply latency and lag of one pipeline, also reported to the node's registry.

Counters are kept per outcome (`received`, `applied`, `duplicates`, `dead_lettered`, ...)
and read by the Pipelines service. The apply latency of an event is the time from its
Kafka timestamp (the producer's clock) to the commit that made its effects readable; it
goes into a fixed log-scale histogram, from which the service's percentiles are read.
The node's registry gets `shoal_pipeline_events_total` and `shoal_pipeline_batches_total`
by outcome, `shoal_pipeline_rejected_total` by rule, the histograms
`shoal_pipeline_end_to_end_seconds` (event timestamp to commit) and
`shoal_pipeline_batch_apply_seconds` (a batch's grid commit), and the gauges
`shoal_pipeline_lag` and `shoal_pipeline_committed_offset` per topic partition.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram

from coordinator.metrics import END_TO_END_BUCKETS_S, Registry

# Bucket upper bounds in milliseconds: 1 ms to about 10 minutes, 40 buckets a decade.
BUCKETS_PER_DECADE = 40
BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(
    10 ** (step / BUCKETS_PER_DECADE) for step in range(0, 6 * BUCKETS_PER_DECADE)
)


class LatencyHistogram:
    """Counts of latencies in log-scale buckets; percentiles to within one bucket (6%)."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKET_BOUNDS_MS) + 1)
        self.total = 0

    def record_many(self, latencies_ms: Iterable[float]) -> None:
        bounds = BUCKET_BOUNDS_MS
        counts = self.counts
        added = 0
        for latency in latencies_ms:
            counts[bisect.bisect_left(bounds, latency)] += 1
            added += 1
        self.total += added

    def percentile_ms(self, fraction: float) -> float:
        """The upper bound of the bucket holding the given fraction (0 when empty)."""
        if not self.total:
            return 0.0
        wanted = max(1, int(self.total * fraction + 0.5))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                return BUCKET_BOUNDS_MS[min(index, len(BUCKET_BOUNDS_MS) - 1)]
        return BUCKET_BOUNDS_MS[-1]


@dataclass(frozen=True)
class PipelineFamilies:
    """The node's pipeline families, shared by every pipeline (a label tells them apart)."""

    events: PromCounter
    batches: PromCounter
    rejected: PromCounter
    lag: Gauge
    end_to_end: Histogram
    batch_apply: Histogram

    @classmethod
    def of(cls, registry: Registry) -> PipelineFamilies:
        """Declares the families (once per registry; asking again returns them)."""
        return cls(
            events=registry.counter(
                "shoal_pipeline_events_total",
                "events of a pipeline by outcome",
                ("pipeline", "outcome"),
            ),
            batches=registry.counter(
                "shoal_pipeline_batches_total",
                "batches of a pipeline by outcome",
                ("pipeline", "outcome"),
            ),
            rejected=registry.counter(
                "shoal_pipeline_rejected_total",
                "events dead-lettered by the rule that refused them",
                ("pipeline", "rule"),
            ),
            lag=registry.gauge(
                "shoal_pipeline_lag",
                "records of a partition not yet applied (end - committed)",
                ("pipeline", "topic", "partition"),
            ),
            end_to_end=registry.histogram(
                "shoal_pipeline_end_to_end_seconds",
                "event timestamp (the producer's clock) to the commit that applied it",
                ("pipeline",),
                END_TO_END_BUCKETS_S,
            ),
            batch_apply=registry.histogram(
                "shoal_pipeline_batch_apply_seconds",
                "time of a batch's grid transaction (effects and offsets), by outcome",
                ("pipeline", "outcome"),
            ),
        )


class PipelineMetrics:
    """Everything counted about one pipeline; safe to read from any thread."""

    def __init__(self, pipeline: str, registry: Registry | None = None) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.latency = LatencyHistogram()
        families = PipelineFamilies.of(registry or Registry())
        self._events = families.events
        self._batches = families.batches
        self._rejected = families.rejected
        self._lag = families.lag
        self._end_to_end = families.end_to_end.labels(pipeline=pipeline)
        self._batch_apply = families.batch_apply

    def count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                if amount:
                    self.counters[name] += amount
        for name, amount in amounts.items():
            if amount:
                if name.startswith("batches_"):
                    self._batches.labels(pipeline=self.pipeline, outcome=name[8:]).inc(amount)
                else:
                    self._events.labels(pipeline=self.pipeline, outcome=name).inc(amount)

    def count_rules(self, rules: Iterable[str]) -> None:
        with self._lock:
            for rule in rules:
                self.counters[f"dead_lettered.{rule}"] += 1
                self._rejected.labels(pipeline=self.pipeline, rule=rule).inc()

    def record_batch_seconds(self, seconds: float, outcome: str) -> None:
        """How long one batch's grid transaction took, and how it ended."""
        self._batch_apply.labels(pipeline=self.pipeline, outcome=outcome).observe(seconds)

    def record_latencies(self, latencies_ms: Sequence[float]) -> None:
        if not latencies_ms:
            return
        with self._lock:
            self.latency.record_many(latencies_ms)
        observe = self._end_to_end.observe
        for latency_ms in latencies_ms:
            observe(max(latency_ms, 0.0) / 1000)

    def publish(self, lags: Iterable[tuple[str, int, int]]) -> None:
        """Sets the lag gauge per (topic, partition, lag)."""
        for topic, partition, lag in lags:
            self._lag.labels(pipeline=self.pipeline, topic=topic, partition=str(partition)).set(lag)

    def snapshot(self) -> tuple[dict[str, int], float, float, float]:
        """The counters, and the apply latency's p50, p99 and p99.9 in milliseconds."""
        with self._lock:
            return (
                dict(self.counters),
                self.latency.percentile_ms(0.5),
                self.latency.percentile_ms(0.99),
                self.latency.percentile_ms(0.999),
            )
