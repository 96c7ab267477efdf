"""Replays of a Kafka time window through a pipeline into another grid, on real processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shoal import Client
from tests.support.kafka import create_topic, read_topic, unique, wait_until
from tests.support.pipeline_server import (
    PipelinesApi,
    check_grid,
    grid_outcome,
    orders_pipeline,
    start_pipeline_server,
)
from tests.support.pipeline_workload import expected_of, generate
from tests.support.replay import grid_checksums, produce_timestamped, start_target_grid

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

# The figure is 50,000; make test replays fewer on the shared 2-core machine.
EVENTS = int(os.environ.get("SHOAL_REPLAY_EVENTS", "8000"))
STEP_MS = 10


def consumer_groups(bootstrap: str) -> set[str]:
    async def run() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return {group[0] for group in await admin.list_consumer_groups()}
        finally:
            await admin.close()

    return asyncio.run(run())


@pytest.fixture
def production(tmp_path, kafka_bootstrap):
    """A production coordinator running the orders pipeline over a timestamped topic,
    caught up with every event; yields (server, topic, group, messages, base_ms)."""
    topic, group = unique("orders"), unique("orders-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    workload = generate(EVENTS, seed=3, invalid_fraction=0.02, duplicate_fraction=0.05)
    base_ms = int(time.time() * 1000) - 3_600_000
    timestamps = [base_ms + index * STEP_MS for index in range(len(workload.messages))]
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=1000)
    server = start_pipeline_server(tmp_path / "production", pipelines, kafka_bootstrap)
    try:
        produce_timestamped(kafka_bootstrap, topic, workload.messages, timestamps)
        with PipelinesApi(server.target) as api:
            wait_until(
                lambda: api.caught_up(group, len(workload.messages)),
                timeout_s=240,
                what="production caught up",
            )
        check_grid(server.target, workload.expected)
        yield server, topic, group, workload.messages, base_ms
    finally:
        server.kill()


def wait_ended(client: Client, replay_id: str, timeout_s: float = 300) -> object:
    return wait_until(
        lambda: (status := client.replays.status(replay_id)).ended and status,
        timeout_s=timeout_s,
        interval_s=0.3,
        what=f"replay {replay_id} ended",
    )


def test_a_time_window_replays_exactly_into_another_grid(tmp_path, kafka_bootstrap, production):
    server, topic, group, messages, base_ms = production
    first, last = len(messages) // 4, 3 * len(messages) // 4
    window = messages[first:last]
    expected = expected_of(window)
    target = start_target_grid(tmp_path / "target")
    try:
        before = grid_checksums(server.target)
        production_dead = len(read_topic(kafka_bootstrap, f"{topic}.dlq"))
        with Client(server.target) as client:
            started = client.replays.start(
                pipeline=group,
                topic=topic,
                from_time=base_ms + first * STEP_MS,
                to_time=base_ms + last * STEP_MS,
                into=target.target,
            )
            assert started.id.startswith(f"{target.target}/r-")
            assert started.total == len(window)
            assert started.dead_letter_topic.startswith("shoal-replay.")
            status = wait_ended(client, started.id)
        assert status.state == "done", status.error
        assert status.processed == status.total == len(window)
        assert status.applied == len(expected.orders)
        assert status.rejected == len(expected.dead)
        assert status.duplicates == expected.duplicates
        check_grid(target.target, expected)
        dead = read_topic(kafka_bootstrap, status.dead_letter_topic)
        keys = Counter(record.key.decode() for record in dead)
        assert set(keys) == set(expected.dead) and max(keys.values(), default=1) == 1
        # Production: not a value changed, no dead letter added, no group joined.
        assert grid_checksums(server.target) == before
        assert len(read_topic(kafka_bootstrap, f"{topic}.dlq")) == production_dead
        assert not [name for name in consumer_groups(kafka_bootstrap) if "replay" in name]
    finally:
        target.stop()


def test_a_replay_killed_with_its_coordinator_resumes_and_ends_exact(
    tmp_path, kafka_bootstrap, production
):
    server, topic, group, messages, base_ms = production
    first, last = len(messages) // 8, 7 * len(messages) // 8
    expected = expected_of(messages[first:last])
    target = start_target_grid(tmp_path / "target")
    try:
        with Client(server.target) as client:
            started = client.replays.start(
                pipeline=group,
                topic=topic,
                from_time=base_ms + first * STEP_MS,
                to_time=base_ms + last * STEP_MS,
                rate_per_s=1500,
                into=target.target,
            )
            assert started.rate_limit_per_s == 1500
            running = wait_until(
                lambda: (status := client.replays.status(started.id)).processed > 0 and status,
                timeout_s=120,
                interval_s=0.1,
                what="the replay applied a first batch",
            )
            assert running.state == "running" and running.processed < running.total
            target.kill()
            target.start()
            status = wait_ended(client, started.id)
        assert status.state == "done", status.error
        assert status.applied == len(expected.orders)
        assert status.rejected == len(expected.dead)
        check_grid(target.target, expected)
        orders, _ = grid_outcome(target.target)
        assert len(orders) == len(expected.orders)
    finally:
        target.stop()
