"""Sandboxes of a production serving TLS with auth on: production reaches them over a
private Unix socket (a seeded sandbox diffed, a replay passed on), users over TLS."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from shoal import Client, TLSConfig
from tests.support.certificates import Authority
from tests.support.kafka import create_topic, unique, wait_until
from tests.support.pipeline_server import orders_pipeline
from tests.support.pipeline_workload import CUSTOMERS, expected_of, generate
from tests.support.replay import produce_timestamped
from tests.support.secured import BOOTSTRAP_TOKEN
from tests.support.server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

EVENTS = 300


def test_a_tls_production_diffs_and_replays_into_its_sandbox(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    authority = Authority(tmp_path / "ca")
    issued = authority.issue("shoal-server", server=True)
    topic, group = unique("orders"), unique("orders-to-grid")
    create_topic(kafka_bootstrap, topic, 4)
    messages = generate(EVENTS, seed=3).messages
    produce_timestamped(kafka_bootstrap, topic, messages, [int(time.time() * 1000)] * len(messages))
    pipeline = orders_pipeline(tmp_path / "pipelines", topic, group) / "orders.py"
    server = ServerProcess(
        tmp_path / "data",
        extra_args=[
            "--tls-cert",
            str(issued.cert),
            "--tls-key",
            str(issued.key),
            "--auth",
            "on",
            "--kafka",
            kafka_bootstrap,
        ],
        environment={"SHOAL_AUTH_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
    ).start()
    try:
        tls = TLSConfig(ca=str(authority.cert))
        with Client(server.target, timeout_s=60, tls=tls, token=BOOTSTRAP_TOKEN) as client:
            for name in ("orders", "revenue", "customers"):
                client.create_map(name)
            client.put_many(
                "customers", {f"c{number}": {"n": number} for number in range(CUSTOMERS)}
            )
            info = client.sandboxes.create("secure", from_snapshot=True, maps=["customers"])
            # Users reach the sandbox on its TCP port, with production's TLS and tokens.
            with client.sandbox("secure") as sandbox:
                sandbox.create_map("orders")
                sandbox.create_map("revenue")

            started = client.replays.start(
                pipeline=pipeline,
                topic=topic,
                from_offsets=dict.fromkeys(range(4), 0),
                sandbox="secure",
            )
            status = wait_until(
                lambda: (found := client.replays.status(started.id)).ended and found,
                timeout_s=180,
                interval_s=0.3,
                what="the replay done",
            )
            assert status.state == "done", status.error
            expected = expected_of(messages)
            assert status.applied == len(expected.orders)

            report = client.sandboxes.diff("secure", maps=["orders", "customers"])
            orders = report["maps"]["orders"]
            assert orders["only_in_sandbox"] == len(expected.orders) > 0
            assert orders["production_keys"] == 0
            customers = report["maps"]["customers"]
            assert customers["same"] == CUSTOMERS and customers["different"] == 0

            described = client.sandboxes.describe("secure")
            assert described.state == "ready"
            assert started.id.rpartition("/")[2] in described.replays

        # Production's socket into the sandbox: only production's user reaches it.
        directory = Path(info.data_dir).parent
        socket_path = directory / "control.sock"
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        server.kill()
