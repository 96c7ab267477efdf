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
    counters, p50, p99 = metrics.snapshot()
    assert counters == {
        "applied": 5,
        "batches_committed": 1,
        "dead_lettered.min": 2,
        "dead_lettered.json": 1,
    }
    assert 9.4 <= p50 <= 10.6 and 19 <= p99 <= 21.2
    metrics.publish([("orders", 3, 42)])
    text = registry.render()
    assert 'shoal_pipeline_events_total{outcome="applied",pipeline="p"} 5.0' in text
    assert 'shoal_pipeline_batches_total{outcome="committed",pipeline="p"} 1.0' in text
    assert 'shoal_pipeline_lag{partition="3",pipeline="p",topic="orders"} 42.0' in text
    assert 'shoal_pipeline_apply_latency_ms{pipeline="p",quantile="0.99"}' in text
