"""Replays of a Kafka time window through a pipeline into another grid, on real processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
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
from tests.support.server_process import REPO_ROOT, ServerProcess
from tests.support.terminal import Terminal

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

# The figure is 50,000; make test replays fewer on the shared 2-core machine.
EVENTS = int(os.environ.get("SHOAL_REPLAY_EVENTS", "4000"))
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


@pytest.fixture(scope="module")
def production(tmp_path_factory, kafka_bootstrap):
    """A production coordinator running the orders pipeline over a timestamped topic,
    caught up with every event; yields (server, topic, group, messages, base_ms). The
    tests replay out of it and check that it never changes."""
    tmp_path = tmp_path_factory.mktemp("production")
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


def shoal(target: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli", "--target", target, *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_cli_refuses_bad_replays_naming_the_problem(tmp_path, kafka_bootstrap, production):
    server, topic, group, _, _ = production
    target = start_target_grid(tmp_path / "target")
    broken = tmp_path / "broken_pipeline.py"
    broken.write_text("import no_such_module_anywhere\n")
    window = ["--from", "2026-01-01T00:00Z", "--to", "2026-01-01T01:00Z"]
    try:
        before = grid_checksums(server.target)
        common = ["replay", "start", "--topic", topic, "--into", target.target]
        cases = [
            ([*common, "--pipeline", str(broken), *window], "broken_pipeline.py"),
            ([*common, "--pipeline", str(tmp_path / "absent.py"), *window], "does not exist"),
            (
                [
                    *common,
                    "--pipeline",
                    group,
                    "--from",
                    "2026-01-02T00:00Z",
                    "--to",
                    "2026-01-01T00:00Z",
                ],
                "ends",
            ),
            ([*common, "--pipeline", group, *window], "holds no events"),
            (
                [
                    "replay",
                    "start",
                    "--topic",
                    unique("absent"),
                    "--into",
                    target.target,
                    "--pipeline",
                    group,
                    *window,
                ],
                "no topic",
            ),
            ([*common, "--pipeline", group, "--from", "yesterday", "--to", "today"], "ISO 8601"),
            (
                [
                    "replay",
                    "start",
                    "--topic",
                    topic,
                    "--sandbox",
                    "no-such-sandbox",
                    "--pipeline",
                    group,
                    *window,
                ],
                "sandbox",
            ),
            ([*common, "--pipeline", group, "--from-offsets", "0-12"], "partition:offset"),
            (["replay", "status", f"{target.target}/r-0000000000"], "no replay"),
        ]
        for arguments, named in cases:
            completed = shoal(server.target, *arguments)
            assert completed.returncode != 0, (arguments, completed.stdout)
            assert named in completed.stderr, (arguments, completed.stderr)
            assert "Traceback" not in completed.stderr
        assert grid_checksums(server.target) == before
        assert grid_checksums(target.target)["orders"].startswith("0:")
    finally:
        target.stop()


def test_the_cli_follows_a_replay_to_its_end(tmp_path, kafka_bootstrap, production):
    server, topic, group, messages, base_ms = production
    count = min(len(messages), 2000)
    expected = expected_of(messages[:count])
    target = start_target_grid(tmp_path / "target")
    try:
        completed = shoal(
            server.target,
            "--json",
            "replay",
            "start",
            "--pipeline",
            group,
            "--topic",
            topic,
            "--from",
            str(base_ms),
            "--to",
            str(base_ms + count * STEP_MS),
            "--into",
            target.target,
            "--rate",
            "5000/s",
            "--follow",
        )
        assert completed.returncode == 0, completed.stderr
        lines = [json.loads(line) for line in completed.stdout.splitlines()]
        assert lines[-1]["state"] == "done" and lines[-1]["processed"] == count
        assert lines[-1]["applied"] == len(expected.orders)
        check_grid(target.target, expected)
        shown = shoal(server.target, "replay", "status", lines[-1]["id"])
        assert shown.returncode == 0 and "done" in shown.stdout, shown.stderr
        # On a terminal, --follow draws tqdm's bar (count, rate, ETA, outcomes) to the end.
        with Client(server.target) as client:
            slow = client.replays.start(
                pipeline=group,
                topic=topic,
                from_offsets={0: 0, 1: 0},
                rate_per_s=400,
                into=target.target,
            )
        with Terminal(
            [
                sys.executable,
                "-m",
                "shoal.cli",
                "--target",
                server.target,
                "replay",
                "status",
                slow.id,
                "--follow",
            ]
        ) as terminal:
            terminal.read_until("ev/s", timeout_s=120)
            terminal.read_until("applied=", timeout_s=120)
            terminal.read_until(f"{slow.id}: done", timeout_s=300)
            assert terminal.wait(60) == 0
    finally:
        target.stop()


def test_a_cancelled_replay_stops_and_keeps_what_it_applied(tmp_path, kafka_bootstrap, production):
    server, topic, group, messages, _ = production
    target = start_target_grid(tmp_path / "target")
    try:
        with Client(server.target) as client:
            began_s = time.monotonic()
            started = client.replays.start(
                pipeline=group,
                topic=topic,
                from_offsets={0: 0, 1: 0, 2: 0, 3: 0},
                rate_per_s=300,
                into=target.target,
            )
            assert started.total == len(messages)
            wait_until(
                lambda: client.replays.status(started.id).processed > 0,
                timeout_s=120,
                interval_s=0.1,
                what="a first batch",
            )
            cancelled = client.replays.cancel(started.id)
            elapsed_s = time.monotonic() - began_s
            assert cancelled.state == "cancelled"
            assert 0 < cancelled.processed < cancelled.total
            # The cap held: a second's burst, then at most 300 events a second (a slow
            # machine only makes it fewer).
            assert cancelled.processed <= 300 * (1 + elapsed_s), (cancelled, elapsed_s)
            settled = grid_checksums(target.target)
            time.sleep(1.5)
            again = client.replays.status(started.id)
            assert (again.state, again.processed) == ("cancelled", cancelled.processed)
            assert grid_checksums(target.target) == settled
            assert client.replays.cancel(started.id).state == "cancelled"
        shown = shoal(server.target, "replay", "status", started.id)
        assert shown.returncode == 1 and "cancelled" in shown.stdout
    finally:
        target.stop()


def test_a_replay_into_a_grid_without_the_pipelines_maps_fails_naming_the_map(
    tmp_path, kafka_bootstrap, production
):
    server, topic, group, _, _ = production
    target = ServerProcess(tmp_path / "empty").start()
    try:
        with Client(server.target) as client:
            started = client.replays.start(
                pipeline=group, topic=topic, from_offsets={0: 0}, into=target.target
            )
            status = wait_ended(client, started.id, timeout_s=120)
        assert status.state == "failed"
        assert "customers" in status.error or "orders" in status.error, status.error
        assert "retrying" not in status.error
    finally:
        target.stop()
