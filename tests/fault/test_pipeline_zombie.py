"""Zombie fencing with real consumers: one coordinator's pipeline stalls long enough to be
thrown out of its consumer group while a batch of its partition is still in its hands;
another takes the partition over. Only one batch per offset range may commit."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import orjson
import pytest

from coordinator.pipelines.consumer import KafkaSettings
from coordinator.pipelines.discovery import load_definitions
from coordinator.pipelines.host import PipelineHost
from coordinator.pipelines.registry import resolve
from grid.entry import value_of
from tests.support.kafka import create_topic, produce, unique, wait_until
from tests.support.pipeline_workload import CUSTOMERS, REGIONS, generate
from tests.support.pipelines import open_node

pytestmark = [pytest.mark.fault, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

STALLING_PIPELINE = """
import threading
import time

from shoal.pipelines import pipeline

# Worker threads to stall once (thread id -> seconds), and a flag raised while stalled.
STALL = {{}}
STALLED = threading.Event()


@pipeline(topic={topic!r}, group={group!r}, batch_max=200, batch_ms=20, dedup_key="id")
def apply(event, tx):
    seconds = STALL.pop(threading.get_ident(), None)
    if seconds is not None:
        STALLED.set()
        time.sleep(seconds)
    tx.put("orders", event["order"], event)
    tx.increment("revenue", event["region"], {{"total": event["amount"], "count": 1}})
"""


def stored(node, map_name: str, key: str):
    entry = node.keyvalue.get(map_name, key)
    return None if entry is None else orjson.loads(value_of(entry))


def applied(node) -> int:
    return sum((stored(node, "revenue", region) or {"count": 0})["count"] for region in REGIONS)


def record_ranges(host: PipelineHost, name: str, ranges: list[tuple[int, int, str]]) -> None:
    """Wraps the host's applier to note the offset range of every transaction it commits."""
    applier = host.runners[next(iter(host.runners))].applier
    original = applier._committed

    def committed(attempt, result):
        for share in attempt.progress.values():
            start = share.state.next_offset
            ranges.append((share.first_offset if start is None else start, share.next_offset, name))
        original(attempt, result)

    applier._committed = committed


def test_a_stalled_consumer_that_lost_its_partition_cannot_commit_again(
    tmp_path: Path, kafka_bootstrap
):
    topic, group = unique("zombie"), unique("zombie-to-grid")
    create_topic(kafka_bootstrap, topic, 1)
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "stalling.py").write_text(STALLING_PIPELINE.format(topic=topic, group=group))
    workload = generate(12_000, partitions=1, seed=5, invalid_fraction=0, duplicate_fraction=0)
    node = open_node(tmp_path / "data")
    for name in ("orders", "revenue", "customers"):
        node.create_map(name)
    node.keyvalue.put_many(
        "customers", [f"c{number}" for number in range(CUSTOMERS)], [b"{}"] * CUSTOMERS
    )
    definitions = load_definitions(str(folder))
    module = definitions.pipelines[0].function.__globals__
    settings = KafkaSettings(kafka_bootstrap, session_timeout_ms=6000)
    first = PipelineHost(node, resolve(definitions, node.catalog), settings)
    second = PipelineHost(node, resolve(definitions, node.catalog), settings)
    ranges: list[tuple[int, int, str]] = []

    def producer() -> None:
        for start in range(0, len(workload.messages), 500):
            produce(kafka_bootstrap, topic, workload.messages[start : start + 500])
            time.sleep(0.5)

    thread = threading.Thread(target=producer, daemon=True)
    try:
        first.start()
        record_ranges(first, "first", ranges)
        thread.start()
        wait_until(lambda: applied(node) >= 1000, timeout_s=60, what="the first consumer")
        # Stall the first consumer's worker in the middle of a batch, and its event loop
        # (so its heartbeats stop and the group throws it out), longer than the session.
        runner = first.runners[group]
        worker = runner.worker.submit(threading.get_ident).result()
        module["STALL"][worker] = 9.0
        assert module["STALLED"].wait(30)
        assert first._loop is not None
        first._loop.call_soon_threadsafe(time.sleep, 10.0)
        second.start()
        record_ranges(second, "second", ranges)
        thread.join(120)
        wait_until(
            lambda: applied(node) == len(workload.expected.orders),
            timeout_s=120,
            what="every event applied",
        )
        time.sleep(1.0)
        assert applied(node) == len(workload.expected.orders)
        fenced = sum(
            host.runners[group].metrics.snapshot()[0].get("batches_fenced", 0)
            for host in (first, second)
        )
        assert fenced >= 1, "the stalled batch should have been fenced"
        revenue = {region: stored(node, "revenue", region) for region in REGIONS}
        assert revenue == workload.expected.revenue
        ordered = sorted(ranges)
        for (_, end, _), (start, _, who) in itertools.pairwise(ordered):
            assert start == end, f"overlapping or missing offsets before {who}: {ordered}"
        assert ordered[-1][1] == len(workload.messages)
        assert {who for _, _, who in ordered} == {"first", "second"}
    finally:
        thread.join(60)
        first.stop()
        second.stop()
        node.close()
