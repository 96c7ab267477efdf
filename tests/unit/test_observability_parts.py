"""Pure parts of the observability layer: replay figures, log fields, phase names."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coordinator.observability.operators import ReplayFigures
from coordinator.observability.transactions import abort_reason, phase_name
from coordinator.operators.replay_record import DONE, RUNNING, ReplayRecord
from coordinator.operators.replays import ReplayStatus
from coordinator.telemetry import JsonFormatter, TraceIdFilter, log_fields
from grid.errors import Conflict, FailedPrecondition
from grid.participant import CasStatus, PreCommit


def _status(replay_id: str, state: str, processed: int) -> ReplayStatus:
    record = ReplayRecord(
        replay_id=replay_id,
        pipeline="orders",
        file_name="orders.py",
        source="",
        topic="t",
        kafka="",
        ranges={0: (0, 100), 1: (10, 60)},
        rate_per_s=0.0,
        dead_letter_topic="t.dlq",
        created_ms=0,
        state=state,
    )
    return ReplayStatus(record, [], processed, processed - 2, 2, 0, 12.5, 3.0, "")


class _Replays:
    def statuses(self) -> list[ReplayStatus]:
        return [_status("r1", RUNNING, 40), _status("r2", DONE, 150), _status("r3", DONE, 150)]


def test_replay_figures_give_running_replays_series_and_count_every_state() -> None:
    registry = CollectorRegistry()
    registry.register(ReplayFigures(_Replays()))  # type: ignore[arg-type]
    families = {
        family.name: family.samples
        for family in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert {s.labels["state"]: s.value for s in families["shoal_replays"]} == {
        "running": 1,
        "done": 2,
    }
    assert [(s.labels, s.value) for s in families["shoal_replay_processed_events"]] == [
        ({"replay": "r1", "pipeline": "orders"}, 40)
    ]
    assert [s.value for s in families["shoal_replay_planned_events"]] == [150]
    assert [s.value for s in families["shoal_replay_rate_events_per_second"]] == [12.5]


def test_a_log_line_inside_a_span_and_a_batch_names_them() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test_observability_parts")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("batch") as span:
            token = log_fields.bind(pipeline="orders", batch_id=7, txn_id="ab12", unused=None)
            try:
                logger.warning("inside")
            finally:
                log_fields.reset(token)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert (inside["pipeline"], inside["batch_id"], inside["txn_id"]) == ("orders", "7", "ab12")
    assert "unused" not in inside
    assert outside["trace_id"] == "-" and "pipeline" not in outside


def test_phase_and_reason_names_are_snake_case() -> None:
    assert phase_name(CasStatus) == "cas_status"
    assert phase_name(PreCommit(b"t" * 8)) == "pre_commit"
    assert abort_reason(Conflict("x")) == "conflict"
    assert abort_reason(FailedPrecondition("x")) == "failed_precondition"


def test_sandbox_figures_count_states_and_describe_each_sandbox() -> None:
    from dataclasses import dataclass

    from coordinator.observability.operators import SandboxFigures

    @dataclass
    class Record:
        restarts: int

    @dataclass
    class View:
        name: str
        state: str
        memory_bytes: int
        disk_bytes: int
        age_ms: int
        record: Record

    class Supervised:
        def list(self) -> list[View]:
            return [
                View("a", "ready", 100, 200, 3000, Record(1)),
                View("b", "failed", 0, 5, 10, Record(0)),
            ]

    registry = CollectorRegistry()
    registry.register(SandboxFigures(Supervised()))  # type: ignore[arg-type]
    families = {
        family.name: {tuple(s.labels.values()): s.value for s in family.samples}
        for family in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert families["shoal_sandboxes"] == {("ready",): 1, ("failed",): 1}
    assert families["shoal_sandbox_memory_bytes"] == {("a",): 100, ("b",): 0}
    assert families["shoal_sandbox_age_seconds"] == {("a",): 3.0, ("b",): 0.01}
    assert families["shoal_sandbox_restarts"] == {("a",): 1, ("b",): 0}


def test_the_grid_and_the_state_machines_import_no_telemetry_library() -> None:
    """Instrumentation stays at the edges (issue 15): parsed imports, not a grep."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pure = [
        *sorted((root / "grid").rglob("*.py")),
        root / "coordinator/transactions/three_phase.py",
        root / "coordinator/transactions/driver.py",
    ]
    offenders = []
    for path in pure:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.split(".")[0] in {"opentelemetry", "prometheus_client"} or name.startswith(
                    "coordinator.observability"
                ):
                    offenders.append((path.relative_to(root), name))
    assert offenders == []
