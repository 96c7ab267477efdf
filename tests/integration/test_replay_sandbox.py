"""Replays into sandboxes, through production: exact after kill -9 of production, and a
changed pipeline whose diff names exactly the keys the change affects."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shoal import Client, NotFoundError, UnavailableError
from tests.support.kafka import create_topic, unique, wait_until
from tests.support.pipeline_server import (
    PipelinesApi,
    check_grid,
    orders_pipeline,
    start_pipeline_server,
)
from tests.support.pipeline_workload import expected_of, generate
from tests.support.replay import grid_checksums, produce_timestamped
from tests.support.sandboxes import processes_serving

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

EVENTS = 3000
STEP_MS = 10


@pytest.fixture
def production(tmp_path, kafka_bootstrap):
    topic, group = unique("orders"), unique("orders-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    workload = generate(EVENTS, seed=9, invalid_fraction=0.02, duplicate_fraction=0.05)
    base_ms = int(time.time() * 1000) - 3_600_000
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=500)
    server = start_pipeline_server(tmp_path / "production", pipelines, kafka_bootstrap)
    try:
        produce_timestamped(
            kafka_bootstrap,
            topic,
            workload.messages,
            [base_ms + index * STEP_MS for index in range(EVENTS)],
        )
        with PipelinesApi(server.target) as api:
            wait_until(lambda: api.caught_up(group, EVENTS), timeout_s=180)
        yield server, topic, group, workload.messages, base_ms, pipelines / "orders.py"
    finally:
        server.kill()


def status_or_none(client: Client, replay_id: str) -> object:
    """The replay's status, or None while its sandbox is not serving (after a restart of
    production the sandbox's process starts again)."""
    try:
        return client.replays.status(replay_id)
    except UnavailableError:
        return None


def sandbox_for_orders(client: Client, name: str) -> None:
    """A sandbox holding production's customers and empty orders maps."""
    client.sandboxes.create(name, from_snapshot=True, maps=["customers"], ttl_s=3600)
    with client.sandbox(name) as sandbox:
        sandbox.create_map("orders")
        sandbox.create_map("revenue")


def test_a_replay_into_a_sandbox_resumes_after_production_is_killed(production):
    server, topic, group, messages, base_ms, _ = production
    first, last = len(messages) // 10, 9 * len(messages) // 10
    expected = expected_of(messages[first:last])
    with Client(server.target, timeout_s=60) as client:
        sandbox_for_orders(client, "incident-42")
        before = grid_checksums(server.target)
        started = client.replays.start(
            pipeline=group,
            topic=topic,
            from_time=base_ms + first * STEP_MS,
            to_time=base_ms + last * STEP_MS,
            rate_per_s=800,
            sandbox="incident-42",
        )
        assert started.id.startswith("incident-42/r-")
        wait_until(
            lambda: client.replays.status(started.id).processed > 0,
            timeout_s=120,
            interval_s=0.1,
            what="a first batch in the sandbox",
        )
        info = client.sandboxes.describe("incident-42")
        assert started.id.rpartition("/")[2] in info.replays
        running = client.replays.status(started.id)
        assert running.state == "running" and running.processed < running.total
    server.kill()
    server.start()
    with Client(server.target, timeout_s=60) as client:
        wait_until(
            lambda: client.sandboxes.describe("incident-42").state == "ready",
            timeout_s=120,
            what="the sandbox back",
        )
        status = wait_until(
            lambda: (
                (found := status_or_none(client, started.id)) is not None and found.ended and found
            ),
            timeout_s=300,
            interval_s=0.3,
            what="the replay done",
        )
        assert status.state == "done", status.error
        assert status.applied == len(expected.orders)
        assert status.rejected == len(expected.dead)
        info = client.sandboxes.describe("incident-42")
        assert len(processes_serving(Path(info.data_dir))) == 1
        with client.sandbox("incident-42") as sandbox:
            check_grid(sandbox.targets[0], expected)
        with PipelinesApi(server.target) as api:
            wait_until(lambda: api.caught_up(group, EVENTS), timeout_s=120)
        assert grid_checksums(server.target) == before
        with pytest.raises(NotFoundError) as raised:
            client.replays.start(
                pipeline=group,
                topic=topic,
                from_time=base_ms,
                to_time=base_ms + 1000,
                sandbox="no-such-sandbox",
            )
        assert "no-such-sandbox" in str(raised.value)


def test_a_changed_pipeline_replayed_into_a_sandbox_differs_in_exactly_its_keys(production):
    server, topic, _, messages, _, module = production
    changed = module.parent / "orders_v2.py"
    changed.write_text(
        module.read_text().replace(
            'tx.put("orders", event["order"], event)',
            'tx.put("orders", event["order"], {**event.to_dict(), "amount": event["amount"] * 2}'
            ' if event["region"] == "apac" else event)',
        )
    )
    assert changed.read_text() != module.read_text()
    expected = expected_of(messages)
    affected = set()
    seen = set()
    for message in messages:
        try:
            document = json.loads(message.value)
        except json.JSONDecodeError:
            continue
        if message.key in seen:
            continue
        seen.add(message.key)
        if document.get("order") in expected.orders and document.get("region") == "apac":
            affected.add(document["order"])
    assert affected
    with Client(server.target, timeout_s=60) as client:
        sandbox_for_orders(client, "change-test")
        started = client.replays.start(
            pipeline=changed,
            topic=topic,
            from_offsets=dict.fromkeys(range(4), 0),
            sandbox="change-test",
        )
        status = wait_until(
            lambda: (found := client.replays.status(started.id)).ended and found,
            timeout_s=300,
            interval_s=0.3,
            what="the replay done",
        )
        assert status.state == "done", status.error
        report = client.sandboxes.diff("change-test", maps=["orders", "revenue"], sample=1000)
        orders = report["maps"]["orders"]
        assert orders["only_in_production"] == 0 and orders["only_in_sandbox"] == 0
        assert orders["different"] == len(affected)
        assert {entry["key"] for entry in orders["samples"]["different"]} == affected
        revenue = report["maps"]["revenue"]
        assert revenue["different"] == 0 and revenue["only_in_sandbox"] == 0
