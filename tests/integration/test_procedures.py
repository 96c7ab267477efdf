"""Procedures through a real server: the SDKs' call, errors as statuses, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import (
    AsyncClient,
    Client,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    ProcedureError,
)
from tests.support.server_process import REPO_ROOT, ServerProcess

MODULES = ",".join(
    [
        str(REPO_ROOT / "loadtests" / "procedures"),
        str(REPO_ROOT / "tests/support/procedure_samples.py"),
    ]
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("procedures") / "data",
        ["--procedures", MODULES, "--procedure-timeout-ms", "1000"],
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.target) as opened:
        opened.create_map("accounts")
        opened.create_map("counters")
        opened.create_map("scratch")
        # acct-a and acct-b hash to different partitions (checked below).
        opened.put_many("accounts", {"acct-a": {"balance": 100}, "acct-b": {"balance": 0}})
        yield opened


def test_a_call_across_two_partitions_commits_in_one_round_trip(client: Client) -> None:
    from grid.partitioner import Partitioner

    partitioner = Partitioner(64)
    assert partitioner.partition_of("acct-a") != partitioner.partition_of("acct-b")
    assert client.call("transfer", "acct-a", "acct-b", 30) == 70
    assert client.get_many("accounts", ["acct-a", "acct-b"]) == {
        "acct-a": {"balance": 70},
        "acct-b": {"balance": 30},
    }
    assert client.call("transfer", "acct-b", "acct-a", amount=30) == 0


def test_the_async_client_awaits_the_same_call(server: ServerProcess, client: Client) -> None:
    async def run() -> int:
        async with AsyncClient(server.target) as async_client:
            result: int = await async_client.call("count", "counters", "async")
            return result

    assert asyncio.run(run()) == 1
    assert client.get("counters", "async") == {"n": 1}


def test_concurrent_calls_on_one_key_are_all_applied(client: Client, server: ServerProcess) -> None:
    errors: list[BaseException] = []

    def calls() -> None:
        with Client(server.target) as own:
            for _ in range(10):
                try:
                    own.call("count", "counters", "shared")
                except BaseException as error:
                    errors.append(error)

    threads = [threading.Thread(target=calls) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert client.get("counters", "shared") == {"n": 60}


def test_an_exception_is_a_procedure_error_and_commits_nothing(client: Client) -> None:
    with pytest.raises(ProcedureError) as raised:
        client.call("refuse", "scratch", "refused")
    assert raised.value.code == "FAILED_PRECONDITION"
    assert raised.value.error_type == "Refused"
    assert raised.value.message == "procedure 'refuse' raised Refused: no writes to refused today"
    assert client.get("scratch", "refused") is None


def test_a_procedure_past_its_time_limit_is_deadline_exceeded(client: Client) -> None:
    with pytest.raises(DeadlineExceededError, match="time limit of 1000 ms"):
        client.call("spin", "scratch", "spun")
    assert client.get("scratch", "spun") is None
    # The server's thread came back: calls still work.
    assert client.call("count", "counters", "after-spin") == 1


def test_unknown_names_and_bad_arguments(client: Client) -> None:
    with pytest.raises(NotFoundError, match="no procedure named 'nope'") as missing:
        client.call("nope")
    assert missing.value.field == "name"
    with pytest.raises(InvalidArgumentError, match="missing a required argument") as bad:
        client.call("transfer", "acct-a")
    assert bad.value.field == "args"
    with pytest.raises(InvalidArgumentError) as not_json:
        client.call("transfer", "acct-a", "acct-b", object())
    assert not_json.value.field == "args"


def shoal(server: ServerProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli", "--target", server.target, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_lists_and_calls_procedures(server: ServerProcess, client: Client) -> None:
    listed = shoal(server, "procedures", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {item["name"]: item for item in json.loads(listed.stdout)}
    assert {"transfer", "bank_transfer", "refuse", "spin", "count"} <= set(by_name)
    assert by_name["transfer"]["parameters"] == "src: str, dst: str, amount: int"
    assert by_name["refuse"]["counters"]["failed"] >= 1
    human = shoal(server, "procedures", "list")
    assert "transfer(src: str, dst: str, amount: int)" in human.stdout
    called = shoal(server, "procedures", "call", "count", '"counters"', '"cli"')
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip() == "1"
    refused = shoal(server, "procedures", "call", "refuse", '"scratch"', '"cli"')
    assert refused.returncode == 1
    assert "FAILED_PRECONDITION: procedure 'refuse' raised Refused" in refused.stderr


def test_a_server_refuses_to_start_with_a_broken_module(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no')\n")
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.server",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--procedures",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    assert process.returncode == 2
    assert "cannot load procedure module" in process.stderr
    assert "RuntimeError: no" in process.stderr
