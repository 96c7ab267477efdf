"""Snapshot reads at a read version: readers of many single keys never abort next to
writers, a read version older than the window is refused and retried, stale reads on
purpose (`at=`, `snapshot()`)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest

from grid.partitioner import Partitioner
from shoal import AsyncClient, Client, ConflictError, InvalidArgumentError
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

ACCOUNTS = 40
BALANCE = 1_000


def transfer(tx: Any, accounts: str, source: str, target: str, amount: int) -> None:
    source_balance = tx.get(accounts, source)["balance"]
    target_balance = tx.get(accounts, target)["balance"]
    tx.put(accounts, source, {"balance": source_balance - amount})
    tx.put(accounts, target, {"balance": target_balance + amount})


def run_reader_next_to_writers(
    server: str, accounts: str, keys: list[str], *, writers: int, seconds: float
) -> None:
    client = Client(server)
    client.create_map(accounts)
    client.put_many(accounts, {key: {"balance": BALANCE} for key in keys})
    stop = threading.Event()
    errors: list[BaseException] = []
    transfers = [0] * writers

    def write(index: int) -> None:
        rng = random.Random(index)
        own = Client(server)
        try:
            while not stop.is_set():
                source, target = rng.sample(keys, 2)
                try:
                    own.transact(transfer, accounts, source, target, rng.randint(1, 20))
                except ConflictError:
                    continue  # out of retries under contention: the reader is under test
                transfers[index] += 1
        except BaseException as error:
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    attempts = 0
    totals: list[int] = []

    def read_all(tx: Any) -> int:
        nonlocal attempts
        attempts += 1
        # The natural way: one get per key, 40 round trips.
        return sum(tx.get(accounts, key)["balance"] for key in keys)

    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            totals.append(client.transact(read_all))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        client.close()
    assert not errors, errors
    assert min(transfers) > 0, f"every writer must have committed: {transfers}"
    assert totals, "the reader must have finished at least once"
    assert attempts == len(totals), (
        f"{attempts - len(totals)} read-only attempts of {attempts} were retried"
    )
    assert set(totals) == {BALANCE * len(keys)}, "a reader saw a total other than the conserved one"


def test_a_reader_of_40_single_gets_commits_first_time_next_to_4_writers(
    shoal_server: str, map_name: str
) -> None:
    keys = [f"a{index}" for index in range(ACCOUNTS)]
    run_reader_next_to_writers(shoal_server, map_name, keys, writers=4, seconds=10)


def test_the_same_reader_next_to_8_writers_on_two_partitions(
    shoal_server: str, map_name: str
) -> None:
    partitioner = Partitioner(Client(shoal_server).cluster_info().partitions)
    tags = ["t0"]
    index = 1
    while partitioner.partition_of(f"{{t{index}}}") == partitioner.partition_of("{t0}"):
        index += 1
    tags.append(f"t{index}")
    keys = [f"{{{tags[number % 2]}}}a{number}" for number in range(ACCOUNTS)]
    assert len({partitioner.partition_of(key) for key in keys}) == 2
    run_reader_next_to_writers(shoal_server, map_name, keys, writers=8, seconds=6)


def test_a_read_version_older_than_the_window_is_refused_and_transact_retries(
    fresh_server: ServerProcess, map_name: str
) -> None:
    # Long enough that a retry reads two keys well inside it, even on a busy machine.
    fresh_server.extra_args = ["--mvcc-window-ms", "1500"]
    fresh_server.start()
    client = Client(fresh_server.target)
    client.create_map(map_name)
    client.put_many(map_name, {"a": {"n": 0}, "b": {"n": 0}})
    tx = client.transaction()
    assert tx.get(map_name, "a") == {"n": 0}
    version = tx.read_version
    assert version > 0
    client.put(map_name, "b", {"n": 1})
    # Wait (polling, no fixed sleep) until the server refuses the read version.
    deadline = time.monotonic() + 30
    while True:
        try:
            client.get(map_name, "b", at=version)
        except ConflictError as error:
            assert "read version too old" in str(error)
            break
        assert time.monotonic() < deadline, "the window never expired"
        time.sleep(0.05)
    with pytest.raises(ConflictError, match="read version too old"):
        tx.get(map_name, "b")

    calls = 0

    def slow_reader(tx: Any) -> int:
        nonlocal calls
        calls += 1
        first = tx.get(map_name, "a")["n"]
        if calls == 1:
            client.put(map_name, "b", {"n": 2})
            while True:
                try:
                    client.get(map_name, "b", at=tx.read_version)
                except ConflictError:
                    break
                time.sleep(0.05)
        result: int = first + tx.get(map_name, "b")["n"]
        return result

    assert client.transact(slow_reader) == 2
    assert calls == 2, "the first attempt's read version expired; the retry took a new one"
    client.close()


def test_stale_reads_on_purpose_see_one_version_across_calls(
    shoal_server: str, map_name: str
) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    client.put_many(map_name, {f"k{index}": {"n": 1} for index in range(20)})
    snapshot = client.snapshot()
    version = snapshot.version
    with client.transaction() as tx:
        for index in range(20):
            tx.put(map_name, f"k{index}", {"n": 2})
    client.delete(map_name, "k0")
    client.put(map_name, "new", {"n": 2})
    assert snapshot.get(map_name, "k0") == {"n": 1}
    assert snapshot.get(map_name, "new") is None
    assert snapshot.get_many(map_name, ["k1", "k2", "new"]) == {"k1": {"n": 1}, "k2": {"n": 1}}
    scanned = dict(snapshot.scan(map_name))
    assert scanned == {f"k{index}": {"n": 1} for index in range(20)}
    assert client.get(map_name, "k1", at=version) == {"n": 1}
    assert client.get(map_name, "k1") == {"n": 2}
    assert client.get(map_name, "k0") is None
    client.close()


def test_a_read_write_transaction_whose_read_changed_fails_at_its_first_write(
    shoal_server: str, map_name: str
) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    client.put_many(map_name, {"a": {"n": 1}, "b": {"n": 1}, "c": {"n": 1}})
    tx = client.transaction()
    assert tx.get(map_name, "a") == {"n": 1}
    client.put(map_name, "b", {"n": 2})
    # Read at the transaction's read version: the old value, and the news that it changed.
    assert tx.get(map_name, "b") == {"n": 1}
    with pytest.raises(ConflictError, match="changed after this transaction's read version"):
        tx.put(map_name, "c", {"n": 3})
    # A batch read says the same.
    other = client.transaction()
    assert other.get(map_name, "b") == {"n": 2}
    other.put(map_name, "c", {"n": 4})
    client.put(map_name, "a", {"n": 5})
    with pytest.raises(ConflictError, match="changed after this transaction's read version"):
        other.get_many(map_name, ["a", "b"])
    # Read-only, the same reads are fine: the snapshot is consistent.
    reader = client.transaction()
    assert reader.get(map_name, "c") == {"n": 1}
    client.put(map_name, "c", {"n": 6})
    assert reader.get(map_name, "c") == {"n": 1}
    reader.commit()
    client.close()


def test_a_read_only_transaction_scans_at_its_read_version(
    shoal_server: str, map_name: str
) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    client.put_many(map_name, {f"k{index}": {"n": 1} for index in range(10)})
    tx = client.transaction()
    assert tx.get(map_name, "k0") == {"n": 1}
    with client.transaction() as writer:
        for index in range(10):
            writer.put(map_name, f"k{index}", {"n": 2})
        writer.put(map_name, "new", {"n": 2})
    assert dict(tx.scan(map_name)) == {f"k{index}": {"n": 1} for index in range(10)}
    with pytest.raises(InvalidArgumentError, match="scanned cannot write"):
        tx.put(map_name, "k0", {"n": 3})
    tx.commit()
    # A scan as the first read takes the read version; writing first refuses the scan.
    fresh = client.transaction()
    assert dict(fresh.scan(map_name, prefix="new")) == {"new": {"n": 2}}
    assert fresh.read_version > 0
    writing = client.transaction()
    writing.put(map_name, "x", {"n": 1})
    with pytest.raises(InvalidArgumentError, match="writes cannot scan"):
        writing.scan(map_name)
    client.close()


def test_an_async_transaction_scans_and_reads_at_one_version(
    shoal_server: str, map_name: str
) -> None:
    async def run() -> None:
        client = AsyncClient(shoal_server)
        await client.create_map(map_name)
        await client.put(map_name, "a", {"n": 1})
        tx = client.transaction()
        assert await tx.get(map_name, "a") == {"n": 1}
        await client.put(map_name, "a", {"n": 2})
        await client.put(map_name, "b", {"n": 2})
        assert [item async for item in tx.scan(map_name)] == [("a", {"n": 1})]
        assert await client.get(map_name, "a", at=tx.read_version) == {"n": 1}
        await tx.commit()
        await client.close()

    asyncio.run(run())
