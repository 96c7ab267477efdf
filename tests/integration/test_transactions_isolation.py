"""Serializable transactions against a real server: the bank, write skew, lost updates,
read-your-writes, conditional-write races, and a commit whose reply is lost."""

from __future__ import annotations

import threading
import time

import pytest

from shoal import Client, ConflictError, FailedPreconditionError, Transaction
from shoal.v1 import transactions_pb2
from tests.support.bank import balances, ledger_is_atomic, run_bank, setup_bank
from tests.support.cutting_proxy import CuttingProxy

pytestmark = pytest.mark.integration


def test_bank_total_is_conserved_under_concurrent_transfers(
    shoal_server: str, map_name: str
) -> None:
    client = Client(shoal_server)
    accounts, ledger = f"{map_name}_acct", f"{map_name}_ledger"
    total = setup_bank(client, accounts, ledger, accounts=100)
    stop = threading.Event()
    run, threads = run_bank(shoal_server, accounts, ledger, accounts=100, clients=8, stop=stop)
    time.sleep(8)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not run.errors, run.errors
    assert run.transfers > 50, "the workload must actually run"
    assert run.sums, "the reader must have summed at least once"
    assert set(run.sums) == {total}, f"a reader saw a total other than {total}"
    final = balances(client, accounts, 100)
    assert sum(final.values()) == total
    assert min(final.values()) >= 0
    assert ledger_is_atomic(client, ledger) == []
    client.close()


def test_write_skew_is_prevented(shoal_server: str, map_name: str) -> None:
    """Two doctors on call; each may leave only if the other stays. Never both leave."""
    client = Client(shoal_server)
    client.create_map(map_name)
    for round_number in range(10):
        doctors = [f"alice-{round_number}", f"bob-{round_number}"]
        client.put_many(map_name, {doctor: {"on_call": True} for doctor in doctors})
        barrier = threading.Barrier(2)
        results: list[str] = []

        def leave(
            me: str,
            doctors: list[str] = doctors,
            barrier: threading.Barrier = barrier,
            results: list[str] = results,
        ) -> None:
            own = Client(shoal_server)
            tx = own.transaction()
            on_call = sum(1 for doctor in doctors if tx.get(map_name, doctor)["on_call"])
            barrier.wait()
            if on_call >= 2:
                tx.put(map_name, me, {"on_call": False})
            try:
                tx.commit()
                results.append("committed")
            except ConflictError:
                results.append("aborted")
            own.close()

        threads = [threading.Thread(target=leave, args=(doctor,)) for doctor in doctors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        still = [doctor for doctor in doctors if client.get(map_name, doctor)["on_call"]]
        assert still, f"round {round_number}: both doctors left ({results})"
        assert "aborted" in results, "one of the two must have been refused"
    client.close()


def test_lost_update_is_prevented(shoal_server: str, map_name: str) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    client.put(map_name, "counter", {"n": 0})

    def add_one(tx: Transaction) -> None:
        current = tx.get(map_name, "counter")
        tx.put(map_name, "counter", {"n": current["n"] + 1})

    def worker() -> None:
        own = Client(shoal_server)
        for _ in range(25):
            own.transact(add_one)
        own.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert client.get(map_name, "counter") == {"n": 200}
    client.close()


def test_increments_commute_and_never_conflict(shoal_server: str, map_name: str) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    conflicts = []

    def worker() -> None:
        own = Client(shoal_server)
        for _ in range(30):
            try:
                with own.transaction() as tx:
                    tx.increment(map_name, "page:home", "views", 1)
                    tx.increment(map_name, "page:home", "bytes", 1.5)
            except ConflictError as error:
                conflicts.append(error)
        own.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert conflicts == []
    assert client.get(map_name, "page:home") == {"views": 180, "bytes": 270.0}
    client.close()


def test_reads_see_the_transactions_own_writes(shoal_server: str, map_name: str) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    client.put(map_name, "a", {"n": 1, "tags": ["x"]})
    with client.transaction() as tx:
        assert tx.get(map_name, "missing") is None
        tx.put(map_name, "missing", {"n": 5})
        assert tx.get(map_name, "missing") == {"n": 5}
        tx.increment(map_name, "a", "n", 10)
        tx.append(map_name, "a", "tags", ["y"])
        assert tx.get(map_name, "a") == {"n": 11, "tags": ["x", "y"]}
        tx.delete(map_name, "missing")
        assert tx.get(map_name, "missing") is None
        assert tx.get_many(map_name, ["a", "missing"]) == {"a": {"n": 11, "tags": ["x", "y"]}}
    assert client.get(map_name, "a") == {"n": 11, "tags": ["x", "y"]}
    assert client.get(map_name, "missing") is None
    client.close()


def test_conditional_write_races_have_one_winner(shoal_server: str, map_name: str) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    winners: list[int] = []
    losers: list[int] = []
    barrier = threading.Barrier(8)

    def claim(worker: int) -> None:
        own = Client(shoal_server)
        barrier.wait()
        try:
            own.put(map_name, "lock", {"owner": worker}, if_absent=True)
            winners.append(worker)
        except FailedPreconditionError:
            losers.append(worker)
        own.close()

    threads = [threading.Thread(target=claim, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(winners) == 1 and len(losers) == 7
    assert client.get(map_name, "lock") == {"owner": winners[0]}

    version = client.get_versioned(map_name, "lock")
    assert version is not None
    swapped: list[int] = []
    barrier = threading.Barrier(8)

    def compare_and_set(worker: int) -> None:
        own = Client(shoal_server)
        barrier.wait()
        try:
            own.put(map_name, "lock", {"owner": worker}, if_version=version.version)
            swapped.append(worker)
        except FailedPreconditionError:
            pass
        own.close()

    threads = [threading.Thread(target=compare_and_set, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(swapped) == 1
    assert client.get(map_name, "lock") == {"owner": swapped[0]}
    client.close()


@pytest.mark.parametrize("partitions", ["one", "several"])
def test_a_commit_whose_reply_is_lost_is_applied_once(
    shoal_server: str, map_name: str, partitions: str
) -> None:
    port = int(shoal_server.rsplit(":", 1)[1])
    proxy = CuttingProxy(port).start()
    direct = Client(shoal_server)
    direct.create_map(map_name, schema={"balance": {"type": "int"}})
    # Keys with one hash tag share a partition; different tags (almost surely) do not.
    source, target = ("{a}:src", "{a}:dst") if partitions == "one" else ("src-1", "dst-7")
    direct.put_many(map_name, {source: {"balance": 100}, target: {"balance": 0}})
    client = Client(proxy.target)
    client.get(map_name, source)  # opens the connection before the cut is armed
    tx = client.transaction()
    tx.put(map_name, source, {"balance": 90})
    tx.put(map_name, target, {"balance": 10})
    proxy.arm()
    result = tx.commit()
    assert proxy.cuts == 1, "the reply of the first attempt must have been cut"
    assert result.replayed, "the retry must have learned the first attempt's outcome"
    assert direct.get_many(map_name, [source, target]) == {
        source: {"balance": 90},
        target: {"balance": 10},
    }
    story = direct._call(
        lambda s: s.transactions.TransactionStory,
        transactions_pb2.TransactionStoryRequest(txn_id=tx.txn_id),
        idempotent=True,
    )
    assert [item.event for item in story.transitions].count("planned") >= 1
    client.close()
    direct.close()
    proxy.stop()
