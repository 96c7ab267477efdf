"""Puts a node under observation: the families of its transactions, SQL, storage, process
and sketches, and the figures computed on every scrape (in-doubt transactions, maps).

`instrument(node)` is what `shoal serve` calls when metrics or tracing are on; a test
that builds a node itself may call it too. Nothing here runs on the request path but the
telemetry objects it hands the manager and the SQL engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from coordinator.node import Node
from coordinator.observability.operators import (
    ReplayFigures,
    Replays,
    Sandboxes,
    SandboxFigures,
)
from coordinator.observability.otlp_metrics import OtlpMetricsPusher
from coordinator.observability.process import GarbageCollectorPauses, collect_limit
from coordinator.observability.sql import SqlTelemetry
from coordinator.observability.storage import MapFigures, StorageTelemetry
from coordinator.observability.transactions import TransactionTelemetry
from coordinator.pipelines.metrics import PipelineFamilies
from coordinator.transactions.recovery import SweepReport
from grid.participant import FINAL_STATES

# The sketch accuracy monitor compares sketches with exact answers; at most this often.
ACCURACY_INTERVAL_S = 15.0


@dataclass
class NodeInstrumentation:
    node: Node
    gc_pauses: GarbageCollectorPauses
    _accuracy_lock: threading.Lock = field(default_factory=threading.Lock)
    _accuracy_at: float = -float("inf")

    pusher: OtlpMetricsPusher | None = None

    def close(self) -> None:
        self.gc_pauses.stop()
        if self.pusher is not None:
            self.pusher.stop()

    def push_over_otlp(self, interval_s: float, endpoint: str) -> None:
        """Pushes the registry to an OTLP collector every `interval_s`."""
        self.pusher = OtlpMetricsPusher(self.node.metrics, interval_s, endpoint=endpoint)
        self.pusher.start()

    def watch_replays(self, replays: Replays) -> None:
        """Exports the progress of the replays `replays` runs, read at scrape time."""
        self.node.metrics.on_scrape(ReplayFigures(replays).collect)

    def watch_sandboxes(self, sandboxes: Sandboxes) -> None:
        """Exports the sandboxes `sandboxes` supervises, read at scrape time."""
        self.node.metrics.on_scrape(SandboxFigures(sandboxes).collect)

    def collect_transactions(self) -> Iterable[Metric]:
        manager = self.node.transactions
        in_flight = {flight.txn_id for flight in manager.in_flight()}
        now_ms = manager.clock.now_ms()
        in_doubt: dict[bytes, int] = {}
        for partition in manager.partitions:
            for staged in partition.staged_transactions():
                if staged.txn_id in in_flight or staged.state in FINAL_STATES:
                    continue
                known = in_doubt.get(staged.txn_id)
                in_doubt[staged.txn_id] = (
                    staged.lease_expires_ms
                    if known is None
                    else min(known, staged.lease_expires_ms)
                )
        overdue_s = max(((now_ms - lease) / 1000 for lease in in_doubt.values()), default=0.0)
        yield GaugeMetricFamily(
            "shoal_transactions_in_flight",
            "transactions this coordinator is committing",
            len(in_flight),
        )
        yield GaugeMetricFamily(
            "shoal_transactions_in_doubt",
            "transactions prepared on a partition that no coordinator here is driving",
            len(in_doubt),
        )
        yield GaugeMetricFamily(
            "shoal_transactions_in_doubt_overdue_seconds",
            "how long past its lease the oldest in-doubt transaction is (0: none past it)",
            max(overdue_s, 0.0),
        )

    def measure_sketches(self) -> None:
        """Runs the accuracy monitor when its figures are older than the interval."""
        accuracy = getattr(self.node.sketches, "accuracy", None)
        if accuracy is None:
            return
        with self._accuracy_lock:
            if time.monotonic() - self._accuracy_at < ACCURACY_INTERVAL_S:
                return
            self._accuracy_at = time.monotonic()
        accuracy.measure()


def instrument(node: Node) -> NodeInstrumentation:
    """Hands the node's parts their telemetry and registers the scrape-time figures."""
    metrics = node.metrics
    node.transactions.telemetry = TransactionTelemetry(metrics)
    node.sql.telemetry = SqlTelemetry(metrics)
    observe = getattr(node.backend, "observe", None)
    if observe is not None:
        observe(StorageTelemetry(metrics))
    recovered = metrics.counter(
        "shoal_recovery_actions_total",
        "transactions the recovery sweeper ended or forgot, by action",
        ("action",),
    )

    def on_report(report: SweepReport) -> None:
        if report.committed:
            recovered.labels(action="committed").inc(report.committed)
        if report.aborted:
            recovered.labels(action="aborted").inc(report.aborted)
        if report.forgotten:
            recovered.labels(action="forgotten").inc(report.forgotten)

    for action in ("committed", "aborted", "forgotten"):
        recovered.labels(action=action)
    node.sweeper.on_report = on_report
    gc_pauses = GarbageCollectorPauses(metrics)
    gc_pauses.start()
    instrumentation = NodeInstrumentation(node, gc_pauses)
    metrics.on_scrape(instrumentation.collect_transactions)
    metrics.before_scrape(instrumentation.measure_sketches)
    metrics.on_scrape(MapFigures(lambda: node.backend.partitions).collect)
    metrics.on_scrape(collect_limit)
    # Declared before any pipeline runs, so dashboards find every family from the start.
    PipelineFamilies.of(metrics)
    return instrumentation
