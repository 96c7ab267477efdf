"""Several coordinators on one Redis serve one grid: what only sharing can break.

Each test starts its coordinators (`shoal serve --backend redis://…/<fresh namespace>`) and
talks to them through the SDK: the catalog seen by all within a second, racing schema changes
of which one wins, SQL sums through a coordinator other than the writers' always exact, and
one client spreading its calls over the coordinators and failing over when one is killed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from grid.catalog import Catalog
from grid.redis.catalog_store import RedisCatalogStore
from grid.schema import parse_schema
from shoal import Client, FailedPreconditionError
from tests.support.bank import run_bank, setup_bank
from tests.support.shared_store import _client, coordinators, drop_namespace, fresh_namespace

ACCOUNTS = 20


def test_a_catalog_change_through_one_coordinator_is_seen_by_the_others_within_a_second(
    tmp_path: Path, redis_url: str
) -> None:
    with coordinators(tmp_path, redis_url, 3) as servers:
        clients = [Client(server.target) for server in servers]
        for round_number in range(3):
            name = f"orders{round_number}"
            writer = clients[round_number]
            writer.create_map(name, schema={"total": "int"})
            created = time.monotonic()
            for reader in clients:
                while name not in {info.name for info in reader.list_maps()}:
                    assert time.monotonic() - created < 1.0, f"{name} not seen within 1 s"
                    time.sleep(0.01)
            writer.alter_schema(name, {"total": "int", "note": "string"})
            altered = time.monotonic()
            for reader in clients:
                while reader.describe_map(name).schema_version != 2:
                    assert time.monotonic() - altered < 1.0, "schema change not seen within 1 s"
                    time.sleep(0.01)
            # A value the new schema refuses is refused by every coordinator.
            for reader in clients:
                with pytest.raises(Exception, match="note"):
                    reader.put(name, "k", {"total": 1, "note": 5})
        for client in clients:
            client.close()


# Each change is compatible with the schema both read, not with the other.
RACING_CHANGES = {"int": {"age": "int", "x": "int"}, "string": {"age": "int", "x": "string"}}


def _race_alters(clients: list[Client], name: str) -> dict[str, object]:
    outcomes: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def alter(client: Client, kind: str) -> None:
        barrier.wait()
        try:
            client.alter_schema(name, RACING_CHANGES[kind])
            outcomes[kind] = "won"
        except FailedPreconditionError as error:
            outcomes[kind] = error

    threads = [
        threading.Thread(target=alter, args=(client, kind))
        for client, kind in zip(clients, RACING_CHANGES, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_coordinators_altering_one_schema_at_once_cannot_both_win(
    tmp_path: Path, redis_url: str
) -> None:
    with coordinators(tmp_path, redis_url, 2) as servers:
        clients = [Client(server.target) for server in servers]
        for attempt in range(5):
            name = f"profiles{attempt}"
            clients[0].create_map(name, schema={"age": "int"})
            clients[0].put(name, "alice", {"age": 30})
            outcomes = _race_alters(clients, name)
            winners = [kind for kind, outcome in outcomes.items() if outcome == "won"]
            assert len(winners) == 1, outcomes
            for client in clients:
                info = client.describe_map(name)
                assert info.schema_version == 2
                assert info.schema is not None
                types = {spec["name"]: spec["type"] for spec in info.schema["fields"]}
                assert types["x"] == winners[0]
        for client in clients:
            client.close()


def test_catalogs_racing_on_one_store_check_the_change_against_the_winner(redis_url: str) -> None:
    """Deterministic: the loser's compare-and-set fails after the winner's save, and its
    change is checked again against the winner's schema (and refused)."""
    namespace = fresh_namespace()
    client = _client(redis_url)
    try:
        winner = Catalog(RedisCatalogStore(client, namespace))
        schema = parse_schema({"age": "int"})
        winner.create("people", schema, now_ms=0)

        class RaceOnce(RedisCatalogStore):
            raced = False

            def save_if(self, expected_version: int | None, maps: list[dict]) -> int | None:  # type: ignore[type-arg]
                if not self.raced:
                    self.raced = True
                    winner.refresh()
                    winner.alter_schema(
                        "people", parse_schema({"age": "int", "x": "int"}), stored_entries=1
                    )
                return super().save_if(expected_version, maps)

        loser = Catalog(RaceOnce(client, namespace))
        with pytest.raises(Exception, match="x"):
            loser.alter_schema(
                "people", parse_schema({"age": "int", "x": "string"}), stored_entries=1
            )
        assert loser.get("people").schema is not None
        assert loser.get("people").schema.by_name["x"].type == "int"
        assert loser.get("people").schema.version == 2
    finally:
        client.close()
        drop_namespace(redis_url, namespace)


@pytest.fixture(params=["redis", "redis-cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    """One redis-server, or a 3-master Redis Cluster."""
    fixture = "redis_cluster_url" if request.param == "redis-cluster" else "redis_url"
    return str(request.getfixturevalue(fixture))


def test_sql_sums_through_another_coordinator_than_the_writers_are_always_exact(
    tmp_path: Path, store_url: str
) -> None:
    with coordinators(tmp_path, store_url, 3) as servers:
        setup = Client(servers[0].target)
        total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
        # No wait: a map acknowledged through one coordinator is there on every other at once.
        stop = threading.Event()
        writers = []
        for server in servers[:2]:
            run, threads = run_bank(
                server.target,
                "accounts",
                "ledger",
                accounts=ACCOUNTS,
                clients=2,
                stop=stop,
                reader=False,
            )
            writers.append((run, threads))
        reader = Client(servers[2].target)
        sums = []
        deadline = time.monotonic() + 60
        try:
            while (
                sum(run.transfers for run, _ in writers) < 60 or len(sums) < 20
            ) and time.monotonic() < deadline:
                rows = reader.sql("SELECT sum(balance) AS total, count(*) AS n FROM accounts")
                sums.append(rows.fetchall()[0])
        finally:
            stop.set()
            for _, threads in writers:
                for thread in threads:
                    thread.join(30)
        assert all(run.errors == [] for run, _ in writers)
        assert sum(run.transfers for run, _ in writers) >= 60, "the writers made no progress"
        assert set(sums) == {(total, ACCOUNTS)}
        setup.close()
        reader.close()


def test_one_client_spreads_over_the_coordinators_and_fails_over(
    tmp_path: Path, redis_url: str
) -> None:
    with coordinators(tmp_path, redis_url, 3) as servers:
        targets = ",".join(server.target for server in servers)
        clients = [Client(targets) for _ in range(12)]
        clients[0].create_map("spread")
        # Clients start at a coordinator drawn at random: twelve do not all start at one.
        used = {client._connection._index for client in clients}
        assert len(used) >= 2
        servers[0].kill()
        servers[1].kill()
        for index, client in enumerate(clients):
            client.put("spread", f"k{index}", {"n": index})
        for index, client in enumerate(clients):
            assert client.get("spread", f"k{(index + 1) % len(clients)}") == {
                "n": (index + 1) % len(clients)
            }
        for client in clients:
            client.close()


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("redis://localhost", "backend from --backend must be memory, redis://"),
        ("redis://127.0.0.1:1/ns", "the Redis store cannot be reached"),
        ("redis+cluster://127.0.0.1:1", "the Redis Cluster cannot be reached"),
    ],
)
def test_serve_refuses_a_bad_backend_with_a_clear_message(
    tmp_path: Path, backend: str, message: str
) -> None:
    import subprocess
    import sys

    from tests.support.server_process import REPO_ROOT

    finished = subprocess.run(
        [sys.executable, "-m", "coordinator.server", "--port", "0", "--backend", backend],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 2
    assert message in finished.stderr
    assert "Traceback" not in finished.stderr
