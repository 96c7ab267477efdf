"""Kafka pipelines in a real coordinator process against the real local Kafka broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from coordinator.pipelines.deadletter import HEADER_PIPELINE, HEADER_RULE, HEADER_SOURCE, reasons_of
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
    shoal_cli,
    start_pipeline_server,
)
from tests.support.pipeline_workload import generate
from tests.support.server_process import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def check_dead_letters(bootstrap, topic, group, expected) -> None:
    records = read_topic(bootstrap, f"{topic}.dlq")
    keys = Counter(record.key.decode() for record in records)
    assert [key for key, count in keys.items() if count > 1] == []
    assert set(keys) == set(expected.dead)
    for record in records:
        reasons = reasons_of(record.headers)
        assert reasons[HEADER_PIPELINE] == group
        assert reasons[HEADER_RULE] == expected.dead[record.key.decode()]
        assert reasons[HEADER_SOURCE].startswith(f"{topic}/")


def test_events_apply_once_and_rejected_ones_are_dead_lettered(tmp_path, kafka_bootstrap):
    topic, group = unique("orders"), unique("orders-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    workload = generate(3000, seed=1, invalid_fraction=0.05, duplicate_fraction=0.1)
    half = len(workload.messages) // 2
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=500)
    server = start_pipeline_server(tmp_path / "data", pipelines, kafka_bootstrap)
    try:
        produce(kafka_bootstrap, topic, workload.messages[:half])
        produce_with_kcat(kafka_bootstrap, topic, workload.messages[half:])
        with PipelinesApi(server.target) as api:
            wait_until(
                lambda: api.caught_up(group, len(workload.messages)),
                timeout_s=60,
                what="the pipeline to catch up",
            )
            info = api.info(group)
        check_grid(server.target, workload.expected)
        check_dead_letters(kafka_bootstrap, topic, group, workload.expected)
        counters = dict(info.counters)
        assert counters["received"] == len(workload.messages)
        assert counters["applied"] == len(workload.expected.orders)
        assert counters["duplicates"] == workload.expected.duplicates
        assert counters["dead_lettered"] == len(workload.expected.dead)
        assert counters["dead_lettered.json"] == Counter(workload.expected.dead.values())["json"]
        assert info.apply_latency_p99_ms > 0
        listed = shoal_cli(server.target, "pipelines", "list")
        assert [item["name"] for item in listed] == [group]
        assert listed[0]["state"] == "running" and listed[0]["mode"] == "exactly_once"
        assert sorted(listed[0]["assigned"]) == [f"{topic}/{number}" for number in range(4)]
        lag = shoal_cli(server.target, "pipelines", "lag", group)
        assert [item["lag"] for item in lag] == [0, 0, 0, 0]
    finally:
        server.stop()


def test_pause_stops_applying_and_lag_counts_what_waits(tmp_path, kafka_bootstrap):
    topic, group = unique("paused"), unique("paused-to-grid")
    create_topic(kafka_bootstrap, topic, 2)
    first = generate(400, partitions=2, seed=2, invalid_fraction=0, duplicate_fraction=0)
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=100)
    server = start_pipeline_server(tmp_path / "data", pipelines, kafka_bootstrap)
    try:
        with PipelinesApi(server.target) as api:
            produce(kafka_bootstrap, topic, first.messages)
            wait_until(lambda: api.caught_up(group, 400), timeout_s=60, what="catching up")
            paused = shoal_cli(server.target, "pipelines", "pause", group)
            assert paused["state"] == "paused"
            applied = api.info(group).counters["applied"]
            second = generate(
                700, partitions=2, seed=3, invalid_fraction=0, duplicate_fraction=0
            ).messages
            # Other ids than the first batch's, so every one of them is new.
            renamed = [
                type(message)(
                    message.partition,
                    b"x" + message.key,
                    message.value.replace(b'"id": "e', b'"id": "xe').replace(
                        b'"order": "o', b'"order": "xo'
                    ),
                )
                for message in second
            ]
            produce(kafka_bootstrap, topic, renamed)
            lags = wait_until(
                lambda: (items := api.lag(group)) and sum(i.lag for i in items) == 700 and items,
                timeout_s=30,
                what="the lag to count the paused events",
            )
            by_partition = Counter(message.partition for message in renamed)
            assert {item.partition: item.lag for item in lags} == dict(by_partition)
            assert all(item.assigned_here for item in lags)
            time.sleep(1.0)
            assert api.info(group).counters["applied"] == applied
            assert api.total_lag(group) == 700
            resumed = shoal_cli(server.target, "pipelines", "resume", group)
            assert resumed["state"] == "running"
            wait_until(lambda: api.caught_up(group, 1100), timeout_s=60, what="catching up")
            assert api.info(group).counters["applied"] == applied + 700
    finally:
        server.stop()


def test_unknown_pipelines_are_not_found(tmp_path, kafka_bootstrap):
    topic, group = unique("unknown"), unique("unknown-to-grid")
    create_topic(kafka_bootstrap, topic, 1)
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group)
    server = start_pipeline_server(tmp_path / "data", pipelines, kafka_bootstrap)
    try:
        failed = subprocess.run(
            [
                sys.executable,
                "-m",
                "shoal.cli",
                "--target",
                server.target,
                "pipelines",
                "pause",
                "nope",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert failed.returncode == 1
        assert "NOT_FOUND: no pipeline named 'nope'" in failed.stderr
    finally:
        server.stop()


def test_sigterm_mid_stream_finishes_or_abandons_each_batch_whole(tmp_path, kafka_bootstrap):
    topic, group = unique("sigterm"), unique("sigterm-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    workload = generate(20_000, seed=4)
    pipelines = orders_pipeline(tmp_path / "pipelines", topic, group, batch_max=500)
    server = start_pipeline_server(tmp_path / "data", pipelines, kafka_bootstrap)
    producer = threading.Thread(
        target=produce, args=(kafka_bootstrap, topic, workload.messages), daemon=True
    )
    try:
        producer.start()
        with PipelinesApi(server.target) as api:
            wait_until(
                lambda: api.info(group).counters.get("applied", 0) > 2000,
                timeout_s=60,
                what="some events applied",
            )
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.wait_exit(60) == 0
        assert "shoal stopped" in server.log_tail(5)
        producer.join(120)
        server.start()
        with PipelinesApi(server.target) as api:
            wait_until(
                lambda: api.caught_up(group, len(workload.messages)),
                timeout_s=90,
                what="the pipeline to catch up after the restart",
            )
        check_grid(server.target, workload.expected)
        check_dead_letters(kafka_bootstrap, topic, group, workload.expected)
    finally:
        server.stop()
