"""OTLP push of the node's metrics: the prometheus_client registry converted to OTLP data
points and sent to a collector (`metrics_otlp_interval_s`, `otlp_endpoint`).

The registry stays the one source: counters become cumulative monotonic sums, gauges
gauges, histograms cumulative explicit-bucket histograms (Prometheus's cumulative
bucket counts turned into per-bucket counts, as OTLP wants), each sample's labels the
point's attributes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.metrics_core import Metric as PromMetric

from coordinator.metrics import Registry

log = logging.getLogger(__name__)

SCOPE = InstrumentationScope("shoal.coordinator")


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _histogram(family: PromMetric, start_ns: int, now_ns: int) -> Histogram:
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = defaultdict(list)
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    counts: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in family.samples:
        labels = {name: value for name, value in sample.labels.items() if name != "le"}
        key = _key(labels)
        if sample.name.endswith("_bucket"):
            buckets[key].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_sum"):
            sums[key] = sample.value
        elif sample.name.endswith("_count"):
            counts[key] = sample.value
    points = []
    for key, cumulative in buckets.items():
        cumulative.sort()
        bounds = [bound for bound, _ in cumulative if not math.isinf(bound)]
        per_bucket = []
        previous = 0.0
        for _, count in cumulative:
            per_bucket.append(int(count - previous))
            previous = count
        points.append(
            HistogramDataPoint(
                attributes=dict(key),
                start_time_unix_nano=start_ns,
                time_unix_nano=now_ns,
                count=int(counts.get(key, previous)),
                sum=sums.get(key, 0.0),
                bucket_counts=per_bucket,
                explicit_bounds=bounds,
                min=math.nan,
                max=math.nan,
            )
        )
    return Histogram(points, AggregationTemporality.CUMULATIVE)


def convert(families: Iterable[PromMetric], start_ns: int, now_ns: int) -> list[Metric]:
    """The registry's families as OTLP metrics (unknown and summary types are left out)."""
    metrics: list[Metric] = []
    for family in families:
        data: Sum | Gauge | Histogram
        if family.type == "histogram":
            data = _histogram(family, start_ns, now_ns)
            name = family.name
        elif family.type in ("counter", "gauge"):
            points = [
                NumberDataPoint(
                    attributes=dict(sample.labels),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now_ns,
                    value=sample.value,
                )
                for sample in family.samples
                if family.type == "gauge" or sample.name.endswith("_total")
            ]
            if family.type == "counter":
                data = Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True)
                name = family.name + "_total"
            else:
                data = Gauge(points)
                name = family.name
        else:
            continue
        metrics.append(Metric(name=name, description=family.documentation, unit="", data=data))
    return metrics


class OtlpMetricsPusher:
    """Sends the registry to an OTLP collector every `interval_s` from a thread of its own."""

    def __init__(
        self,
        registry: Registry,
        interval_s: float,
        *,
        endpoint: str = "",
        exporter: MetricExporter | None = None,
        service_name: str = "shoal",
    ) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True)
        self._registry = registry
        self._interval_s = interval_s
        self._exporter = exporter
        self._resource = Resource.create({"service.name": service_name})
        self._start_ns = time.time_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otlp-metrics", daemon=True)

    def push(self) -> bool:
        """Sends the registry once; True when the collector took it."""
        self._registry.refresh()
        metrics = convert(self._registry.registry.collect(), self._start_ns, time.time_ns())
        data = MetricsData(
            [ResourceMetrics(self._resource, [ScopeMetrics(SCOPE, metrics, "")], "")]
        )
        result = self._exporter.export(data, timeout_millis=10_000)
        return result is MetricExportResult.SUCCESS

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._exporter.shutdown()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                if not self.push():
                    log.warning("the OTLP collector refused the metrics (see the exporter's log)")
            except Exception:
                log.exception("pushing the metrics over OTLP failed")
