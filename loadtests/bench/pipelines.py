"""Pipeline benchmarks: Kafka events applied to the grid, next to aiokafka alone.

In one run, against the local broker: the rate at which a bare aiokafka consumer reads a
topic of simple order events and decodes each (orjson); the rate at which a coordinator
applies the same topic with a simple pipeline (one put and one increment per event) in
exactly-once and in at-least-once mode, from the moment its consumer is assigned the
partitions, every event counted; and how evenly the partitions advanced (the longest a
partition with records left stood still while another moved). The sides take turns,
each run as often, and each keeps its best run. Each apply runs a fresh coordinator.
`latency_at` (end-to-end latency at a fixed offered rate) serves the latency suite.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.external_servers import ensure_kafka, kafka_running, stop_kafka
from tests.support.kafka import KCAT, Message, create_topic, produce_with_kcat, unique
from tests.support.pipeline_server import PipelinesApi
from tests.support.server_process import ServerProcess

SUITE = "pipelines"
PARTITIONS = 4
REGIONS = ("eu", "us", "apac")
LAG_SAMPLE_S = 0.25
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
    """Events a second a bare aiokafka consumer reads and decodes the topic at.

    The clock starts once the partitions are assigned and sought, before the first fetch,
    as the pipeline's does; each value is decoded with orjson, the work a consumer of JSON
    events cannot skip.
    """

    async def consume() -> float:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **FETCH
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
            consumer.assign(partitions)
            for tp, offset in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, offset)
            loads = orjson.loads
            seen = 0
            started = time.perf_counter()
            while seen < count:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in fetched.values():
                    for record in records:
                        loads(record.value)
                    seen += len(records)
            return count / (time.perf_counter() - started)
        finally:
            await consumer.stop()

    return asyncio.run(consume())


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


@dataclass
class ApplyRun:
    rate: float
    # The longest time a partition with records left did not advance while another did.
    longest_stall_s: float


def longest_stall_s(samples: list[tuple[float, list[int]]], ends: list[int]) -> float:
    """From (time, committed offsets) samples: the longest a partition short of its end
    stood still while some other partition's offset moved."""
    longest = 0.0
    for partition in range(len(ends)):
        still_since: float | None = None
        for (before_s, before), (now_s, now) in itertools.pairwise(samples):
            others_moved = any(
                now[other] > before[other] for other in range(len(ends)) if other != partition
            )
            if now[partition] == before[partition] and before[partition] < ends[partition]:
                if still_since is None:
                    still_since = before_s
                if others_moved:
                    longest = max(longest, now_s - still_since)
            else:
                still_since = None
    return longest


def apply_rate(work_dir: Path, bootstrap: str, topic: str, count: int, mode: str) -> ApplyRun:
    """Events a second a coordinator applies the filled topic at, counting every event
    from the moment its consumer is assigned the partitions (the raw consumer's clock
    starts at the same point), and how evenly the partitions advanced."""
    group = unique(f"bench-{mode.replace('_', '-')}")
    module = PIPELINE.format(topic=topic, group=group, mode=mode, batch_max=5000, batch_ms=100)
    server = start_server(work_dir, group, bootstrap, module)
    ends = [count // PARTITIONS + (1 if p < count % PARTITIONS else 0) for p in range(PARTITIONS)]
    try:
        with PipelinesApi(server.target) as api:
            deadline = time.monotonic() + 120
            while not api.info(group).assigned:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{mode} pipeline was never assigned its partitions")
                time.sleep(0.005)
            started = time.perf_counter()
            samples: list[tuple[float, list[int]]] = []
            deadline = time.monotonic() + 600
            sampled = 0.0
            while time.monotonic() < deadline:
                now = time.perf_counter()
                if api.info(group).counters.get("applied", 0) >= count:
                    return ApplyRun(count / (now - started), longest_stall_s(samples, ends))
                # The partitions' offsets, less often: Lag asks Kafka for the end offsets,
                # which costs the coordinator more than reading its counters.
                if now - sampled >= LAG_SAMPLE_S:
                    sampled = now
                    lags = sorted(api.lag(group), key=lambda item: item.partition)
                    samples.append((now, [item.committed_offset for item in lags]))
                time.sleep(0.01)
            raise TimeoutError(f"{mode} pipeline did not apply {count} events")
    finally:
        server.stop()


def latency_at(
    work_dir: Path, bootstrap: str, rate: float, seconds: float
) -> tuple[float, float, float, int]:
    """p50, p99 and p99.9 of producer timestamp to commit (the coordinator's histogram),
    producing `rate` events a second for `seconds`; and the events produced."""
    topic, group = unique("bench-latency"), unique("bench-latency")
    create_topic(bootstrap, topic, PARTITIONS)
    module = PIPELINE.format(
        topic=topic, group=group, mode="exactly_once", batch_max=5000, batch_ms=50
    )
    server = start_server(work_dir, group, bootstrap, module)
    count = max(1, int(rate * seconds))
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
                    return (
                        info.apply_latency_p50_ms,
                        info.apply_latency_p99_ms,
                        info.apply_latency_p999_ms,
                        count,
                    )
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


def run(report: Report, work_dir: Path, *, count: int, rounds: int) -> None:
    started_here = not os.environ.get("SHOAL_TEST_KAFKA") and not kafka_running()
    bootstrap = ensure_kafka()
    try:
        topic = unique("bench-events")
        fill_topic(bootstrap, topic, count)
        raw: list[float] = []
        exactly_once: list[ApplyRun] = []
        at_least_once: list[ApplyRun] = []
        # Each side as often as the others, taking turns; the best run of each is kept.
        for _ in range(rounds):
            raw.append(raw_consume_rate(bootstrap, topic, count))
            print(f"  raw aiokafka consume + decode: {raw[-1]:,.0f} events/s", flush=True)
            exactly_once.append(apply_rate(work_dir, bootstrap, topic, count, "exactly_once"))
            at_least_once.append(apply_rate(work_dir, bootstrap, topic, count, "at_least_once"))
        baseline = max(raw)
        note = f"best of {rounds} a side, {count:,} events, {PARTITIONS} partitions"
        for label, runs, goal in (
            ("exactly-once", exactly_once, 0.25),
            ("at-least-once", at_least_once, 0.4),
        ):
            best = max(runs, key=lambda item: item.rate)
            report.add(
                Row(
                    SUITE,
                    f"{label} apply (put+increment)",
                    best.rate,
                    "events/s",
                    "aiokafka consume + orjson decode",
                    baseline,
                    goal,
                    note=note,
                )
            )
            report.add(
                Row(
                    SUITE,
                    f"{label}: longest partition stall while others advanced",
                    max(item.longest_stall_s for item in runs),
                    "s",
                    note=f"offsets sampled every {LAG_SAMPLE_S} s; the worst of {rounds} run(s)",
                    higher_is_better=False,
                )
            )
    finally:
        if started_here:
            stop_kafka()


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    run(
        report,
        work_dir,
        count=pick(scale, tiny=2_000, quick=40_000, full=100_000),
        rounds=pick(scale, tiny=1, quick=1, full=2),
    )
