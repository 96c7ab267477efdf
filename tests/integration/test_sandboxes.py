"""Sandboxes on real processes: lifecycle, seeding at one read version, isolation both ways,
no orphans after delete, TTL or kill -9 of production, limits, bad input, diff."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    SandboxInfo,
    UnauthenticatedError,
)
from tests.support.bank import BALANCE_START, account_key, run_bank, setup_bank
from tests.support.sandboxes import (
    checksum,
    port_free,
    process_gone,
    processes_serving,
    wait_for,
)
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

START_S = 120.0


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A coordinator whose sandboxes the module's tests create (and delete)."""
    server = ServerProcess(
        tmp_path_factory.mktemp("sandboxes") / "data", extra_args=["--partitions", "8"]
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(production: ServerProcess) -> Iterator[Client]:
    with Client(production.target, timeout_s=60) as opened:
        yield opened


def assert_left_nothing(pid: int, port: int, directory: Path) -> None:
    wait_for(lambda: process_gone(pid), START_S, f"sandbox process {pid} to end")
    wait_for(lambda: port_free(port), START_S, f"port {port} to be free")
    assert not directory.exists(), f"{directory} was left behind"


def test_create_describe_list_delete_and_isolation(
    production: ServerProcess, client: Client, map_name: str
) -> None:
    client.create_map(map_name, schema={"owner": "string", "balance": "int"})
    client.put_many(map_name, {f"k{i}": {"owner": "o", "balance": i} for i in range(300)})

    info = client.sandboxes.create("iso-1", from_snapshot=True, ttl_s=3600)

    assert isinstance(info, SandboxInfo)
    assert info.state == "ready"
    assert info.from_snapshot and map_name in info.maps
    # Production's pipeline progress and bookkeeping (system maps) are never seeded.
    assert not [name for name in info.maps if name.startswith("__")]
    assert info.seeded_entries >= 300
    assert info.snapshot_version > 0 and info.snapshot_at_ms > 0
    assert info.ttl_ms == 3_600_000 and info.expires_at_ms == info.created_at_ms + 3_600_000
    assert info.pid > 0 and info.memory_bytes > 0 and info.disk_bytes > 0
    assert [item.name for item in client.sandboxes.list()] == ["iso-1"]
    port = int(info.address.rsplit(":", 1)[1])
    directory = Path(info.data_dir).parent
    assert directory.is_dir()

    with client.sandbox("iso-1") as sandbox:
        # Seeded: the same values.
        assert sandbox.get(map_name, "k7") == {"owner": "o", "balance": 7}
        assert sandbox.describe_map(map_name).schema == client.describe_map(map_name).schema
        before = checksum(client)
        # The sandbox's writes never reach production.
        sandbox.put(map_name, "k7", {"owner": "sandbox", "balance": -1})
        sandbox.delete(map_name, "k8")
        sandbox.put(map_name, "only-sandbox", {"owner": "s", "balance": 1})
        sandbox.create_map("sandbox_only_map")
        assert checksum(client) == before
        assert "sandbox_only_map" not in [item.name for item in client.list_maps()]
        # Production's writes after the snapshot never reach the sandbox.
        client.put(map_name, "k9", {"owner": "production", "balance": 99})
        client.put(map_name, "only-production", {"owner": "p", "balance": 1})
        assert sandbox.get(map_name, "k9") == {"owner": "o", "balance": 9}
        assert sandbox.get(map_name, "only-production") is None
        assert sandbox.get(map_name, "k7") == {"owner": "sandbox", "balance": -1}
        # A sandbox runs no sandboxes of its own.
        with pytest.raises(ResourceExhaustedError):
            sandbox.sandboxes.create("nested")

    assert client.sandboxes.delete("iso-1") is True
    assert_left_nothing(info.pid, port, directory)
    with pytest.raises(NotFoundError) as missing:
        client.sandboxes.describe("iso-1")
    assert missing.value.field == "sandbox"
    assert client.sandboxes.list() == []


def test_seed_holds_no_torn_transaction(
    production: ServerProcess, client: Client, map_name: str
) -> None:
    accounts_map, ledger_map = f"{map_name}_accounts", f"{map_name}_ledger"
    total = setup_bank(client, accounts_map, ledger_map, accounts=60)
    stop = threading.Event()
    run, threads = run_bank(
        production.target,
        accounts_map,
        ledger_map,
        accounts=60,
        clients=4,
        stop=stop,
        reader=False,
    )
    try:
        wait_for(lambda: run.transfers >= 20, START_S, "transfers before seeding")
        info = client.sandboxes.create("bank-1", from_snapshot=True, maps=[accounts_map])
        transfers_during = run.transfers
        wait_for(lambda: run.transfers >= transfers_during + 20, START_S, "transfers after")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    try:
        assert run.errors == []
        assert info.maps == [accounts_map]
        with client.sandbox("bank-1") as sandbox:
            seeded = dict(sandbox.scan(accounts_map))
            assert len(seeded) == 60
            assert sum(value["balance"] for value in seeded.values()) == total
            # Some transfers were seeded: the seed is not the starting state.
            assert any(value["balance"] != BALANCE_START for value in seeded.values())
            assert sandbox.get(accounts_map, account_key(0)) is not None
            assert ledger_map not in [item.name for item in sandbox.list_maps()]
    finally:
        client.sandboxes.delete("bank-1")


def test_bad_input_is_refused_clearly_and_production_is_untouched(
    client: Client, map_name: str
) -> None:
    client.create_map(map_name)
    client.put(map_name, "a", {"n": 1})
    before = checksum(client)

    with pytest.raises(NotFoundError, match="no sandbox named 'nope'") as unknown:
        client.sandboxes.describe("nope")
    assert unknown.value.field == "sandbox"
    with pytest.raises(NotFoundError, match="nope"):
        client.sandboxes.delete("nope")
    with pytest.raises(NotFoundError, match="nope"):
        client.sandboxes.diff("nope")
    with pytest.raises(NotFoundError, match="nope"):
        client.sandbox("nope")
    with pytest.raises(InvalidArgumentError) as bad_name:
        client.sandboxes.create("no spaces allowed")
    assert bad_name.value.field == "name"
    with pytest.raises(NotFoundError, match="no map 'absent_map'") as bad_map:
        client.sandboxes.create("bad-map", from_snapshot=True, maps=["absent_map"])
    assert bad_map.value.field == "maps"
    with pytest.raises(InvalidArgumentError) as maps_without_snapshot:
        client.sandboxes.create("bad-maps", maps=[map_name])
    assert maps_without_snapshot.value.field == "maps"
    with pytest.raises(InvalidArgumentError) as long_ttl:
        client.sandboxes.create("bad-ttl", ttl_s=365 * 86400)
    assert long_ttl.value.field == "ttl_ms"
    with pytest.raises(NotFoundError):
        client.sandboxes.operation("create_sandbox-000000000000")

    assert client.sandboxes.list() == []
    assert checksum(client) == before


def test_diff_reports_exactly_the_changed_keys(client: Client, map_name: str) -> None:
    rng = random.Random(5)
    client.create_map(map_name, schema={"region": "string", "amount": "int"})
    rows = {f"o{i:04d}": {"region": rng.choice(["eu", "us"]), "amount": i} for i in range(2000)}
    for start in range(0, 2000, 1000):
        keys = sorted(rows)[start : start + 1000]
        client.put_many(map_name, {key: rows[key] for key in keys})
    client.sandboxes.create("diff-1", from_snapshot=True, maps=[map_name])
    try:
        with client.sandbox("diff-1") as sandbox:
            deleted = sorted(rng.sample(sorted(rows), 7))
            changed = sorted(rng.sample(sorted(set(rows) - set(deleted)), 11))
            for key in deleted:
                sandbox.delete(map_name, key)
            for key in changed:
                sandbox.put(map_name, key, {"region": rows[key]["region"], "amount": -5})
            sandbox.put(map_name, "extra", {"region": "eu", "amount": 1000})
        # Production moves on after the snapshot too.
        client.put(map_name, "o0000", {"region": "apac", "amount": 0})
        changed_in_production = "o0000" not in changed and "o0000" not in deleted

        report = client.sandboxes.diff("diff-1", maps=[map_name], sample=3)
    finally:
        client.sandboxes.delete("diff-1")

    found = report["maps"][map_name]
    different = sorted(set(changed) | ({"o0000"} if changed_in_production else set()))
    assert found["only_in_production"] == len(deleted)
    assert found["only_in_sandbox"] == 1
    assert found["different"] == len(different)
    assert [item["key"] for item in found["samples"]["only_in_production"]] == deleted[:3]
    assert [item["key"] for item in found["samples"]["only_in_sandbox"]] == ["extra"]
    assert [item["key"] for item in found["samples"]["different"]] == different[:3]
    amount = found["numeric"]["amount"]
    production_total = sum(row["amount"] for row in rows.values())
    sandbox_total = (
        production_total
        - sum(rows[key]["amount"] for key in deleted)
        - sum(rows[key]["amount"] + 5 for key in changed)
        + 1000
    )
    assert amount["production_total"] == production_total
    assert amount["sandbox_total"] == sandbox_total
    # The largest difference: the key added with 1000, or the biggest changed amount.
    expected_largest = max(
        [("extra", 1000)]
        + [(key, -rows[key]["amount"]) for key in deleted]
        + [(key, -rows[key]["amount"] - 5) for key in changed],
        key=lambda item: abs(item[1]),
    )
    top = amount["largest_differences"][0]
    assert (top["key"], top["difference"]) == expected_largest


def test_a_sandbox_process_that_dies_is_started_again(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "seeded", {"n": 1})
    info = client.sandboxes.create("crash-1", from_snapshot=True, maps=[map_name])
    try:
        with client.sandbox("crash-1") as sandbox:
            sandbox.put(map_name, "written", {"n": 2})
        os.kill(info.pid, signal.SIGKILL)
        again = wait_for(
            lambda: (
                (item := client.sandboxes.describe("crash-1")).state == "ready"
                and item.pid != info.pid
                and item
            ),
            START_S,
            "the supervisor to start the sandbox again",
        )
        assert again.restarts == 1
        assert process_gone(info.pid)
        with client.sandbox("crash-1") as sandbox:
            assert sandbox.get(map_name, "seeded") == {"n": 1}
            assert sandbox.get(map_name, "written") == {"n": 2}
    finally:
        client.sandboxes.delete("crash-1")


def test_ttl_expiry_leaves_no_process_port_or_directory(client: Client) -> None:
    info = client.sandboxes.create("ttl-1", ttl_s=3)
    port = int(info.address.rsplit(":", 1)[1])
    directory = Path(info.data_dir).parent
    wait_for(lambda: client.sandboxes.list() == [], START_S, "the sandbox to expire")
    assert_left_nothing(info.pid, port, directory)


def test_kill_9_of_production_leaves_no_orphan_and_restart_finds_the_sandbox(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--partitions", "4"]).start()
    try:
        with Client(server.target, timeout_s=60) as client:
            client.create_map("kept")
            client.put("kept", "seeded", {"n": 1})
            info = client.sandboxes.create("survivor", from_snapshot=True)
            with client.sandbox("survivor") as sandbox:
                sandbox.put("kept", "written-in-sandbox", {"n": 2})
        port = int(info.address.rsplit(":", 1)[1])
        sandbox_data = Path(info.data_dir)

        server.kill()
        # The lifeline closed with production: the sandbox shuts down, port freed.
        wait_for(lambda: process_gone(info.pid), START_S, "the orphaned sandbox to end")
        wait_for(lambda: port_free(port), START_S, f"port {port} to be free")
        assert sandbox_data.is_dir()

        server.start()
        with Client(server.target, timeout_s=60) as client:
            found = wait_for(
                lambda: (item := client.sandboxes.describe("survivor")).state == "ready" and item,
                START_S,
                "the sandbox to serve again",
            )
            assert found.restarts == 1
            assert found.pid != info.pid
            assert found.address == info.address  # its old port was free
            assert [item.name for item in client.sandboxes.list()] == ["survivor"]
            assert len(processes_serving(sandbox_data)) == 1
            with client.sandbox("survivor") as sandbox:
                assert sandbox.get("kept", "seeded") == {"n": 1}
                assert sandbox.get("kept", "written-in-sandbox") == {"n": 2}
            client.sandboxes.delete("survivor")
        assert_left_nothing(found.pid, port, sandbox_data.parent)
    finally:
        server.kill()


def test_limits_are_resource_exhausted_with_clear_messages(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        extra_args=[
            "--partitions",
            "4",
            "--sandboxes-max",
            "1",
            "--sandbox-memory-bytes-max",
            str(1024 * 1024),
        ],
    ).start()
    try:
        with Client(server.target, timeout_s=60) as client:
            client.create_map("big")
            for start in range(0, 6000, 2000):
                client.put_many(
                    "big", {f"k{i}": {"pad": "x" * 200} for i in range(start, start + 2000)}
                )
            with pytest.raises(ResourceExhaustedError, match="sandbox_memory_bytes_max") as seed:
                client.sandboxes.create("too-big", from_snapshot=True)
            assert "big" in seed.value.message
            assert client.sandboxes.list() == []

            # An empty sandbox's process alone uses more than 1 MiB: the supervisor stops it.
            info = client.sandboxes.create("small")
            failed = wait_for(
                lambda: (item := client.sandboxes.describe("small")).state == "failed" and item,
                START_S,
                "the sandbox over its memory to be stopped",
            )
            assert "sandbox_memory_bytes_max" in failed.error
            wait_for(lambda: process_gone(info.pid), START_S, "its process to end")
            with pytest.raises(FailedPreconditionError, match="failed"):
                client.sandbox("small")

            with pytest.raises(ResourceExhaustedError, match="sandboxes_max") as count:
                client.sandboxes.create("second")
            assert "small" in count.value.message
            with pytest.raises(AlreadyExistsError):
                client.sandboxes.create("small")
            client.sandboxes.delete("small")
            assert client.sandboxes.list() == []
    finally:
        server.stop()


def test_a_sandbox_of_a_production_with_auth_answers_to_the_same_tokens(tmp_path: Path) -> None:
    token = "sandbox-test-bootstrap-token-0123456789"
    server = ServerProcess(
        tmp_path / "data",
        extra_args=["--partitions", "4", "--auth", "on"],
        environment={"SHOAL_AUTH_BOOTSTRAP_TOKEN": token},
    ).start()
    try:
        with Client(server.target, timeout_s=60, token=token) as client:
            client.create_map("secret")
            client.put("secret", "k", {"n": 1})
            info = client.sandboxes.create("guarded", from_snapshot=True)
            with (
                Client(info.address, timeout_s=10) as anonymous,
                pytest.raises(UnauthenticatedError),
            ):
                anonymous.get("secret", "k")
            with client.sandbox("guarded") as sandbox:
                assert sandbox.get("secret", "k") == {"n": 1}
                sandbox.put("secret", "k", {"n": 2})
            # Production reads the sandbox for the diff with the caller's token.
            report = client.sandboxes.diff("guarded", maps=["secret"])
            assert report["maps"]["secret"]["different"] == 1
            client.sandboxes.delete("guarded")
        with (
            Client(server.target, timeout_s=10) as anonymous,
            pytest.raises(UnauthenticatedError),
        ):
            anonymous.sandboxes.list()
    finally:
        server.stop()
