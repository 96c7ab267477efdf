"""The PromQL tokenizer of tests/support/promql.py finds selectors, not functions or labels."""

from __future__ import annotations

from tests.support.promql import label_values_metric, metric_names


def test_selectors_are_found_and_functions_labels_keywords_are_not() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le, instance) (rate(a_seconds_bucket{code=~"x|y",'
        ' b="}"}[5m]))) > on (instance, kind) max without (pod) (b_total offset 5m)'
        " and ignoring (x) c or up == 0 unless d[10m:1m] > bool 1e3"
    )
    assert metric_names(expression) == {"a_seconds_bucket", "b_total", "c", "up", "d"}


def test_grafana_label_values_names_its_metric() -> None:
    query = 'label_values(shoal_rpc_requests_total{job="shoal"}, instance)'
    assert label_values_metric(query) == "shoal_rpc_requests_total"
