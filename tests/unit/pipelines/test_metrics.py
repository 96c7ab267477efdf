"""Pipeline counters and the apply-latency histogram."""

from __future__ import annotations

import pytest

from coordinator.metrics import Registry
from coordinator.pipelines.metrics import LatencyHistogram, PipelineMetrics


def test_percentiles_are_within_a_bucket_of_the_truth():
    histogram = LatencyHistogram()
    histogram.record_many(range(1, 1001))
    assert histogram.percentile_ms(0.5) == pytest.approx(500, rel=0.06)
    assert histogram.percentile_ms(0.99) == pytest.approx(990, rel=0.06)
    assert histogram.percentile_ms(0.99) >= 990
    assert LatencyHistogram().percentile_ms(0.5) == 0.0


def test_counters_and_rules_add_up_and_reach_the_registry():
    registry = Registry()
    metrics = PipelineMetrics("p", registry)
    metrics.count(applied=3, duplicates=0, batches_committed=1)
    metrics.count(applied=2)
    metrics.count_rules(["min", "min", "json"])
    metrics.record_latencies([10.0, 20.0])
    metrics.record_batch_seconds(0.002, "committed")
    counters, p50, p99, p999 = metrics.snapshot()
    assert counters == {
        "applied": 5,
        "batches_committed": 1,
        "dead_lettered.min": 2,
        "dead_lettered.json": 1,
    }
    assert 9.4 <= p50 <= 10.6 and 19 <= p99 <= 21.2 and 19 <= p999 <= 21.2
    metrics.publish([("orders", 3, 42)])
    value = registry.value
    assert value("shoal_pipeline_events_total", pipeline="p", outcome="applied") == 5
    assert value("shoal_pipeline_batches_total", pipeline="p", outcome="committed") == 1
    assert value("shoal_pipeline_rejected_total", pipeline="p", rule="min") == 2
    assert value("shoal_pipeline_lag", pipeline="p", topic="orders", partition="3") == 42
    assert value("shoal_pipeline_end_to_end_seconds_count", pipeline="p") == 2
    assert value("shoal_pipeline_end_to_end_seconds_bucket", pipeline="p", le="0.01") == 1
    assert value("shoal_pipeline_batch_apply_seconds_count", pipeline="p", outcome="committed") == 1
