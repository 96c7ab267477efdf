"""`make load` with the procedures profile: the bank transfer as a procedure under Locust,
against a server that deploys loadtests/procedures; the bank's total is conserved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.locust.bank import BALANCE_START
from shoal import Client
from tests.integration.test_load_smoke import SMALL_DATA_SET, run_load, stats_rows
from tests.support.bank import balances
from tests.support.server_process import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path / "data", ["--procedures", str(REPO_ROOT / "loadtests" / "procedures")]
    ).start()
    try:
        yield process
    finally:
        process.stop()


def test_procedures_profile_transfers_through_the_procedure(
    server: ServerProcess, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    result = run_load(
        server.target,
        reports,
        "procs",
        "--profile",
        "procedures",
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--run-time",
        "120s",
        "--fail-ratio",
        "0",
        "--",
        "--only-summary",
        stop_after="txn.transfer_procedure=50,txn.audit=1",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    rows = stats_rows(reports)
    assert int(rows["txn.transfer_procedure"]["Request Count"]) >= 50
    assert rows["txn.transfer_procedure"]["Type"] == "grpc"
    assert all(row["Failure Count"] == "0" for row in rows.values()), rows
    accounts = int(SMALL_DATA_SET["SHOAL_LOAD_ACCOUNTS"])
    with Client(server.target) as client:
        by_name = {item["name"]: item for item in client.procedures()}
        assert by_name["bank_transfer"]["counters"]["committed"] >= 50
        total = sum(balances(client, "procs_accounts", accounts).values())
    assert total == accounts * BALANCE_START
