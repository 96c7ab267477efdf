"""`make load` for real: headless Locust runs of the mixed profile against a test server.

Locust runs as a subprocess (through loadtests.run_load, what `make load` calls), so its
gevent monkey-patching never enters the pytest process.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.locust import catalog, features
from shoal import Client
from tests.support.server_process import REPO_ROOT

pytestmark = pytest.mark.integration

# A small data set keeps the preload (which runs inside the measured time) short.
SMALL_DATA_SET = {
    "SHOAL_LOAD_KEYS": "2000",
    "SHOAL_LOAD_ACCOUNTS": "200",
    "SHOAL_LOAD_ORDERS": "2000",
    "SHOAL_LOAD_SKETCH_KEYS": "10",
    "SHOAL_LOAD_SKETCH_ITEMS": "100",
}


def run_load(
    target: str, reports: Path, prefix: str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **SMALL_DATA_SET, "SHOAL_LOAD_PREFIX": prefix}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.run_load",
            "--host",
            f"grpc://{target}",
            "--reports",
            str(reports),
            *arguments,
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stats_rows(reports: Path) -> dict[str, dict[str, str]]:
    with (reports / "locust_stats.csv").open(newline="") as stats_file:
        return {row["Name"]: row for row in csv.DictReader(stats_file)}


def data_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as report_file:
        return list(csv.DictReader(report_file))


def expected_tasks(target: str, prefix: str) -> tuple[set[str], set[str]]:
    """The mixed profile's tasks this server can serve, and the features it lacks."""
    with Client(target) as client:
        missing = {
            feature
            for feature in (features.SQL, features.SKETCHES)
            if features.probe(client, feature, prefix) is not None
        }
    tasks = {
        name
        for name in catalog.PROFILES["mixed"].weights
        if catalog.TASKS[name].feature not in missing
    }
    return tasks, missing


def test_mixed_profile_runs_15_seconds_without_failures(shoal_server: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = run_load(
        shoal_server,
        reports,
        "smoke",
        "--profile",
        "mixed",
        "--users",
        "10",
        "--spawn-rate",
        "10",
        "--run-time",
        "15s",
        "--fail-ratio",
        "0",
        "--",
        "--only-summary",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]

    rows = stats_rows(reports)
    tasks, missing = expected_tasks(shoal_server, "smoke")
    assert tasks <= set(rows), f"tasks absent from the stats: {sorted(tasks - set(rows))}"
    for name in tasks:
        assert rows[name]["Type"] == "grpc"
        assert int(rows[name]["Request Count"]) > 0, name
    assert all(row["Failure Count"] == "0" for row in rows.values()), rows
    assert int(rows["Aggregated"]["Request Count"]) > 100
    # Every read returns a value, so its size is reported.
    assert float(rows["kv.get"]["Average Content Size"]) > 100
    for feature in missing:
        assert f"skipping the {feature} tasks" in output

    assert data_rows(reports / "locust_failures.csv") == []
    assert data_rows(reports / "locust_exceptions.csv") == []
    html = (reports / "locust.html").read_text()
    assert "kv.get" in html
    assert "txn.transfer" in html
    assert "load: " in result.stdout
    assert "0 failed" in result.stdout


def test_distributed_master_and_two_workers(shoal_server: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = run_load(
        shoal_server,
        reports,
        "distributed",
        "--profile",
        "read_heavy,transfers",
        "--users",
        "6",
        "--spawn-rate",
        "6",
        "--run-time",
        "4s",
        "--workers",
        "2",
        "--",
        "--only-summary",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "2 workers connected" in output
    rows = stats_rows(reports)
    assert {"kv.get", "kv.put", "txn.transfer"} <= set(rows)
    assert int(rows["Aggregated"]["Request Count"]) > 0
    for index in range(2):
        worker_log = (reports / f"locust_worker_{index}.log").read_text()
        assert "Got quit message from master" in worker_log
