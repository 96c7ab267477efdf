"""Sketches survive a restart and a crash: the log holds each add's resulting sketch."""

from __future__ import annotations

import pytest

from shoal import Client
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration


def test_sketches_survive_a_restart_and_a_kill(fresh_server: ServerProcess) -> None:
    fresh_server.extra_args = ["--sketch-accuracy-sample-rate", "1"]
    fresh_server.start()
    with Client(fresh_server.target) as client:
        client.sketches.create("visitors", kind="hll")
        client.sketches.create("pages", kind="topk", lg_max_k=4)
        client.sketches.add("visitors", "day", [f"u{index}" for index in range(5_000)])
        client.sketches.add("pages", "day", ["home", "home", "about"])
        before = client.sketches.export("visitors", "day")
        assert client.sketches.accuracy().tracked_keys == 2
    fresh_server.restart()
    with Client(fresh_server.target) as client:
        assert client.sketches.export("visitors", "day") == before
        client.sketches.add("visitors", "day", ["late"])
        # The monitor did not see what the sketch held before the restart.
        report = client.sketches.accuracy()
        assert report.tracked_keys == 0 and report.untrusted_keys == 1
    fresh_server.kill()
    fresh_server.start()
    with Client(fresh_server.target) as client:
        assert client.sketches.estimate("visitors", "day").value == pytest.approx(5_001, rel=0.05)
        top = client.sketches.top("pages", "day")
        assert [(item.item, item.estimate) for item in top.items] == [("home", 2), ("about", 1)]
        assert [item.name for item in client.sketches.list()] == ["pages", "visitors"]
