"""A Kafka pipeline run by two coordinators on one shared store (Redis, Hazelcast, Ignite), one
killed mid-stream: exactly once.

Both coordinators run the same pipeline (one consumer group), so Kafka splits the topic's
partitions between them. Mid-stream one is killed with SIGKILL (and started again later): its
partitions move to the other through a rebalance, and its batches in flight are fenced by the
offsets kept in the store. At the end every valid event is applied exactly once, checked event
by event (each order present, each region's count and total exact), and every invalid one is
dead-lettered once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from shoal import Client, ShoalError
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME
from tests.support.kafka import create_topic, produce, read_topic, unique, wait_until
from tests.support.pipeline_server import (
    PipelinesApi,
    check_grid,
    orders_pipeline,
    start_pipeline_server,
)
from tests.support.pipeline_workload import REGIONS, generate
from tests.support.shared_store import drop_namespace, fresh_namespace

pytestmark = [pytest.mark.fault, pytest.mark.kafka, pytest.mark.timeout(600)]

EVENTS = 12_000
CHUNK = 1_000


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        # Coordinators on a JVM store start slower and apply slower on a busy machine.
        pytest.param("hazelcast", marks=[pytest.mark.hazelcast, pytest.mark.slow]),
        pytest.param("ignite", marks=[pytest.mark.ignite, pytest.mark.slow]),
    ]
)
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    if request.param == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        return f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
    return "ignite://" + str(request.getfixturevalue("ignite_address"))


def applied_so_far(target: str) -> int:
    try:
        with Client(target, timeout_s=5) as client:
            totals = client.get_many("revenue", list(REGIONS))
    except ShoalError:
        return 0
    return sum(value["count"] for value in totals.values())


def test_a_pipeline_over_two_coordinators_with_one_killed_applies_each_event_once(
    tmp_path: Path, kafka_bootstrap: str, store_url: str
) -> None:
    topic, group = unique("shared-pipeline"), unique("shared-pipeline-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    workload = generate(EVENTS, seed=23, invalid_fraction=0.01, duplicate_fraction=0.03)
    expected = workload.expected
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=500)
    namespace = fresh_namespace()
    shared = ["--backend", f"{store_url}/{namespace}", "--partitions", "8"]
    leases = ["--txn-lease-ms", "3000", "--txn-sweep-interval-ms", "300"]
    servers = []
    try:
        for index in range(2):
            servers.append(
                start_pipeline_server(
                    tmp_path / f"coordinator-{index}",
                    pipelines,
                    kafka_bootstrap,
                    extra=[*shared, *leases],
                )
            )
        survivor, victim = servers
        produced = [0]

        def producer() -> None:
            for start in range(0, EVENTS, CHUNK):
                produce(kafka_bootstrap, topic, workload.messages[start : start + CHUNK])
                produced[0] += CHUNK
                time.sleep(0.5)

        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        wait_until(
            lambda: applied_so_far(survivor.target) >= EVENTS // 6,
            timeout_s=240,
            what="a sixth of the events applied",
        )
        # Both coordinators consume: Kafka gave each some of the topic's partitions.
        with PipelinesApi(victim.target) as mine, PipelinesApi(survivor.target) as theirs:
            wait_until(
                lambda: mine.info(group).assigned and theirs.info(group).assigned,
                timeout_s=120,
                what="the topic's partitions split between the coordinators",
            )
        victim.kill()
        wait_until(
            lambda: applied_so_far(survivor.target) >= EVENTS // 2,
            timeout_s=240,
            what="half of the events applied after the kill",
        )
        victim.start()
        thread.join(300)
        assert produced[0] == EVENTS
        with PipelinesApi(survivor.target) as api:
            wait_until(
                lambda: api.caught_up(group, EVENTS),
                timeout_s=300,
                interval_s=1.0,
                what="the pipeline to apply everything",
            )
        for server in servers:
            check_grid(server.target, expected)
        records = read_topic(kafka_bootstrap, f"{topic}.dlq")
        keys = Counter(record.key.decode() for record in records)
        assert sorted(key for key, count in keys.items() if count > 1) == []
        assert set(keys) == set(expected.dead)
    except BaseException:
        for server in servers:
            print(server.log_tail(60))
        raise
    finally:
        for server in servers:
            server.kill()
        drop_namespace(store_url, namespace)
