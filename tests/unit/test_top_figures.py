"""`shoal top`'s figures: counter rates, histogram percentiles and gauges from two scrapes."""

from __future__ import annotations

import math

import pytest

from shoal._top_figures import figures, parse, quantiles

BEFORE = """
# TYPE shoal_rpc_requests counter
shoal_rpc_requests_total{service="shoal.v1.Data",method="Put"} 100
# TYPE shoal_rpc_errors counter
shoal_rpc_errors_total{service="shoal.v1.Data",method="Put",code="ABORTED"} 1
# TYPE shoal_rpc_duration_seconds histogram
shoal_rpc_duration_seconds_bucket{service="shoal.v1.Data",method="Put",le="0.001"} 50
shoal_rpc_duration_seconds_bucket{service="shoal.v1.Data",method="Put",le="0.01"} 100
shoal_rpc_duration_seconds_bucket{service="shoal.v1.Data",method="Put",le="+Inf"} 100
shoal_rpc_duration_seconds_count{service="shoal.v1.Data",method="Put"} 100
shoal_rpc_duration_seconds_sum{service="shoal.v1.Data",method="Put"} 0.3
# TYPE shoal_transactions_committed counter
shoal_transactions_committed_total{kind="one_phase",origin="sdk"} 10
# TYPE shoal_pipeline_lag gauge
shoal_pipeline_lag{pipeline="p",topic="t",partition="0"} 7
"""

AFTER = """
# TYPE shoal_rpc_requests counter
shoal_rpc_requests_total{service="shoal.v1.Data",method="Put"} 300
# TYPE shoal_rpc_errors counter
shoal_rpc_errors_total{service="shoal.v1.Data",method="Put",code="ABORTED"} 5
# TYPE shoal_rpc_in_flight gauge
shoal_rpc_in_flight{service="shoal.v1.Data",method="Put"} 3
# TYPE shoal_rpc_duration_seconds histogram
shoal_rpc_duration_seconds_bucket{service="shoal.v1.Data",method="Put",le="0.001"} 50
shoal_rpc_duration_seconds_bucket{service="shoal.v1.Data",method="Put",le="0.01"} 250
shoal_rpc_duration_seconds_bucket{service="shoal.v1.Data",method="Put",le="+Inf"} 300
shoal_rpc_duration_seconds_count{service="shoal.v1.Data",method="Put"} 300
shoal_rpc_duration_seconds_sum{service="shoal.v1.Data",method="Put"} 3.0
# TYPE shoal_transactions_committed counter
shoal_transactions_committed_total{kind="one_phase",origin="sdk"} 30
shoal_transactions_committed_total{kind="one_phase",origin="pipeline"} 10
# TYPE shoal_transactions_in_doubt gauge
shoal_transactions_in_doubt 2
# TYPE shoal_pipeline_lag gauge
shoal_pipeline_lag{pipeline="p",topic="t",partition="0"} 9
"""


def test_rates_percentiles_and_gauges_between_two_scrapes() -> None:
    view = figures(parse(BEFORE), parse(AFTER), 2.0)
    (put,) = view.methods
    assert put.method == "Data/Put"
    assert put.calls_per_s == 100 and put.errors_per_s == 2 and put.in_flight == 3
    # 200 new observations: 150 in (0.001, 0.01], 50 above 0.01.
    assert put.p50_s == pytest.approx(0.001 + 0.009 * (100 / 150))
    assert put.p99_s == 0.01
    assert view.commits_per_s == {"one_phase": 15}
    assert view.in_doubt == 2 and view.in_flight == 0
    assert view.lag == {("p", "t", "0"): 9}
    assert math.isnan(view.fsync_p99_s)


def test_a_reset_counter_counts_from_zero_and_no_observations_is_nan() -> None:
    after = parse(BEFORE.replace("} 100\n# TYPE shoal_rpc_errors", "} 40\n# TYPE shoal_rpc_errors"))
    view = figures(parse(BEFORE), after, 1.0)
    assert view.methods[0].calls_per_s == 40
    same = parse(BEFORE)
    assert math.isnan(
        quantiles(same, same, "shoal_rpc_duration_seconds", ("method",), 0.5)[(("method", "Put"),)]
    )
