"""Observability's price: key-value calls with tracing at 10% sampling and metrics on,
against the same calls with both off, in the same run (issue 15; goal: at least 0.9 of
the throughput).

Both servers run side by side and are measured in short slices taken in turn, as the kv
suite does, so a noisy machine treats both alike. "On" is what an operator runs: the
/metrics endpoint scraped every 2 s, spans sampled at 10% and exported over OTLP gRPC to
a collector in this process (which counts them), the JSON-free default log. "Off" is
`--metrics-port 0` with no trace exporter: nothing is wrapped. The benchmark's client
has no tracer provider, so it sends no trace context and the server decides sampling,
as for a client that does not trace.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import urllib.request
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from loadtests.bench.kv import ROUNDS, concurrent_gets, interleave, timed_calls
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.server_process import ServerProcess

SUITE = "observability"
GOAL = 0.9
VALUE = "v" * 98
SCRAPE_INTERVAL_S = 2.0


class SpanCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP gRPC trace collector that counts the spans it receives."""

    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the gRPC method)
        count = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        with self._lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(report: Report, work_dir: Path, *, seconds: float) -> None:
    collector = SpanCollector()
    collector_server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, collector_server)
    collector_port = collector_server.add_insecure_port("127.0.0.1:0")
    collector_server.start()
    metrics_port = _free_port()
    quiet = ServerProcess(work_dir / "observability-off", ["--metrics-port", "0"]).start()
    observed = ServerProcess(
        work_dir / "observability-on",
        [
            "--metrics-port",
            str(metrics_port),
            "--trace-exporter",
            "otlp",
            "--trace-sample-ratio",
            "0.1",
            "--otlp-endpoint",
            f"127.0.0.1:{collector_port}",
        ],
    ).start()
    stop_scraping = threading.Event()
    scrapes = 0

    def scrape() -> None:
        nonlocal scrapes
        while not stop_scraping.wait(SCRAPE_INTERVAL_S):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{metrics_port}/metrics", timeout=10
            ) as page:
                page.read()
            scrapes += 1

    scraper = threading.Thread(target=scrape, name="bench-scraper", daemon=True)
    scraper.start()
    slice_s = seconds / ROUNDS
    keys = [f"k{i}" for i in range(1000)]
    try:
        off = Client(quiet.target)
        on = Client(observed.target)
        for each in (off, on):
            each.create_map("kv")
            each.put_many("kv", {key: VALUE for key in keys})
            each.get("kv", "k0")

        def measured(server: ServerProcess, calls: Callable[[], float]) -> tuple[float, float]:
            """(calls per second, the server's CPU microseconds per call) of one slice."""
            before = cpu_seconds(server)
            rate = calls()
            spent = cpu_seconds(server) - before
            return rate, spent / max(rate * slice_s, 1.0) * 1_000_000

        def gets(client: Client) -> float:
            return timed_calls(lambda i: client.get("kv", keys[i % 1000]), slice_s)[0]

        def puts(client: Client) -> float:
            return timed_calls(lambda i: client.put("kv", keys[i % 1000], VALUE), slice_s)[0]

        results = interleave(
            {
                "get off": lambda: measured(quiet, lambda: gets(off)),
                "get on": lambda: measured(observed, lambda: gets(on)),
                "put off": lambda: measured(quiet, lambda: puts(off)),
                "put on": lambda: measured(observed, lambda: puts(on)),
                "64 off": lambda: measured(
                    quiet, lambda: concurrent_gets(quiet.target, "kv", slice_s)
                ),
                "64 on": lambda: measured(
                    observed, lambda: concurrent_gets(observed.target, "kv", slice_s)
                ),
            },
            ROUNDS,
        )
        off.close()
        on.close()
    finally:
        stop_scraping.set()
        scraper.join()
        quiet.kill()
        observed.stop()
        collector_server.stop(None)
    rate = {name: statistics.median(rate for rate, _ in values) for name, values in results.items()}
    cpu = {name: statistics.median(cpu for _, cpu in values) for name, values in results.items()}
    note = (
        f"same run, slices in turn; /metrics scraped {scrapes}x, "
        f"{collector.spans} spans exported at 10% sampling"
    )
    for name, label in (
        ("get", "get sequential"),
        ("put", "put sequential"),
        ("64", "get 64 in flight"),
    ):
        report.add(
            Row(
                SUITE,
                f"{label}, metrics + tracing 10%",
                rate[f"{name} on"],
                "ops/s",
                "both off",
                rate[f"{name} off"],
                GOAL,
                note=note,
            )
        )
        # Server CPU per call is steadier than throughput on a machine shared with other
        # work: at most 1/0.9 of it is the same goal for a CPU-bound server.
        report.add(
            Row(
                SUITE,
                f"{label}, server CPU per call",
                cpu[f"{name} on"],
                "us",
                "both off",
                cpu[f"{name} off"],
                round(1 / GOAL, 2),
                higher_is_better=False,
                note=note,
            )
        )


def cpu_seconds(server: ServerProcess) -> float:
    """User and system CPU time of a server process so far (Linux /proc)."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    del redis_port
    run(report, work_dir, seconds=pick(scale, tiny=0.5, quick=5.0, full=15.0))
