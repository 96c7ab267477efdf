"""The node's metrics registry: prometheus_client families declared once, read back, rendered."""

from __future__ import annotations

import math

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from coordinator.metrics import Registry


def test_families_render_as_prometheus_text_and_parse_back() -> None:
    registry = Registry()
    errors = registry.gauge("shoal_error", "Observed error", ("kind", "stat"))
    errors.labels(kind="hll", stat="max").set(0.25)
    errors.labels(kind="kll", stat="max").set(math.inf)
    adds = registry.counter("shoal_adds_total", "Adds", ("kind",))
    adds.labels(kind="hll").inc()
    adds.labels(kind="hll").inc(2)
    latency = registry.histogram("shoal_latency_seconds", "Latency", buckets=(0.1, 1.0))
    latency.observe(0.5)
    parsed = {family.name: family for family in text_string_to_metric_families(registry.render())}
    assert parsed["shoal_adds"].type == "counter"
    assert [(s.name, s.labels, s.value) for s in parsed["shoal_adds"].samples] == [
        ("shoal_adds_total", {"kind": "hll"}, 3.0)
    ]
    assert {s.labels["kind"]: s.value for s in parsed["shoal_error"].samples} == {
        "hll": 0.25,
        "kll": math.inf,
    }
    buckets = {
        s.labels["le"]: s.value
        for s in parsed["shoal_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets == {"0.1": 0.0, "1.0": 1.0, "+Inf": 1.0}
    assert registry.value("shoal_adds_total", kind="hll") == 3.0
    assert registry.value("shoal_error", kind="cms", stat="max") is None
    assert "shoal_latency_seconds" in registry.names()


def test_a_name_is_one_family_of_one_type_and_labels() -> None:
    registry = Registry()
    assert registry.gauge("g", "a gauge") is registry.gauge("g", "a gauge")
    with pytest.raises(ValueError, match="is a Gauge"):
        registry.counter("g", "now a counter")
    with pytest.raises(ValueError, match="has the labels"):
        registry.gauge("g", "a gauge", ("kind",))
    with pytest.raises(ValueError):
        registry.counter("c", "a counter").inc(-1)


def test_label_values_are_escaped() -> None:
    registry = Registry()
    registry.gauge("g", "help", ("name",)).labels(name='a "quoted"\nvalue').set(1)
    assert 'g{name="a \\"quoted\\"\\nvalue"} 1.0' in registry.render()


def test_scrape_time_figures_and_refreshes_run_on_every_render() -> None:
    registry = Registry()
    scrapes: list[int] = []
    registry.before_scrape(lambda: scrapes.append(1))
    registry.on_scrape(lambda: [GaugeMetricFamily("shoal_now", "computed", len(scrapes))])
    assert "shoal_now 1.0" in registry.render()
    assert "shoal_now 2.0" in registry.render()
