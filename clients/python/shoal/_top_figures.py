"""The figures of `shoal top`: two scrapes of a coordinator's /metrics made into rates,
percentiles and current values (pure: text in, figures out)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
# Sample name -> labels -> value.
Samples = dict[str, dict[Labels, float]]


def parse(text: str) -> Samples:
    """A /metrics page as samples (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return dict(samples)


def _select(series: Mapping[Labels, float], keep: Iterable[str]) -> dict[Labels, float]:
    """Sums series by the labels in `keep` (PromQL's `sum by`)."""
    kept = tuple(keep)
    totals: dict[Labels, float] = defaultdict(float)
    for labels, value in series.items():
        named = dict(labels)
        totals[tuple((name, named.get(name, "")) for name in kept)] += value
    return dict(totals)


def rates(
    before: Samples, after: Samples, name: str, by: Iterable[str], seconds: float
) -> dict[Labels, float]:
    """Per-second increase of a counter between two scrapes, summed by `by` (a counter
    that went down was reset: its new value is the increase)."""
    keep = tuple(by)
    old = _select(before.get(name, {}), keep)
    new = _select(after.get(name, {}), keep)
    result = {}
    for labels, value in new.items():
        increase = value - old.get(labels, 0.0)
        if increase < 0:
            increase = value
        result[labels] = increase / seconds if seconds > 0 else 0.0
    return result


def current(after: Samples, name: str, by: Iterable[str]) -> dict[Labels, float]:
    return _select(after.get(name, {}), tuple(by))


def quantiles(
    before: Samples, after: Samples, histogram: str, by: Iterable[str], quantile: float
) -> dict[Labels, float]:
    """The `quantile` of the observations made between two scrapes, per `by` group, by
    linear interpolation within the bucket (Prometheus's histogram_quantile); NaN when
    nothing was observed."""
    keep = tuple(by)
    increases: dict[Labels, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    old_series = before.get(histogram + "_bucket", {})
    for labels, value in after.get(histogram + "_bucket", {}).items():
        named = dict(labels)
        increase = value - old_series.get(labels, 0.0)
        if increase < 0:
            increase = value
        group = tuple((name, named.get(name, "")) for name in keep)
        increases[group][float(named["le"])] += increase
    result = {}
    for group, buckets in increases.items():
        bounds = sorted(buckets)
        total = buckets[bounds[-1]] if bounds else 0.0
        if total <= 0:
            result[group] = math.nan
            continue
        rank = quantile * total
        previous_bound, previous_count = 0.0, 0.0
        answer = math.nan
        for bound in bounds:
            count = buckets[bound]
            if count >= rank:
                if math.isinf(bound):
                    answer = previous_bound
                elif count == previous_count:
                    answer = bound
                else:
                    answer = previous_bound + (bound - previous_bound) * (
                        (rank - previous_count) / (count - previous_count)
                    )
                break
            previous_bound, previous_count = bound, count
        result[group] = answer
    return result


@dataclass
class MethodRow:
    method: str
    calls_per_s: float
    errors_per_s: float
    p50_s: float
    p99_s: float
    in_flight: float


@dataclass
class Figures:
    methods: list[MethodRow] = field(default_factory=list)
    commits_per_s: dict[str, float] = field(default_factory=dict)
    aborts_per_s: dict[str, float] = field(default_factory=dict)
    commit_p99_s: float = math.nan
    in_flight: float = 0.0
    in_doubt: float = 0.0
    in_doubt_overdue_s: float = 0.0
    # (pipeline, outcome) -> events per second
    pipeline_events_per_s: dict[tuple[str, str], float] = field(default_factory=dict)
    # (pipeline, topic, partition) -> lag
    lag: dict[tuple[str, str, str], float] = field(default_factory=dict)
    end_to_end_p99_s: dict[str, float] = field(default_factory=dict)
    sql_per_s: dict[str, float] = field(default_factory=dict)
    sql_p99_s: float = math.nan
    resident_bytes: float = 0.0
    memory_limit_bytes: float = 0.0
    fsync_p99_s: float = math.nan


def _one(values: Mapping[Labels, float], default: float = math.nan) -> float:
    return next(iter(values.values()), default)


def figures(before: Samples, after: Samples, seconds: float) -> Figures:
    """What `shoal top` shows, from two scrapes `seconds` apart."""
    result = Figures()
    by_method = ("service", "method")
    calls = rates(before, after, "shoal_rpc_requests_total", by_method, seconds)
    errors = rates(before, after, "shoal_rpc_errors_total", by_method, seconds)
    p50 = quantiles(before, after, "shoal_rpc_duration_seconds", by_method, 0.5)
    p99 = quantiles(before, after, "shoal_rpc_duration_seconds", by_method, 0.99)
    flying = current(after, "shoal_rpc_in_flight", by_method)
    served = current(after, "shoal_rpc_requests_total", by_method)
    # Busiest first, then the most served; a method never called is left out.
    shown = [
        labels for labels in set(calls) | set(flying) if served.get(labels) or flying.get(labels)
    ]
    for labels in sorted(shown, key=lambda item: (-calls.get(item, 0.0), -served.get(item, 0))):
        named = dict(labels)
        result.methods.append(
            MethodRow(
                f"{named['service'].removeprefix('shoal.v1.')}/{named['method']}",
                calls.get(labels, 0.0),
                errors.get(labels, 0.0),
                p50.get(labels, math.nan),
                p99.get(labels, math.nan),
                flying.get(labels, 0.0),
            )
        )
    result.commits_per_s = {
        dict(labels)["kind"]: value
        for labels, value in rates(
            before, after, "shoal_transactions_committed_total", ("kind",), seconds
        ).items()
    }
    result.aborts_per_s = {
        dict(labels)["reason"]: value
        for labels, value in rates(
            before, after, "shoal_transactions_aborted_total", ("reason",), seconds
        ).items()
    }
    result.commit_p99_s = _one(
        quantiles(before, after, "shoal_transaction_commit_seconds", (), 0.99)
    )
    result.in_flight = _one(current(after, "shoal_transactions_in_flight", ()), 0.0)
    result.in_doubt = _one(current(after, "shoal_transactions_in_doubt", ()), 0.0)
    result.in_doubt_overdue_s = _one(
        current(after, "shoal_transactions_in_doubt_overdue_seconds", ()), 0.0
    )
    for labels, value in rates(
        before, after, "shoal_pipeline_events_total", ("pipeline", "outcome"), seconds
    ).items():
        named = dict(labels)
        result.pipeline_events_per_s[(named["pipeline"], named["outcome"])] = value
    for labels, value in current(
        after, "shoal_pipeline_lag", ("pipeline", "topic", "partition")
    ).items():
        named = dict(labels)
        result.lag[(named["pipeline"], named["topic"], named["partition"])] = value
    for labels, value in quantiles(
        before, after, "shoal_pipeline_end_to_end_seconds", ("pipeline",), 0.99
    ).items():
        result.end_to_end_p99_s[dict(labels)["pipeline"]] = value
    result.sql_per_s = {
        dict(labels)["kind"]: value
        for labels, value in rates(
            before, after, "shoal_sql_statements_total", ("kind",), seconds
        ).items()
    }
    result.sql_p99_s = _one(quantiles(before, after, "shoal_sql_statement_seconds", (), 0.99))
    result.resident_bytes = _one(current(after, "shoal_process_resident_bytes", ()), 0.0)
    result.memory_limit_bytes = _one(current(after, "shoal_process_memory_limit_bytes", ()), 0.0)
    result.fsync_p99_s = _one(quantiles(before, after, "shoal_wal_fsync_seconds", (), 0.99))
    return result
