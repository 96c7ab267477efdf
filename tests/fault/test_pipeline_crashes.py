"""Exactly once through crashes: 100,000 events, kill -9 of the coordinator, a Kafka restart.

The events include repeats and 1% invalid ones and are produced with aiokafka and with
kcat while the pipeline consumes; meanwhile the coordinator is killed (SIGKILL) four
times and restarted, and the broker is restarted once. At the end the grid must hold the
totals computed independently from what was produced, and the dead-letter topic every
invalid event exactly once with its reason.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest

from coordinator.pipelines.deadletter import HEADER_RULE, reasons_of
from shoal import Client, ShoalError
from tests.support.external_servers import restart_kafka
from tests.support.kafka import (
    create_topic,
    produce,
    produce_with_kcat,
    read_topic,
    unique,
    wait_until,
)
from tests.support.pipeline_server import (
    PipelinesApi,
    check_grid,
    orders_pipeline,
    start_pipeline_server,
)
from tests.support.pipeline_workload import REGIONS, generate

pytestmark = [pytest.mark.fault, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

EVENTS = 100_000
CHUNK = 5_000
KCAT_CHUNKS = {1, 4, 7, 10, 13, 16, 19}
CHUNK_PERIOD_S = 1.2


def applied_so_far(target: str) -> int:
    """Events applied, read from the grid (0 while the coordinator is down)."""
    try:
        with Client(target, timeout_s=2) as client:
            totals = client.get_many("revenue", list(REGIONS))
    except ShoalError:
        return 0
    return sum(value["count"] for value in totals.values())


def test_100k_events_apply_exactly_once_through_crashes_and_a_kafka_restart(
    tmp_path, kafka_bootstrap
):
    if os.environ.get("SHOAL_TEST_KAFKA"):
        pytest.skip("restarts Kafka: needs a broker of its own, not SHOAL_TEST_KAFKA's")
    topic, group = unique("exactly-once"), unique("exactly-once-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    workload = generate(EVENTS, seed=11, invalid_fraction=0.01, duplicate_fraction=0.03)
    expected = workload.expected
    assert len(workload.messages) == EVENTS
    assert expected.duplicates > 1000 and len(expected.dead) > 900
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=2000)
    server = start_pipeline_server(tmp_path / "data", pipelines, kafka_bootstrap)

    kafka_up = threading.Event()
    kafka_up.set()
    produced = [0]
    failures: list[BaseException] = []

    def producer() -> None:
        try:
            for index, start in enumerate(range(0, EVENTS, CHUNK)):
                kafka_up.wait()
                chunk = workload.messages[start : start + CHUNK]
                if index in KCAT_CHUNKS:
                    produce_with_kcat(kafka_bootstrap, topic, chunk)
                else:
                    produce(kafka_bootstrap, topic, chunk)
                produced[0] += len(chunk)
                time.sleep(CHUNK_PERIOD_S)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=producer, name="producer", daemon=True)
    kills = 0
    try:
        thread.start()
        for threshold, action in (
            (8_000, "kill"),
            (25_000, "kill"),
            (40_000, "restart kafka"),
            (55_000, "kill"),
            (75_000, "kill"),
        ):
            wait_until(
                lambda threshold=threshold: applied_so_far(server.target) >= threshold,
                timeout_s=120,
                what=f"{threshold} events applied",
            )
            if action == "kill":
                server.kill()
                kills += 1
                server.start()
            else:
                kafka_up.clear()
                try:
                    restart_kafka()
                finally:
                    kafka_up.set()
        thread.join(300)
        assert not failures, failures
        assert produced[0] == EVENTS
        with PipelinesApi(server.target) as api:
            wait_until(
                lambda: api.caught_up(group, EVENTS),
                timeout_s=180,
                interval_s=1.0,
                what="the pipeline to apply everything",
            )
        assert kills == 4
        check_grid(server.target, expected)
        records = read_topic(kafka_bootstrap, f"{topic}.dlq")
        keys = Counter(record.key.decode() for record in records)
        assert sorted(key for key, count in keys.items() if count > 1) == []
        assert set(keys) == set(expected.dead)
        for record in records:
            assert reasons_of(record.headers)[HEADER_RULE] == expected.dead[record.key.decode()]
    except BaseException:
        # The coordinator's log tells what it was doing when the test gave up.
        print(server.log_tail(120))
        raise
    finally:
        kafka_up.set()
        thread.join(60)
        server.stop()
