"""Every benchmark suite runs to the end on tiny data (`make bench --tiny`), so a change
that breaks the benchmark code fails `make test` instead of the next `make bench`.

Each suite runs as `make bench` runs it (`python -m loadtests.bench`, its own private
redis-server), and the saved report must hold rows of that suite, no failed suite, and
its missed goals listed in the JSON exactly as the rows say. The figures themselves are
meaningless at this size and are not judged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.bench.__main__ import SUITES
from tests.support.server_process import REPO_ROOT

pytestmark = pytest.mark.integration


def run_suite(
    names: str, output: Path, environment: dict[str, str], timeout_s: float = 280
) -> dict[str, object]:
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.bench",
            "--tiny",
            "--only",
            names,
            "--output",
            str(output),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    # Missed goals come last, after the table.
    assert finished.stdout.rstrip().splitlines()[-1].startswith(("all goals met", "  MISSED"))
    document: dict[str, object] = json.loads(output.read_text())
    return document


# Suites that need Kafka run in the kafka-marked test below; latency runs with pipelines,
# whose exactly-once rate it reuses as the pipeline's maximum.
KAFKA_SUITES = ("pipelines,latency", "replay")
# Suites on a JVM store run in the test below, on the test session's member.
JVM_SUITES = ("shared_hazelcast", "shared_ignite")
OTHER_SUITES = [
    name
    for name in SUITES
    if name not in ",".join(KAFKA_SUITES).split(",") and name not in JVM_SUITES
]


# Each suite in a run of its own, within a time limit of its own: all of them in one run
# took more than the limit on a 2-core machine shared with seven other test sessions.
@pytest.mark.parametrize("suite", OTHER_SUITES)
def test_suite_runs_on_tiny_data(suite: str, tmp_path: Path) -> None:
    document = run_suite(suite, tmp_path / "bench.json", {})
    check_document([suite], document)


@pytest.mark.kafka
# Two suites and a dozen coordinators: minutes when the machine is shared.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("suite", KAFKA_SUITES)
def test_kafka_suites_run_on_tiny_data(suite: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    document = run_suite(
        suite, tmp_path / "bench.json", {"SHOAL_TEST_KAFKA": kafka_bootstrap}, timeout_s=560
    )
    check_document(suite.split(","), document)
    if "latency" in suite:
        # The open-loop table and its plot are written beside the JSON.
        table = (tmp_path / "latency.md").read_text()
        for operation in ("get", "put", "transfer (client-side)", "transfer (procedure)"):
            assert f"| {operation} |" in table
        assert "| pipeline end to end |" in table
        assert (tmp_path / "latency.png").read_bytes().startswith(b"\x89PNG")


# The member is the session's (its fixture starts it once, or finds one running) and is named
# to the run through the environment: a JVM member takes 5-30 s to start on a busy 2-core
# machine, more than the suite itself at this size.
@pytest.mark.parametrize(
    ("suite", "fixture", "variable"),
    [
        pytest.param(
            "shared_hazelcast",
            "hazelcast_address",
            "SHOAL_TEST_HAZELCAST",
            marks=pytest.mark.hazelcast,
        ),
        pytest.param(
            "shared_ignite", "ignite_address", "SHOAL_TEST_IGNITE", marks=pytest.mark.ignite
        ),
    ],
)
def test_jvm_store_suites_run_on_tiny_data(
    suite: str, fixture: str, variable: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    address = request.getfixturevalue(fixture)
    document = run_suite(suite, tmp_path / "bench.json", {variable: address})
    check_document([suite], document)
    # Each of the four operations has its row, next to the store's own client.
    rows = document["rows"]
    assert isinstance(rows, list) and len(rows) == 4


def check_document(names: list[str], document: dict[str, object]) -> None:
    assert document["scale"] == "tiny"
    assert document["failed_suites"] == {}
    rows = document["rows"]
    assert isinstance(rows, list)
    # Every suite added figures, and no figure claims another suite.
    assert {row["suite"] for row in rows} == set(names)
    for row in rows:
        assert row["ours"] == row["ours"] and row["ours"] >= 0, row  # a number, not NaN
    missed = [(row["suite"], row["name"]) for row in rows if row["met"] is False]
    listed = document["missed_goals"]
    assert isinstance(listed, list)
    assert [(item["suite"], item["name"]) for item in listed] == missed
