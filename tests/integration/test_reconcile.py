"""Reconciliation of a pipeline against Kafka and re-delivery, on a real coordinator whose
pipeline loses a range of records (a test-only fault, as a consumer bug would)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from shoal import Client, InvalidArgumentError, NotFoundError
from tests.support.kafka import create_topic, unique, wait_until
from tests.support.pipeline_server import (
    PipelinesApi,
    check_grid,
    orders_pipeline,
    start_pipeline_server,
)
from tests.support.pipeline_workload import expected_of, generate
from tests.support.replay import grid_checksums, produce_timestamped
from tests.support.server_process import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

EVENTS = 3000
STEP_MS = 10
LOST = (100, 250)


def shoal(target: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli", "--target", target, *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_lost_range_is_found_and_redelivered_exactly_once(tmp_path, kafka_bootstrap):
    topic, group = unique("orders"), unique("orders-to-grid")
    create_topic(kafka_bootstrap, topic, 2)
    # Repeats of lost events were applied by the live pipeline: re-delivery must see its
    # window and skip the originals, so the end state is still exact.
    workload = generate(
        EVENTS, partitions=2, seed=5, invalid_fraction=0.02, duplicate_fraction=0.05
    )
    messages = workload.messages
    offsets: list[int] = []
    seen = {0: 0, 1: 0}
    for message in messages:
        offsets.append(seen[message.partition])
        seen[message.partition] += 1
    lost = [
        index
        for index, message in enumerate(messages)
        if message.partition == 0 and LOST[0] <= offsets[index] < LOST[1]
    ]
    kept = [message for index, message in enumerate(messages) if index not in set(lost)]
    base_ms = int(time.time() * 1000) - 3_600_000
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=200)
    server = start_pipeline_server(
        tmp_path / "data",
        pipelines,
        kafka_bootstrap,
        environment={
            "SHOAL_TESTING": "1",
            "SHOAL_PIPELINE_SKIP": f"{group}/{topic}/0:{LOST[0]}-{LOST[1]}",
        },
    )
    try:
        produce_timestamped(
            kafka_bootstrap,
            topic,
            messages,
            [base_ms + index * STEP_MS for index in range(len(messages))],
        )
        with PipelinesApi(server.target) as api:
            wait_until(lambda: api.caught_up(group, len(messages)), timeout_s=180)
        check_grid(server.target, expected_of(kept))
        window = (base_ms, base_ms + len(messages) * STEP_MS)
        with Client(server.target) as client:
            report = client.reconcile(group, *window)
            by_partition = {item.partition: item for item in report.partitions}
            assert by_partition[0].missing == (LOST,)
            assert by_partition[1].missing == () and by_partition[1].applied_twice == ()
            assert report.discrepancies == LOST[1] - LOST[0]
            expected_kept = expected_of(kept)
            assert sum(item.applied for item in report.partitions) == len(expected_kept.orders)
            assert sum(item.rejected for item in report.partitions) == len(expected_kept.dead)
            for item in report.partitions:
                assert item.kafka_events == seen[item.partition]
                assert item.pending == 0 and item.unverifiable == 0
            # A clean window (the first events, before the lost range) reports nothing.
            clean = client.reconcile(group, base_ms, base_ms + 100 * STEP_MS)
            assert clean.discrepancies == 0
            assert sum(item.kafka_events for item in clean.partitions) == 100
            with pytest.raises(InvalidArgumentError) as raised:
                client.reconcile(group, window[1], window[0])
            assert raised.value.field == "to"
            with pytest.raises(NotFoundError):
                client.reconcile("no-such-pipeline", *window)
        listed = shoal(
            server.target,
            "reconcile",
            "--pipeline",
            group,
            "--from",
            str(window[0]),
            "--to",
            str(window[1]),
        )
        assert listed.returncode == 1, listed.stderr
        assert f"{LOST[0]}-{LOST[1] - 1}" in listed.stdout and "150 discrepancies" in listed.stdout
        fixed = shoal(
            server.target,
            "--json",
            "reconcile",
            "--pipeline",
            group,
            "--from",
            str(window[0]),
            "--to",
            str(window[1]),
            "--redeliver",
        )
        assert fixed.returncode == 0, fixed.stderr
        after = json.loads(fixed.stdout)
        assert after["discrepancies"] == 0
        assert sum(item["redelivered"] for item in after["partitions"]) == LOST[1] - LOST[0]
        check_grid(server.target, workload.expected)
        before = grid_checksums(server.target)
        again = shoal(
            server.target,
            "--json",
            "reconcile",
            "--pipeline",
            group,
            "--from",
            str(window[0]),
            "--to",
            str(window[1]),
            "--redeliver",
        )
        assert again.returncode == 0, again.stderr
        assert sum(item["redelivered"] for item in json.loads(again.stdout)["partitions"]) == 0
        assert grid_checksums(server.target) == before
    finally:
        server.stop()
