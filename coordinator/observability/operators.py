"""Operator metrics, read when scraped: the replays a coordinator runs (progress, rate, by
state; only running replays get series of their own, so the number of series stays
bounded however many replays the grid remembers), and the sandboxes it supervises."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from coordinator.operators.replay_record import RUNNING
from coordinator.operators.replays import ReplayStatus
from coordinator.operators.sandboxes import SandboxView


class Replays(Protocol):
    def statuses(self) -> Sequence[ReplayStatus]: ...


class Sandboxes(Protocol):
    def list(self) -> Sequence[SandboxView]: ...


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


class SandboxFigures:
    def __init__(self, sandboxes: Sandboxes) -> None:
        self._sandboxes = sandboxes

    def collect(self) -> Iterable[Metric]:
        views = self._sandboxes.list()
        by_state = Counter(view.state for view in views)
        count = GaugeMetricFamily(
            "shoal_sandboxes", "sandboxes this coordinator supervises, by state", labels=("state",)
        )
        for state, number in sorted(by_state.items()):
            count.add_metric((state,), number)
        labels = ("sandbox",)
        memory = GaugeMetricFamily(
            "shoal_sandbox_memory_bytes", "resident size of a sandbox's process", labels=labels
        )
        disk = GaugeMetricFamily(
            "shoal_sandbox_disk_bytes", "bytes of a sandbox's data directory", labels=labels
        )
        age = GaugeMetricFamily(
            "shoal_sandbox_age_seconds", "time since a sandbox was created", labels=labels
        )
        restarts = GaugeMetricFamily(
            "shoal_sandbox_restarts", "times a sandbox's process was restarted", labels=labels
        )
        for view in views:
            key = (view.name,)
            memory.add_metric(key, view.memory_bytes)
            disk.add_metric(key, view.disk_bytes)
            age.add_metric(key, view.age_ms / 1000)
            restarts.add_metric(key, view.record.restarts)
        return [count, memory, disk, age, restarts]
