"""The /metrics endpoint and the traces of a real server, run in this process so its spans
reach an in-memory exporter: every family exists, counters move with the work, and one
trace runs from the SDK through the server to each partition's commit phases."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from coordinator import config as config_module
from coordinator.server import RunningServer, start
from grid.partitioner import Partitioner
from shoal import Client, ConflictError
from tests.support.kafka import Message, create_topic, produce, unique, wait_until
from tests.support.pipeline_workload import write_pipeline
from tests.support.spans import memory_exporter, spans_of_trace

PARTITIONS = 8

# Every family the service exports (README "Operations" lists them with their labels).
FAMILIES = {
    # RPC
    "shoal_rpc_requests",
    "shoal_rpc_errors",
    "shoal_rpc_duration_seconds",
    "shoal_rpc_in_flight",
    # Transactions
    "shoal_transactions_committed",
    "shoal_transactions_aborted",
    "shoal_transaction_commit_seconds",
    "shoal_transaction_phase_seconds",
    "shoal_transactions_in_flight",
    "shoal_transactions_in_doubt",
    "shoal_transactions_in_doubt_overdue_seconds",
    "shoal_recovery_actions",
    "shoal_read_version_too_old",
    "shoal_versions_kept",
    # Pipelines
    "shoal_pipeline_events",
    "shoal_pipeline_batches",
    "shoal_pipeline_rejected",
    "shoal_pipeline_lag",
    "shoal_pipeline_end_to_end_seconds",
    "shoal_pipeline_batch_apply_seconds",
    # SQL
    "shoal_sql_statements",
    "shoal_sql_statement_seconds",
    "shoal_sql_rows_scanned",
    "shoal_sql_result_bytes",
    "shoal_sql_snapshot_rebuilds",
    # Sketches
    "shoal_sketch_observed_relative_error",
    "shoal_sketch_error_bound",
    "shoal_sketch_outside_bound",
    "shoal_sketch_adds",
    # Storage and process
    "shoal_map_entries",
    "shoal_map_bytes",
    "shoal_wal_bytes",
    "shoal_wal_written_bytes",
    "shoal_wal_fsync_seconds",
    "shoal_checkpoint_seconds",
    "shoal_process_resident_bytes",
    "shoal_process_memory_limit_bytes",
    "shoal_gc_pause_seconds",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_in_process(data_dir: Path, **settings: object) -> RunningServer:
    flags = {
        "port": 0,
        "metrics_port": free_port(),
        "data_dir": str(data_dir),
        "partitions": PARTITIONS,
        "fsync": "always",
        "checkpoint_wal_bytes": 64 * 1024,
        **{name: str(value) for name, value in settings.items()},
    }
    memory_exporter()
    return start(config_module.load(flags, environment={}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_in_process(tmp_path_factory.mktemp("observed") / "data")
    try:
        yield running
    finally:
        running.stop(5.0)


@pytest.fixture
def client(server: RunningServer) -> Iterator[Client]:
    with Client(f"127.0.0.1:{server.port}") as connected:
        yield connected


def scrape(server: RunningServer) -> dict[str, list[Sample]]:
    assert server.metrics_endpoint is not None
    url = f"http://127.0.0.1:{server.metrics_endpoint.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as page:
        text = page.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def total(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels`."""
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    return sum(
        item.value
        for item in families.get(family, [])
        if item.name == sample and all(item.labels.get(k) == v for k, v in labels.items())
    )


def keys_on_two_partitions() -> tuple[str, str]:
    partitioner = Partitioner(PARTITIONS)
    first = "a0"
    for index in range(1, 1000):
        other = f"b{index}"
        if partitioner.partition_of(other) != partitioner.partition_of(first):
            return first, other
    raise AssertionError("no two partitions")


def test_every_family_is_exported(server: RunningServer, client: Client) -> None:
    client.create_map("families_kv")
    client.put("families_kv", "k", {"v": 1})
    exported = set(scrape(server))
    assert FAMILIES - exported == set()


def test_counters_move_with_a_put_a_conflict_and_a_statement(
    server: RunningServer, client: Client
) -> None:
    client.create_map("moves_kv", schema={"v": "int"})
    before = scrape(server)
    client.put("moves_kv", "k", {"v": 1})
    with client.transaction() as tx:
        tx.get("moves_kv", "k")
        tx.put("moves_kv", "k", {"v": 2})
        # Another writer gets in between the read and the commit: the commit conflicts.
        client.put("moves_kv", "k", {"v": 3})
        with pytest.raises(ConflictError):
            tx.commit()
    assert client.sql("SELECT count(*) AS n FROM moves_kv").fetchall() == [(1,)]
    after = scrape(server)

    def moved(sample: str, **labels: str) -> float:
        return total(after, sample, **labels) - total(before, sample, **labels)

    assert moved("shoal_rpc_requests_total", service="shoal.v1.Data", method="Put") == 2
    assert moved("shoal_rpc_errors_total", method="Commit", code="ABORTED") == 1
    assert moved("shoal_rpc_duration_seconds_count", method="Put") == 2
    assert moved("shoal_transactions_committed_total", kind="one_phase", origin="sdk") >= 2
    assert moved("shoal_transactions_aborted_total", reason="conflict", origin="sdk") == 1
    assert moved("shoal_transaction_phase_seconds_count", phase="apply_one_phase") >= 2
    assert moved("shoal_sql_statements_total", kind="select", outcome="ok") == 1
    assert moved("shoal_sql_statement_seconds_count", kind="select") == 1
    assert moved("shoal_sql_rows_scanned_count") == 1
    assert moved("shoal_wal_written_bytes_total") > 0
    assert moved("shoal_wal_fsync_seconds_count") > 0
    assert total(after, "shoal_map_entries", map="moves_kv") == 1
    assert total(after, "shoal_rpc_in_flight", method="Put") == 0


def test_an_sdk_transaction_over_two_partitions_is_one_trace(client: Client) -> None:
    client.create_map("traced_kv")
    first, second = keys_on_two_partitions()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("checkout") as root, client.transaction() as tx:
        tx.put("traced_kv", first, {"v": 1})
        tx.put("traced_kv", second, {"v": 2})
    trace_id = root.get_span_context().trace_id
    spans = wait_for_spans(trace_id, lambda found: len(phase_spans(found, "commit")) >= 2)
    by_name = {span.name for span in spans}
    client_spans = [s for s in spans if s.kind == trace.SpanKind.CLIENT]
    server_spans = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert [s.name for s in client_spans] == ["shoal.v1.Transactions/Commit"]
    assert [s.name for s in server_spans] == ["shoal.v1.Transactions/Commit"]
    assert server_spans[0].parent is not None
    assert server_spans[0].parent.span_id == client_spans[0].context.span_id
    assert "shoal.transaction" in by_name
    partitioner = Partitioner(PARTITIONS)
    touched = {partitioner.partition_of(first), partitioner.partition_of(second)}
    for phase in ("prepare", "pre_commit", "commit"):
        assert {s.attributes["shoal.partition"] for s in phase_spans(spans, phase)} == touched
    assert {span.context.trace_id for span in spans} == {trace_id}


def phase_spans(spans: list[ReadableSpan], phase: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == f"shoal.{phase}"]


def wait_for_spans(trace_id: int, enough: object, timeout_s: float = 30.0) -> list[ReadableSpan]:
    deadline = time.monotonic() + timeout_s
    while True:
        spans = spans_of_trace(trace_id)
        if enough(spans) or time.monotonic() > deadline:  # type: ignore[operator]
            return spans
        time.sleep(0.05)


@pytest.mark.kafka
def test_a_kafka_event_with_traceparent_is_traced_to_the_commit_and_counted(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    topic, group = unique("observed"), unique("observed-group")
    create_topic(kafka_bootstrap, topic, 1)
    pipelines = write_pipeline(tmp_path / "pipelines", topic=topic, group=group, batch_ms=20)
    running = start_in_process(
        tmp_path / "data", pipelines=pipelines, kafka=kafka_bootstrap, kafka_session_timeout_ms=6000
    )
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            for name in ("orders", "revenue", "customers"):
                client.create_map(name, if_not_exists=True)
            client.put("customers", "c1", {"n": 1})
        trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
        traceparent = f"00-{trace_id:032x}-00f067aa0ba902b7-01".encode()
        good = {"id": "e1", "order": "o1", "region": "eu", "amount": 5, "customer": "c1"}
        bad = {"id": "e2", "order": "o2", "region": "eu", "amount": -1, "customer": "c1"}
        produce(
            kafka_bootstrap,
            topic,
            [
                Message(0, b"e1", json.dumps(good).encode(), (("traceparent", traceparent),)),
                Message(0, b"e2", json.dumps(bad).encode()),
            ],
        )

        def counted() -> bool:
            families = scrape(running)
            # The lag gauge is published about once a second, after a batch.
            lag_published = any(
                sample.labels.get("topic") == topic for sample in families["shoal_pipeline_lag"]
            )
            rejected = total(families, "shoal_pipeline_rejected_total", rule="min")
            return lag_published and rejected >= 1

        wait_until(counted, timeout_s=90)
        families = scrape(running)
        assert total(families, "shoal_pipeline_events_total", outcome="applied") == 1
        assert total(families, "shoal_pipeline_batches_total", outcome="committed") >= 1
        assert total(families, "shoal_pipeline_end_to_end_seconds_count") == 1
        assert total(families, "shoal_pipeline_batch_apply_seconds_count", outcome="committed") >= 1
        assert total(families, "shoal_transactions_committed_total", origin="pipeline") >= 1
        assert total(families, "shoal_pipeline_lag", topic=topic, partition="0") == 0
        spans = wait_for_spans(trace_id, lambda found: bool(phase_spans(found, "commit")))
        names = {span.name for span in spans}
        assert "shoal.pipeline.batch" in names
        assert "shoal.transaction" in names
        assert phase_spans(spans, "commit") or phase_spans(spans, "apply_one_phase")
    finally:
        running.stop(5.0)


def test_metrics_are_pushed_over_otlp(tmp_path: Path) -> None:
    """A real OTLP gRPC collector (opentelemetry-proto's service) receives the registry."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.metrics.v1 import (
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )

    received: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    class Collector(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):
            received.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    collector = grpc.server(futures.ThreadPoolExecutor(2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Collector(), collector)
    port = collector.add_insecure_port("127.0.0.1:0")
    collector.start()
    running = start_in_process(
        tmp_path / "data",
        metrics_port=0,
        metrics_otlp_interval_s=0.2,
        otlp_endpoint=f"127.0.0.1:{port}",
    )
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            client.create_map("pushed_kv")
            client.put("pushed_kv", "k", {"v": 1})

        def pushed_put() -> dict[str, object] | None:
            for request in list(received):
                metrics = {
                    metric.name: metric
                    for resource in request.resource_metrics
                    for scope in resource.scope_metrics
                    for metric in scope.metrics
                }
                requests = metrics.get("shoal_rpc_requests_total")
                if requests is None:
                    continue
                puts = [
                    point.as_double
                    for point in requests.sum.data_points
                    if {a.key: a.value.string_value for a in point.attributes}.get("method")
                    == "Put"
                ]
                if puts == [1.0]:
                    return metrics  # type: ignore[return-value]
            return None

        metrics = wait_until(pushed_put, timeout_s=30)
        assert metrics["shoal_rpc_requests_total"].sum.is_monotonic
        latency = metrics["shoal_rpc_duration_seconds"].histogram.data_points
        put_latency = [
            point
            for point in latency
            if {a.key: a.value.string_value for a in point.attributes}.get("method") == "Put"
        ]
        assert len(put_latency) == 1
        point = put_latency[0]
        assert point.count == 1 and sum(point.bucket_counts) == 1
        assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
    finally:
        running.stop(5.0)
        collector.stop(None)


def test_json_log_lines_of_a_call_carry_its_trace_span_and_transaction(
    tmp_path: Path,
) -> None:
    """A refused commit's log line (a real server process, JSON logs) names the caller's
    trace, the server span and the transaction."""
    from tests.support.server_process import ServerProcess

    memory_exporter()  # this process's tracer provider: the caller's spans are real
    server = ServerProcess(
        tmp_path / "data", ["--log-format", "json", "--metrics-port", str(free_port())]
    ).start()
    try:
        with Client(server.target) as client:
            client.create_map("logged_kv")
            client.put("logged_kv", "k", {"v": 1})
            tracer = trace.get_tracer("test")
            with tracer.start_as_current_span("caller") as caller:
                tx = client.transaction()
                tx.get("logged_kv", "k")
                tx.put("logged_kv", "k", {"v": 2})
                client.put("logged_kv", "k", {"v": 3})
                with pytest.raises(ConflictError):
                    tx.commit()
        trace_hex = f"{caller.get_span_context().trace_id:032x}"
        txn_hex = tx.txn_id
    finally:
        server.stop()
    lines = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    refused = [line for line in lines if line["message"].startswith("ABORTED")]
    assert len(refused) == 1, lines
    assert refused[0]["trace_id"] == trace_hex
    assert len(refused[0]["span_id"]) == 16 and refused[0]["span_id"] != "-"
    assert refused[0]["txn_id"] == txn_hex


def test_shoal_top_shows_the_endpoint(server: RunningServer, client: Client) -> None:
    """`shoal top --once` as a person runs it, against the server's endpoint."""
    import subprocess
    import sys

    client.create_map("top_kv")
    for index in range(5):
        client.put("top_kv", f"k{index}", {"v": index})
    assert server.metrics_endpoint is not None
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "shoal.cli",
            "top",
            "--once",
            "--interval",
            "0.2",
            "--metrics",
            f"127.0.0.1:{server.metrics_endpoint.port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "Data/Put" in shown.stdout
    assert "transactions" in shown.stdout and "in doubt" in shown.stdout
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "shoal.cli",
            "top",
            "--once",
            "--metrics",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "UNAVAILABLE: cannot read" in refused.stderr


def test_a_procedure_call_counts_as_a_procedure_commit(tmp_path: Path) -> None:
    from tests.support.server_process import REPO_ROOT

    running = start_in_process(
        tmp_path / "data",
        partitions=64,
        procedures=REPO_ROOT / "loadtests" / "procedures",
    )
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            client.create_map("accounts")
            client.put_many("accounts", {"acct-a": {"balance": 100}, "acct-b": {"balance": 0}})
            before = scrape(running)
            assert client.call("transfer", "acct-a", "acct-b", 30) == 70
            after = scrape(running)
    finally:
        running.stop(5.0)

    def moved(sample: str, **labels: str) -> float:
        return total(after, sample, **labels) - total(before, sample, **labels)

    assert moved("shoal_transactions_committed_total", origin="procedure") == 1
    assert moved("shoal_transactions_committed_total", origin="sdk") == 0
    assert moved("shoal_rpc_requests_total", service="shoal.v1.Procedures") == 1
