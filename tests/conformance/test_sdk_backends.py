"""The same SDK tests through a real `shoal serve --backend X` on every backend (ibis style).

One coordinator per backend serves the whole module: `memory`, `redis` (one redis-server),
`redis-cluster` (a 3-master Redis Cluster), `hazelcast` (one member, deploy/local/hazelcast.sh)
and `ignite` (one node, deploy/local/ignite.sh). Every test runs on each, from the SDK down:
keys and values, conditions, read versions, schemas and references, transactions (the bank,
write skew, lost update, increments), sketches, SQL and scans. A backend lists its gaps in GAPS:
a test that needs a missing capability is a strict expected failure with the reason, so a gap
that closes fails the suite until its entry goes.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import (
    Client,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    Transaction,
)
from tests.support.bank import balances, ledger_is_atomic, run_bank, setup_bank
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME
from tests.support.server_process import ServerProcess
from tests.support.shared_store import drop_namespace, fresh_namespace

BACKENDS = [
    "memory",
    "redis",
    "redis-cluster",
    pytest.param("hazelcast", marks=pytest.mark.hazelcast),
    pytest.param("ignite", marks=pytest.mark.ignite),
]
# Backend -> test name -> why the backend cannot pass it yet.
GAPS: dict[str, dict[str, str]] = {
    "memory": {},
    "redis": {},
    "redis-cluster": {},
    "hazelcast": {},
    "ignite": {},
}


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def grid(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The target of one coordinator serving `backend` for the whole module."""
    data_dir: Path = tmp_path_factory.mktemp(f"sdk-{backend}")
    store_url = ""
    namespace = fresh_namespace("sdk")
    arguments = ["--partitions", "8"]
    if backend == "redis":
        store_url = request.getfixturevalue("redis_url")
    elif backend == "redis-cluster":
        store_url = request.getfixturevalue("redis_cluster_url")
    elif backend == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        store_url = f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
    elif backend == "ignite":
        store_url = "ignite://" + request.getfixturevalue("ignite_address")
    if store_url:
        arguments += ["--backend", f"{store_url}/{namespace}"]
    server = ServerProcess(data_dir / "data", arguments).start()
    try:
        yield server.target
    finally:
        server.stop()
        if store_url:
            drop_namespace(store_url, namespace)


@pytest.fixture
def c(grid: str, backend: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    gap = GAPS[backend].get(request.node.originalname)
    if gap is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap))
    client = Client(grid, timeout_s=30)
    yield client
    client.close()


def fresh(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# Keys and values ---------------------------------------------------------------------------


def test_put_get_delete_and_batches(c: Client) -> None:
    name = fresh("kv")
    c.create_map(name)
    first = c.put(name, "a", {"n": 1, "tags": ["x"], "blob": b"\x00\x01"})
    assert c.get(name, "a") == {"n": 1, "tags": ["x"], "blob": b"\x00\x01"}
    second = c.put(name, "a", {"n": 2})
    assert second > first
    versioned = c.get_versioned(name, "a")
    assert versioned is not None and versioned.version == second
    versions = c.put_many(name, {f"k{i}": {"i": i} for i in range(50)})
    assert len(versions) == 50
    found = c.get_many(name, [f"k{i}" for i in range(0, 60, 5)])
    assert found == {f"k{i}": {"i": i} for i in range(0, 50, 5)}
    assert c.delete(name, "a") is True
    assert c.delete(name, "a") is False
    assert c.get(name, "a") is None
    assert c.describe_map(name).entries == 50


def test_conditional_writes(c: Client) -> None:
    name = fresh("cond")
    c.create_map(name)
    version = c.put(name, "k", {"v": 1}, if_absent=True)
    with pytest.raises(FailedPreconditionError):
        c.put(name, "k", {"v": 2}, if_absent=True)
    with pytest.raises(FailedPreconditionError):
        c.put(name, "k", {"v": 2}, if_version=version + 1000)
    newer = c.put(name, "k", {"v": 3}, if_version=version)
    with pytest.raises(FailedPreconditionError):
        c.put(name, "missing", {"v": 1}, if_exists=True)
    with pytest.raises(FailedPreconditionError):
        c.delete(name, "k", if_version=version)
    assert c.delete(name, "k", if_version=newer) is True


def test_reads_at_a_read_version_see_one_state(c: Client) -> None:
    name = fresh("versions")
    c.create_map(name)
    c.put_many(name, {"a": {"v": 1}, "b": {"v": 1}})
    snapshot = c.snapshot()
    c.put(name, "a", {"v": 2})
    c.delete(name, "b")
    c.put(name, "c", {"v": 2})
    assert snapshot.get(name, "a") == {"v": 1}
    assert snapshot.get(name, "b") == {"v": 1}
    assert snapshot.get(name, "c") is None
    keys = ["a", "b", "c", *(f"x{i}" for i in range(30))]
    assert snapshot.get_many(name, keys) == {"a": {"v": 1}, "b": {"v": 1}}
    assert c.get_many(name, keys) == {"a": {"v": 2}, "c": {"v": 2}}
    assert c.get(name, "a") == {"v": 2}
    assert c.get(name, "b") is None


def test_scans_with_a_prefix_and_a_limit(c: Client) -> None:
    name = fresh("scan")
    c.create_map(name)
    c.put_many(name, {f"user:{i:03}": {"i": i} for i in range(120)})
    c.put_many(name, {f"order:{i:03}": {"i": i} for i in range(30)})
    users = dict(c.scan(name, prefix="user:"))
    assert len(users) == 120 and users["user:007"] == {"i": 7}
    assert len(list(c.scan(name, limit=10))) == 10
    with c.transaction() as tx:
        read_version = None
        assert len(list(tx.scan(name, prefix="order:"))) == 30
        read_version = tx.read_version
    assert read_version


# Schemas and references ---------------------------------------------------------------------


def test_schemas_validate_and_evolve(c: Client) -> None:
    name = fresh("people")
    c.create_map(name, schema={"name": {"type": "string", "required": True}, "age": "int"})
    c.put(name, "p1", {"name": "Ann", "age": 40})
    with pytest.raises(InvalidArgumentError, match="age"):
        c.put(name, "p2", {"name": "Bob", "age": "old"})
    with pytest.raises(InvalidArgumentError, match="name"):
        c.put(name, "p3", {"age": 3})
    info = c.alter_schema(
        name, {"name": {"type": "string", "required": True}, "age": "int", "email": "string"}
    )
    assert info.schema_version == 2
    c.put(name, "p4", {"name": "Cy", "email": "cy@example.com"})
    with pytest.raises(FailedPreconditionError):
        c.alter_schema(name, {"name": {"type": "string", "required": True}, "age": "string"})


def test_references_are_kept_true(c: Client) -> None:
    customers, orders = fresh("customers"), fresh("orders")
    c.create_map(customers, schema={"name": "string"})
    c.create_map(orders, schema={"customer": {"type": "string", "ref": customers}, "n": "int"})
    c.put(customers, "c1", {"name": "Ann"})
    c.put(orders, "o1", {"customer": "c1", "n": 1})
    with pytest.raises(FailedPreconditionError):
        c.put(orders, "o2", {"customer": "nobody", "n": 1})
    with pytest.raises(FailedPreconditionError):
        c.delete(customers, "c1")
    c.delete(orders, "o1")
    assert c.delete(customers, "c1") is True
    with pytest.raises(FailedPreconditionError):
        c.drop_map(customers)


# Transactions --------------------------------------------------------------------------------


def test_a_transfer_commits_on_several_partitions_at_once(c: Client) -> None:
    name = fresh("accounts")
    c.create_map(name, schema={"balance": {"type": "int", "min": 0}})
    keys = [f"acct{i}" for i in range(8)]
    c.put_many(name, {key: {"balance": 100} for key in keys})

    def move(tx: Transaction) -> None:
        for source, target in itertools.pairwise(keys):
            a, b = tx.get(name, source), tx.get(name, target)
            tx.put(name, source, {"balance": a["balance"] - 10})
            tx.put(name, target, {"balance": b["balance"] + 10})

    c.transact(move)
    found = c.get_many(name, keys)
    assert sum(value["balance"] for value in found.values()) == 800
    assert found["acct0"] == {"balance": 90} and found["acct7"] == {"balance": 110}


def test_write_skew_is_refused(c: Client) -> None:
    name = fresh("oncall")
    c.create_map(name)
    c.put_many(name, {"alice": {"on": True}, "bob": {"on": True}})
    first, second = c.transaction(), c.transaction()
    for tx in (first, second):
        assert tx.get(name, "alice") == {"on": True}
        assert tx.get(name, "bob") == {"on": True}
    first.put(name, "alice", {"on": False})
    second.put(name, "bob", {"on": False})
    first.commit()
    with pytest.raises(ConflictError):
        second.commit()
    assert c.get(name, "bob") == {"on": True}


def test_lost_update_is_refused_and_increments_never_conflict(c: Client) -> None:
    name = fresh("counters")
    c.create_map(name)
    c.put(name, "n", {"count": 0})
    first, second = c.transaction(), c.transaction()
    for tx in (first, second):
        count = tx.get(name, "n")["count"]
        tx.put(name, "n", {"count": count + 1})
    first.commit()
    with pytest.raises(ConflictError):
        second.commit()
    incrementers = [c.transaction() for _ in range(3)]
    for tx in incrementers:
        tx.increment(name, "n", "count", 5)
    for tx in incrementers:
        tx.commit()
    assert c.get(name, "n") == {"count": 16}


def test_the_bank_conserves_its_total_under_concurrent_transfers(
    c: Client, grid: str, backend: str
) -> None:
    accounts, ledger = fresh("bank"), fresh("ledger")
    total = setup_bank(c, accounts, ledger, accounts=12)
    stop = threading.Event()
    run, threads = run_bank(grid, accounts, ledger, accounts=12, clients=3, stop=stop)
    deadline = threading.Event()
    # Up to a minute: a JVM store on a busy machine takes seconds where Redis takes a fraction.
    for _ in range(1200):
        if run.transfers >= 30 and len(run.sums) >= 3:
            break
        deadline.wait(0.05)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert run.errors == []
    assert run.transfers >= 30, f"too few transfers on {backend}"
    assert set(run.sums) == {total}
    assert sum(balances(c, accounts, 12).values()) == total
    assert ledger_is_atomic(c, ledger) == []


# Sketches ------------------------------------------------------------------------------------


def test_sketches_add_estimate_and_merge_across_partitions(c: Client) -> None:
    name = fresh("visitors")
    c.sketches.create(name, kind="hll", lg_k=12)
    days = [f"day{i}" for i in range(6)]
    for index, day in enumerate(days):
        c.sketches.add(name, day, [f"u{j}" for j in range(index * 10, index * 10 + 20)])
    assert round(c.sketches.estimate(name, "day0").value) == 20
    with c.transaction() as tx:
        tx.sketch_add(name, "day0", ["extra1", "extra2"])
    assert round(c.sketches.estimate(name, "day0").value) == 22
    assert round(c.sketches.merge_estimate(name, days).value) == 72
    counts = fresh("counts")
    c.sketches.create(counts, kind="cms", width=256, depth=4)
    c.sketches.add(counts, "k", ["a"] * 7 + ["b"] * 2)
    assert c.sketches.frequency(counts, "k", "a").value >= 7


# SQL -----------------------------------------------------------------------------------------


def test_sql_reads_every_partition_at_one_snapshot(c: Client) -> None:
    orders, customers = fresh("orders"), fresh("customers")
    c.create_map(customers, schema={"region": "string"})
    c.create_map(orders, schema={"customer": "string", "amount": "float", "status": "string"})
    c.put_many(customers, {f"c{i}": {"region": "eu" if i % 2 else "us"} for i in range(10)})
    rng = random.Random(3)
    rows = {
        f"o{i}": {"customer": f"c{i % 10}", "amount": float(rng.randint(1, 100)), "status": "new"}
        for i in range(200)
    }
    c.put_many(orders, rows)
    got = c.sql(f"SELECT count(*), sum(amount) FROM {orders} WHERE amount >= ?", [50]).fetchall()
    expected = [value["amount"] for value in rows.values() if value["amount"] >= 50]
    assert got == [(len(expected), sum(expected))]
    joined = c.sql(
        f"SELECT k.region, count(*) FROM {orders} o JOIN {customers} k ON o.customer = k.__key "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert joined == [("eu", 100), ("us", 100)]
    c.put(orders, "o0", {**rows["o0"], "status": "paid"})
    assert c.sql(f"SELECT count(*) FROM {orders} WHERE status = 'paid'").fetchall() == [(1,)]
    c.sql(f"UPDATE {orders} SET status = 'paid' WHERE customer = 'c1'").fetchall()
    assert c.sql(f"SELECT count(*) FROM {orders} WHERE status = 'paid'").fetchall() == [(21,)]


def test_the_coordinator_serves_the_backend_asked_for(c: Client, backend: str) -> None:
    scheme = {
        "memory": "memory",
        "redis": "redis://",
        "redis-cluster": "redis+cluster://",
        "hazelcast": "hazelcast://",
        "ignite": "ignite://",
    }
    assert c.cluster_info().backend.startswith(scheme[backend])
