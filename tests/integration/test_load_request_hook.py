"""Failing gRPC calls reach Locust's request event with their exception.

One test drives the metering with a recording stand-in for the event (no gevent in
pytest); the other runs real Locust on tests/support/locust_failing_user.py and reads
its failure table.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.locust.metering import MeteredClient, RequestMeter
from shoal import Client, NotFoundError
from tests.support.server_process import REPO_ROOT

pytestmark = pytest.mark.integration


class RecordingEvent:
    def __init__(self) -> None:
        self.fired: list[dict[str, Any]] = []

    def fire(self, **kwargs: Any) -> None:
        self.fired.append(kwargs)


class TaskEnded(Exception):
    """Stands in for Locust's RescheduleTask."""


def test_a_failed_call_fires_the_request_event_with_its_exception(
    shoal_server: str, map_name: str
) -> None:
    event = RecordingEvent()
    meter = RequestMeter(event, context=lambda: {"user": "test"}, abort=TaskEnded)
    with Client(shoal_server) as sdk:
        client = MeteredClient(sdk, meter)
        with pytest.raises(TaskEnded) as ended:
            client.get("no_such_map_for_the_hook_test", "k")
        assert isinstance(ended.value.__cause__, NotFoundError)

        sdk.create_map(map_name)
        client.named("custom name").put(map_name, "k", {"payload": "x" * 50})
        assert client.get(map_name, "k") == {"payload": "x" * 50}

    failed, put, got = event.fired
    assert failed["request_type"] == "grpc"
    assert failed["name"] == "get"
    assert isinstance(failed["exception"], NotFoundError)
    assert "no_such_map_for_the_hook_test" in str(failed["exception"])
    assert failed["response_time"] > 0
    assert failed["context"] == {"user": "test"}

    assert put["name"] == "custom name"
    assert put["exception"] is None
    assert got["name"] == "get"
    assert got["exception"] is None
    assert got["response_length"] == len('{"payload":"' + "x" * 50 + '"}')


def test_locust_records_the_failure_in_its_statistics(shoal_server: str, tmp_path: Path) -> None:
    prefix = tmp_path / "hook"
    failures_exit_code = 7
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO_ROOT / "tests" / "support" / "locust_failing_user.py"),
            "--headless",
            "--host",
            f"grpc://{shoal_server}",
            "--users",
            "2",
            "--spawn-rate",
            "2",
            # An upper bound: the run stops once both calls were made (SHOAL_LOAD_STOP_AFTER).
            "--run-time",
            "60s",
            "--csv",
            str(prefix),
            "--only-summary",
            "--exit-code-on-error",
            str(failures_exit_code),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "SHOAL_LOAD_STOP_AFTER": "get=3,cluster_info=1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    # Locust exits with --exit-code-on-error when its statistics hold a failure.
    assert result.returncode == failures_exit_code, output[-5000:]

    with Path(f"{prefix}_stats.csv").open(newline="") as stats_file:
        stats = {row["Name"]: row for row in csv.DictReader(stats_file)}
    assert stats["get"]["Type"] == "grpc"
    assert int(stats["get"]["Request Count"]) > 0
    assert stats["get"]["Failure Count"] == stats["get"]["Request Count"]
    assert int(stats["cluster_info"]["Request Count"]) > 0
    assert stats["cluster_info"]["Failure Count"] == "0"

    with Path(f"{prefix}_failures.csv").open(newline="") as failures_file:
        failures = list(csv.DictReader(failures_file))
    assert len(failures) == 1, failures
    assert failures[0]["Method"] == "grpc"
    assert failures[0]["Name"] == "get"
    assert "NotFoundError" in failures[0]["Error"]
    assert "no_such_map_for_the_hook_test" in failures[0]["Error"]
    assert int(failures[0]["Occurrences"]) == int(stats["get"]["Failure Count"])

    # The failed call ended its task quietly: it is a failed request, not a crash.
    with Path(f"{prefix}_exceptions.csv").open(newline="") as exceptions_file:
        assert list(csv.DictReader(exceptions_file)) == []
