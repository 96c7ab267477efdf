"""Operator metrics: the replays a coordinator runs (progress, rate, by state), read from
the replay manager when scraped. Only running replays get series of their own, so the
number of series stays bounded however many replays the grid remembers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from coordinator.operators.replay_record import RUNNING
from coordinator.operators.replays import ReplayStatus


class Replays(Protocol):
    def statuses(self) -> Sequence[ReplayStatus]: ...


class ReplayFigures:
    def __init__(self, replays: Replays) -> None:
        self._replays = replays

    def collect(self) -> Iterable[Metric]:
        statuses = self._replays.statuses()
        by_state = Counter(status.record.state for status in statuses)
        count = GaugeMetricFamily(
            "shoal_replays", "replays in this grid, by state", labels=("state",)
        )
        for state, number in sorted(by_state.items()):
            count.add_metric((state,), number)
        labels = ("replay", "pipeline")
        processed = GaugeMetricFamily(
            "shoal_replay_processed_events", "events a running replay has processed", labels=labels
        )
        planned = GaugeMetricFamily(
            "shoal_replay_planned_events",
            "events a running replay will process in all",
            labels=labels,
        )
        rejected = GaugeMetricFamily(
            "shoal_replay_rejected_events", "events a running replay dead-lettered", labels=labels
        )
        rate = GaugeMetricFamily(
            "shoal_replay_rate_events_per_second",
            "events per second a running replay processes (recent)",
            labels=labels,
        )
        for status in statuses:
            if status.record.state != RUNNING:
                continue
            key = (status.record.replay_id, status.record.pipeline)
            processed.add_metric(key, status.processed)
            planned.add_metric(key, status.record.total)
            rejected.add_metric(key, status.rejected)
            rate.add_metric(key, status.rate_per_s)
        return [count, processed, planned, rejected, rate]
