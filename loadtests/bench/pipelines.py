"""Pipeline benchmarks: Kafka events applied to the grid, next to aiokafka alone.

In one run, against the local broker: the rate at which a bare aiokafka consumer reads a
topic of simple order events; the rate at which a coordinator applies the same topic
with a simple pipeline (one put and one increment per event) in exactly-once and in
at-least-once mode; and the end-to-end latency (the producer's record timestamp to the
commit that makes the event readable) at a fixed offered rate of half and a tenth of the
exactly-once rate. Each phase runs a fresh coordinator, so they do not share the CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from loadtests.bench.report import Report, Row
from shoal import Client
from tests.support.external_servers import ensure_kafka, kafka_running, stop_kafka
from tests.support.kafka import KCAT, Message, create_topic, produce_with_kcat, unique
from tests.support.pipeline_server import PipelinesApi
from tests.support.server_process import ServerProcess

SUITE = "pipelines"
PARTITIONS = 4
REGIONS = ("eu", "us", "apac")
FETCH = {"fetch_max_bytes": 64 * 1024 * 1024, "max_partition_fetch_bytes": 4 * 1024 * 1024}

PIPELINE = """
from shoal.pipelines import pipeline


@pipeline(topic={topic!r}, group={group!r}, mode={mode!r}, batch_max={batch_max},
          batch_ms={batch_ms}, max_in_flight=2)
def apply(event, tx):
    tx.put("orders", event["order"], event)
    tx.increment("revenue", event["region"], "total", event["amount"])
"""


def event(number: int) -> bytes:
    return json.dumps(
        {
            "id": f"e{number}",
            "order": f"o{number}",
            "region": REGIONS[number % 3],
            "amount": number % 1000,
            "customer": f"c{number % 100}",
        }
    ).encode()


def fill_topic(bootstrap: str, topic: str, count: int) -> None:
    """Produces `count` events quickly with kcat (librdkafka)."""
    create_topic(bootstrap, topic, PARTITIONS)
    messages = [
        Message(number % PARTITIONS, f"e{number}".encode(), event(number))
        for number in range(count)
    ]
    produce_with_kcat(bootstrap, topic, messages)


def raw_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    """Events a second a bare aiokafka consumer reads the topic at (values untouched)."""

    async def run() -> float:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **FETCH
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
            consumer.assign(partitions)
            for tp, offset in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, offset)
            seen = 0
            started = 0.0
            while seen < count:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=5000)
                if not started and fetched:
                    started = time.perf_counter()
                seen += sum(len(records) for records in fetched.values())
            return count / (time.perf_counter() - started)
        finally:
            await consumer.stop()

    return asyncio.run(run())


def start_server(work_dir: Path, name: str, bootstrap: str, module: str) -> ServerProcess:
    """A coordinator with the maps made before its pipeline starts."""
    data = work_dir / f"{name}-data"
    plain = ServerProcess(data).start()
    with Client(plain.target) as client:
        client.create_map("orders")
        client.create_map("revenue")
    plain.stop()
    folder = work_dir / f"{name}-pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.py").write_text(module)
    return ServerProcess(
        data,
        ["--pipelines", str(folder), "--kafka", bootstrap, "--log-level", "WARNING"],
    ).start()


def apply_rate(
    work_dir: Path, bootstrap: str, topic: str, count: int, mode: str
) -> tuple[float, float, float]:
    """Events a second a coordinator applies the filled topic at, and the latency p50 and
    p99 it reports (of a backlog, so only indicative)."""
    group = unique(f"bench-{mode.replace('_', '-')}")
    module = PIPELINE.format(topic=topic, group=group, mode=mode, batch_max=5000, batch_ms=100)
    server = start_server(work_dir, group, bootstrap, module)
    try:
        with PipelinesApi(server.target) as api:
            started = 0.0
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                info = api.info(group)
                applied = info.counters.get("applied", 0)
                if applied and not started:
                    started = time.perf_counter()
                if applied >= count:
                    return (
                        count / (time.perf_counter() - started),
                        info.apply_latency_p50_ms,
                        info.apply_latency_p99_ms,
                    )
                time.sleep(0.02)
            raise TimeoutError(f"{mode} pipeline did not apply {count} events")
    finally:
        server.stop()


def latency_at(
    work_dir: Path, bootstrap: str, rate: float, seconds: float
) -> tuple[float, float, int]:
    """p50 and p99 of producer timestamp to commit, producing `rate` events a second."""
    topic, group = unique("bench-latency"), unique("bench-latency")
    create_topic(bootstrap, topic, PARTITIONS)
    module = PIPELINE.format(
        topic=topic, group=group, mode="exactly_once", batch_max=5000, batch_ms=50
    )
    server = start_server(work_dir, group, bootstrap, module)
    count = int(rate * seconds)
    try:
        with PipelinesApi(server.target) as api:
            deadline = time.monotonic() + 60
            while not api.info(group).assigned and time.monotonic() < deadline:
                time.sleep(0.1)
            produce_at(bootstrap, topic, rate, count)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                info = api.info(group)
                if info.counters.get("applied", 0) >= count:
                    return info.apply_latency_p50_ms, info.apply_latency_p99_ms, count
                time.sleep(0.05)
            raise TimeoutError(f"latency run at {rate:.0f}/s did not finish")
    finally:
        server.stop()


def produce_at(bootstrap: str, topic: str, rate: float, count: int) -> None:
    """Produces `count` events at `rate` a second through kcat, fed in 10 ms ticks.

    kcat (librdkafka) stamps each record when it takes it, and costs the client side far
    less CPU than a Python producer, which on a 2-core machine would compete with the
    coordinator being measured.
    """
    process = subprocess.Popen(
        [
            KCAT,
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-K",
            "\t",
            "-X",
            "linger.ms=1",
            "-X",
            "queue.buffering.max.ms=1",
        ],
        stdin=subprocess.PIPE,
    )
    assert process.stdin is not None
    try:
        started = time.perf_counter()
        sent = 0
        while sent < count:
            due = min(count, int((time.perf_counter() - started) * rate) + 1)
            if due > sent:
                lines = b"".join(
                    f"e{number}".encode() + b"\t" + event(number) + b"\n"
                    for number in range(sent, due)
                )
                process.stdin.write(lines)
                process.stdin.flush()
                sent = due
            time.sleep(0.01)
    finally:
        process.stdin.close()
        process.wait(120)


def run(report: Report, work_dir: Path, *, count: int, latency_seconds: float) -> None:
    started_here = not os.environ.get("SHOAL_TEST_KAFKA") and not kafka_running()
    bootstrap = ensure_kafka()
    try:
        topic = unique("bench-events")
        fill_topic(bootstrap, topic, count)
        raw = raw_consume_rate(bootstrap, topic, count)
        print(f"  raw aiokafka consume: {raw:,.0f} events/s", flush=True)
        exactly_once, _, _ = apply_rate(work_dir, bootstrap, topic, count, "exactly_once")
        at_least_once, _, _ = apply_rate(work_dir, bootstrap, topic, count, "at_least_once")
        report.add(
            Row(
                SUITE,
                "exactly-once apply (put+increment)",
                exactly_once,
                "events/s",
                "aiokafka consume",
                raw,
                0.25,
            )
        )
        report.add(
            Row(
                SUITE,
                "at-least-once apply (put+increment)",
                at_least_once,
                "events/s",
                "aiokafka consume",
                raw,
                0.4,
            )
        )
        for fraction, limit_ms in ((0.5, 2000.0), (0.1, 500.0)):
            rate = exactly_once * fraction
            p50, p99, events = latency_at(work_dir, bootstrap, rate, latency_seconds)
            where = f"at {fraction:g}x max ({rate:,.0f}/s)"
            report.add(
                Row(
                    SUITE,
                    f"e2e latency p50 {where}",
                    p50,
                    "ms",
                    note=f"{events} events, producer timestamp to commit",
                    higher_is_better=False,
                )
            )
            report.add(
                Row(
                    SUITE,
                    f"e2e latency p99 {where}",
                    p99,
                    "ms",
                    f"limit {limit_ms:,.0f} ms",
                    limit_ms,
                    1.0,
                    higher_is_better=False,
                )
            )
    finally:
        if started_here:
            stop_kafka()


def main(report: Report, redis_port: int, work_dir: Path, quick: bool) -> None:
    os.environ.setdefault("SHOAL_LOG_LEVEL", "WARNING")
    run(
        report,
        work_dir,
        count=60_000 if quick else 200_000,
        latency_seconds=5.0 if quick else 15.0,
    )
