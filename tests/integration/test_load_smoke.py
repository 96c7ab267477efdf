"""`make load` for real: headless Locust runs of the mixed profile against a test server.

Locust runs as a subprocess (through loadtests.run_load, what `make load` calls), so its
gevent monkey-patching never enters the pytest process.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtests.locust import catalog, features
from loadtests.locust.bank import BALANCE_START
from shoal import Client
from tests.support.bank import balances
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


def load_command(target: str, reports: Path, *arguments: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "loadtests.run_load",
        "--host",
        f"grpc://{target}",
        "--reports",
        str(reports),
        *arguments,
    ]


def run_load(
    target: str, reports: Path, prefix: str, *arguments: str, stop_after: str = ""
) -> subprocess.CompletedProcess[str]:
    """`make load` against `target`; `stop_after` (SHOAL_LOAD_STOP_AFTER) ends the run on
    a condition, with --run-time as its upper bound."""
    environment = {
        **os.environ,
        **SMALL_DATA_SET,
        "SHOAL_LOAD_PREFIX": prefix,
        "SHOAL_LOAD_STOP_AFTER": stop_after,
    }
    return subprocess.run(
        load_command(target, reports, *arguments),
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def wait_for_requests(reports: Path, process: subprocess.Popen[str], timeout_s: float) -> None:
    """Returns once a running load test has made requests (its per-second history says so)."""
    history = reports / "locust_stats_history.csv"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the load test ended before making requests"
        if history.exists():
            rows = data_rows(history)
            if any(int(row.get("Total Request Count") or 0) > 0 for row in rows):
                return
        time.sleep(0.5)
    raise AssertionError(f"no request within {timeout_s} s")


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
            for feature in (features.SQL, features.SKETCHES, features.PROCEDURES)
            if features.probe(client, feature, prefix) is not None
        }
    tasks = {
        name
        for name in catalog.PROFILES["mixed"].weights
        if catalog.TASKS[name].feature not in missing
    }
    return tasks, missing


def test_mixed_profile_runs_every_task_without_failures(shoal_server: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    tasks, missing = expected_tasks(shoal_server, "smoke")
    # Until every task ran and 200 reads were made, however busy the machine.
    stop_after = ",".join([*(f"{name}=1" for name in sorted(tasks)), "kv.get=200"])
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
        "120s",
        "--fail-ratio",
        "0",
        "--",
        "--only-summary",
        stop_after=stop_after,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]

    rows = stats_rows(reports)
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
        "120s",
        "--workers",
        "2",
        "--",
        "--only-summary",
        stop_after="kv.get=1,kv.put=1,txn.transfer=1",
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


def test_two_load_tests_share_a_server(shoal_server: str, tmp_path: Path) -> None:
    # One load test runs; while it does, a second with another prefix must not disturb
    # it, and a third with the first one's prefix preloads those maps while the first
    # transfers between their accounts (its preload meets locked keys and retries).
    arguments = ("--profile", "transfers,read_heavy", "--users", "3", "--spawn-rate", "3")
    runs = {"first": "shared", "other": "other", "same": "shared"}
    logs = {name: (tmp_path / f"{name}.log").open("w+") for name in runs}
    processes: dict[str, subprocess.Popen[str]] = {}

    def start(name: str, run_time: str) -> None:
        processes[name] = subprocess.Popen(
            load_command(shoal_server, tmp_path / name, *arguments, "--run-time", run_time),
            cwd=REPO_ROOT,
            env={**os.environ, **SMALL_DATA_SET, "SHOAL_LOAD_PREFIX": runs[name]},
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            text=True,
        )

    try:
        start("first", "30s")
        wait_for_requests(tmp_path / "first", processes["first"], timeout_s=90)
        start("other", "5s")
        start("same", "5s")
        codes = {name: process.wait(150) for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = {}
    for name, log in logs.items():
        log.seek(0)
        outputs[name] = log.read()
        log.close()
    for name, code in codes.items():
        assert code == 0, (name, outputs[name][-5000:])
        assert "0 failed" in outputs[name], outputs[name][-5000:]
        rows = stats_rows(tmp_path / name)
        assert int(rows["txn.transfer"]["Request Count"]) > 0, name
        assert all(row["Failure Count"] == "0" for row in rows.values()), rows
    # Transfers conserve the total of a bank nobody else touched.
    accounts = int(SMALL_DATA_SET["SHOAL_LOAD_ACCOUNTS"])
    with Client(shoal_server) as client:
        total = sum(balances(client, "other_accounts", accounts).values())
    assert total == accounts * BALANCE_START


def locust_spawned(target: str, tmp_path: Path, profile: str | None) -> str:
    """The classes the README's plain `locust` command runs (headless, until one read)."""
    environment = {**os.environ, **SMALL_DATA_SET, "SHOAL_LOAD_PREFIX": "profiles"}
    environment.pop("SHOAL_LOAD_PROFILE", None)
    if profile is not None:
        environment["SHOAL_LOAD_PROFILE"] = profile
    environment["SHOAL_LOAD_STOP_AFTER"] = "kv.get=1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtests/locustfile.py",
            "--headless",
            "--host",
            f"grpc://{target}",
            "--users",
            "2",
            "--spawn-rate",
            "2",
            "--run-time",
            "120s",
            "--only-summary",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    spawned = [line for line in output.splitlines() if "All users spawned" in line]
    assert spawned, output[-5000:]
    return spawned[0]


def test_plain_locust_runs_the_profile_make_load_runs(shoal_server: str, tmp_path: Path) -> None:
    spawned = locust_spawned(shoal_server, tmp_path, None)
    assert '{"MixedUser": 2}' in spawned, spawned
    spawned = locust_spawned(shoal_server, tmp_path, "transfers,read_heavy")
    assert '"TransferUser": 1' in spawned and '"KvReadHeavyUser": 1' in spawned, spawned
    assert "MixedUser" not in spawned
