"""Replay benchmark: a replay's rate next to the live pipeline's exactly-once rate.

In one run, on one topic of simple order events: the rate at which a coordinator's
live pipeline applies the topic exactly once (`pipelines.apply_rate`), then the rate at
which a replay of the whole topic through the same pipeline code applies it into a
fresh grid (the replay's group-less consumer, batches committed with the replay's
offsets). Both count every event from the moment the consumer starts (the live one's
assignment, the replay's start); each runs in a fresh coordinator, one after the other,
so they do not share the CPU.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from loadtests.bench.pipelines import PARTITIONS, PIPELINE, apply_rate, fill_topic
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.external_servers import ensure_kafka, kafka_running, stop_kafka
from tests.support.kafka import unique
from tests.support.server_process import ServerProcess

SUITE = "replay"


def replay_rate(work_dir: Path, bootstrap: str, topic: str, count: int) -> float:
    """Events a second a replay of the whole topic applies into a fresh grid."""
    group = unique("bench-replay")
    module = work_dir / f"{group}.py"
    module.write_text(
        PIPELINE.format(topic=topic, group=group, mode="exactly_once", batch_max=5000, batch_ms=100)
    )
    server = ServerProcess(work_dir / f"{group}-data", ["--log-level", "WARNING"]).start()
    try:
        with Client(server.target, timeout_s=60) as client:
            client.create_map("orders")
            client.create_map("revenue")
            status = client.replays.start(
                pipeline=module,
                topic=topic,
                from_offsets=dict.fromkeys(range(PARTITIONS), 0),
                kafka=bootstrap,
            )
            started = time.perf_counter()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                status = client.replays.status(status.id)
                if status.ended:
                    if status.state != "done" or status.applied != count:
                        raise RuntimeError(f"replay ended {status.state}: {status.error}")
                    return count / (time.perf_counter() - started)
                time.sleep(0.02)
            raise TimeoutError(f"the replay did not apply {count} events")
    finally:
        server.stop()


def run(report: Report, work_dir: Path, *, count: int) -> None:
    started_here = not os.environ.get("SHOAL_TEST_KAFKA") and not kafka_running()
    bootstrap = ensure_kafka()
    try:
        topic = unique("bench-replay-events")
        fill_topic(bootstrap, topic, count)
        live = apply_rate(work_dir, bootstrap, topic, count, "exactly_once").rate
        print(f"  live exactly-once apply: {live:,.0f} events/s", flush=True)
        replayed = replay_rate(work_dir, bootstrap, topic, count)
        print(f"  replay into a fresh grid: {replayed:,.0f} events/s", flush=True)
        report.add(
            Row(
                SUITE,
                "replay into another grid (put+increment)",
                replayed,
                "events/s",
                "live exactly-once pipeline",
                live,
                0.9,
                note=f"{count} events, same topic and pipeline code, one after the other",
            )
        )
    finally:
        if started_here:
            stop_kafka()


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    run(report, work_dir, count=pick(scale, tiny=2_000, quick=40_000, full=100_000))
