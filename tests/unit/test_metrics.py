"""The in-process metrics registry: labelled gauges and counters in the Prometheus text format."""

from __future__ import annotations

import math

import pytest

from coordinator.metrics import Registry


def test_gauges_and_counters_render_as_prometheus_text() -> None:
    registry = Registry()
    errors = registry.gauge("shoal_error", "Observed error")
    errors.set(0.25, kind="hll", stat="max")
    errors.set(math.inf, kind="kll", stat="max")
    adds = registry.counter("shoal_adds_total", "Adds")
    adds.inc(kind="hll")
    adds.inc(2, kind="hll")
    assert registry.render().splitlines() == [
        "# HELP shoal_adds_total Adds",
        "# TYPE shoal_adds_total counter",
        'shoal_adds_total{kind="hll"} 3.0',
        "# HELP shoal_error Observed error",
        "# TYPE shoal_error gauge",
        'shoal_error{kind="hll",stat="max"} 0.25',
        'shoal_error{kind="kll",stat="max"} +Inf',
    ]
    assert adds.value(kind="hll") == 3.0
    assert errors.value(kind="cms", stat="max") is None


def test_a_name_is_one_metric_of_one_type() -> None:
    registry = Registry()
    assert registry.gauge("g", "a gauge") is registry.gauge("g", "a gauge")
    with pytest.raises(ValueError, match="is a gauge"):
        registry.counter("g", "now a counter")
    with pytest.raises(ValueError, match="only grows"):
        registry.counter("c", "a counter").inc(-1)


def test_label_values_are_escaped() -> None:
    registry = Registry()
    registry.gauge("g", "help").set(1, name='a "quoted"\nvalue')
    assert 'g{name="a \\"quoted\\"\\nvalue"} 1.0' in registry.render()
