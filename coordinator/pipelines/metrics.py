"""Counters, apply latency and lag of one pipeline, also reported to the node's registry.

Counters are kept per outcome (`received`, `applied`, `duplicates`, `dead_lettered`, ...)
and read by the Pipelines service. The apply latency of an event is the time from its
Kafka timestamp (the producer's clock) to the commit that made its effects readable; it
goes into a fixed log-scale histogram, from which percentiles are read. The node's
metrics registry (Prometheus text) gets `shoal_pipeline_events_total` and
`shoal_pipeline_batches_total` by outcome, and the gauges `shoal_pipeline_lag` per
partition and `shoal_pipeline_apply_latency_ms` per quantile.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Sequence

from coordinator.metrics import Registry

# Bucket upper bounds in milliseconds: 1 ms to about 10 minutes, 40 buckets a decade.
BUCKETS_PER_DECADE = 40
BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(
    10 ** (step / BUCKETS_PER_DECADE) for step in range(0, 6 * BUCKETS_PER_DECADE)
)
QUANTILES = (0.5, 0.99)


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


class PipelineMetrics:
    """Everything counted about one pipeline; safe to read from any thread."""

    def __init__(self, pipeline: str, registry: Registry | None = None) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.latency = LatencyHistogram()
        registry = registry or Registry()
        self._events = registry.counter(
            "shoal_pipeline_events_total", "events of a pipeline by outcome"
        )
        self._batches = registry.counter(
            "shoal_pipeline_batches_total", "batches of a pipeline by outcome"
        )
        self._lag = registry.gauge(
            "shoal_pipeline_lag", "records of a partition not yet applied (end - committed)"
        )
        self._latency = registry.gauge(
            "shoal_pipeline_apply_latency_ms",
            "producer timestamp to commit, by quantile, since the coordinator started",
        )

    def count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                if amount:
                    self.counters[name] += amount
        for name, amount in amounts.items():
            if amount:
                if name.startswith("batches_"):
                    self._batches.inc(amount, pipeline=self.pipeline, outcome=name[8:])
                else:
                    self._events.inc(amount, pipeline=self.pipeline, outcome=name)

    def count_rules(self, rules: Iterable[str]) -> None:
        with self._lock:
            for rule in rules:
                self.counters[f"dead_lettered.{rule}"] += 1

    def record_latencies(self, latencies_ms: Sequence[float]) -> None:
        if not latencies_ms:
            return
        with self._lock:
            self.latency.record_many(latencies_ms)

    def publish(self, lags: Iterable[tuple[str, int, int]]) -> None:
        """Sets the gauges: lag per (topic, partition, lag), latency quantiles."""
        for topic, partition, lag in lags:
            self._lag.set(lag, pipeline=self.pipeline, topic=topic, partition=str(partition))
        with self._lock:
            quantiles = [(q, self.latency.percentile_ms(q)) for q in QUANTILES]
        for quantile, value in quantiles:
            self._latency.set(value, pipeline=self.pipeline, quantile=str(quantile))

    def snapshot(self) -> tuple[dict[str, int], float, float]:
        """The counters, and the apply latency's p50 and p99 in milliseconds."""
        with self._lock:
            return (
                dict(self.counters),
                self.latency.percentile_ms(0.5),
                self.latency.percentile_ms(0.99),
            )
