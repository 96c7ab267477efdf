"""Transactions through the SDK against a real server: the basics every user relies on."""

from __future__ import annotations

import threading
import time

import pytest

from shoal import (
    Client,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    Transaction,
    TransactionRetry,
)

pytestmark = pytest.mark.integration


def test_transact_returns_the_function_result(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "alice", {"balance": 100})
    client.put(map_name, "bob", {"balance": 5})

    def transfer(transaction: Transaction, source: str, target: str, amount: int) -> int:
        left: int = transaction.get(map_name, source)["balance"] - amount
        transaction.put(map_name, source, {"balance": left})
        right = transaction.get(map_name, target)["balance"] + amount
        transaction.put(map_name, target, {"balance": right})
        return left

    assert client.transact(transfer, "alice", "bob", 30) == 70
    assert client.get_many(map_name, ["alice", "bob"]) == {
        "alice": {"balance": 70},
        "bob": {"balance": 35},
    }


def test_transact_retries_on_conflict(client: Client, shoal_server: str, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", {"n": 1})
    attempts: list[int] = []

    with Client(shoal_server) as other:

        def add_one(transaction: Transaction, key: str) -> int:
            current = transaction.get(map_name, key)["n"]
            attempts.append(current)
            if len(attempts) == 1:
                # Another writer changes the key after it was read: this attempt conflicts.
                other.put(map_name, key, {"n": 100})
            transaction.put(map_name, key, {"n": current + 1})
            return int(current + 1)

        assert client.transact(add_one, "k") == 101
    assert attempts == [1, 100]
    assert client.get(map_name, "k") == {"n": 101}


def test_transact_retry_backs_off_briefly(client: Client, shoal_server: str, map_name: str) -> None:
    """The default retry policy starts at milliseconds: five conflicts back off for about
    60 ms in all (2 + 4 + 8 + 16 + 32 at most), where a policy starting at a second would
    take seconds. The bound leaves a busy shared machine room for its own delays."""
    client.create_map(map_name)
    client.put(map_name, "k", 0)
    conflicts = 5
    attempts = 0

    with Client(shoal_server) as other:

        def contended(transaction: Transaction) -> None:
            nonlocal attempts
            attempts += 1
            value = transaction.get(map_name, "k")
            if attempts <= conflicts:
                other.put(map_name, "k", value + 1000)
            transaction.put(map_name, "k", value + 1)

        started = time.monotonic()
        client.transact(contended)
        elapsed_s = time.monotonic() - started
    assert attempts == conflicts + 1
    assert client.get(map_name, "k") == conflicts * 1000 + 1
    assert elapsed_s < 5, f"{conflicts} retries took {elapsed_s:.2f}s"


def test_transact_gives_up_after_its_attempts(
    shoal_server: str, client: Client, map_name: str
) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", 0)
    retry = TransactionRetry(attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)
    attempts = 0
    with Client(shoal_server, transaction_retry=retry) as impatient:

        def always_conflicts(transaction: Transaction) -> None:
            nonlocal attempts
            attempts += 1
            value = transaction.get(map_name, "k")
            client.put(map_name, "k", value + 1)
            transaction.put(map_name, "k", -1)

        with pytest.raises(ConflictError):
            impatient.transact(always_conflicts)
    assert attempts == 3
    assert client.get(map_name, "k") == 3


def test_transact_does_not_retry_other_errors(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", 1)
    attempts = 0

    def conditional(transaction: Transaction) -> None:
        nonlocal attempts
        attempts += 1
        transaction.put(map_name, "k", 2, if_absent=True)

    with pytest.raises(FailedPreconditionError):
        client.transact(conditional)
    assert attempts == 1
    assert client.get(map_name, "k") == 1


def test_with_block_commits_at_the_end(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    with client.transaction() as transaction:
        transaction.put(map_name, "a", 1)
        transaction.put(map_name, "b", 2)
        # Nothing is visible to others before the block ends.
        assert client.get(map_name, "a") is None
    assert transaction.result is not None
    assert len(transaction.result.versions) == 2
    assert client.get_many(map_name, ["a", "b"]) == {"a": 1, "b": 2}
    # A finished transaction cannot be used again.
    with pytest.raises(InvalidArgumentError):
        transaction.get(map_name, "a")


def test_with_block_rolls_back_on_exception(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "a", "kept")
    with pytest.raises(ZeroDivisionError), client.transaction() as transaction:
        transaction.put(map_name, "a", "replaced")
        transaction.put(map_name, "b", "new")
        transaction.delete(map_name, "a")
        _ = 1 / 0
    assert transaction.result is None
    assert client.get_many(map_name, ["a", "b"]) == {"a": "kept"}


def test_with_block_conflict_raises(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", 1)
    with pytest.raises(ConflictError), client.transaction() as transaction:
        seen = transaction.get(map_name, "k")
        client.put(map_name, "k", 50)
        transaction.put(map_name, "k", seen + 1)
    assert client.get(map_name, "k") == 50


def test_read_your_writes(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "stored", {"count": 10, "tags": ["a"]})
    with client.transaction() as transaction:
        transaction.put(map_name, "new", {"v": 1})
        assert transaction.get(map_name, "new") == {"v": 1}
        assert transaction.get_many(map_name, ["new", "stored", "none"]) == {
            "new": {"v": 1},
            "stored": {"count": 10, "tags": ["a"]},
        }
        transaction.increment(map_name, "stored", "count", 5)
        assert transaction.get(map_name, "stored") == {"count": 15, "tags": ["a"]}
        transaction.increment(map_name, "stored", "count", 2)
        transaction.append(map_name, "stored", "tags", ["b"])
        assert transaction.get(map_name, "stored") == {"count": 17, "tags": ["a", "b"]}
        transaction.delete(map_name, "new")
        assert transaction.get(map_name, "new") is None
    assert client.get(map_name, "stored") == {"count": 17, "tags": ["a", "b"]}
    assert client.get(map_name, "new") is None


def test_increment_from_threads_never_loses_an_update(
    shoal_server: str, client: Client, map_name: str
) -> None:
    client.create_map(map_name, schema={"count": "int"})
    client.put(map_name, "counter", {"count": 0})
    threads_count = 4
    increments = 50
    failures: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def worker() -> None:
        try:
            with Client(shoal_server) as own:
                start.wait()
                for _ in range(increments):
                    own.transact(
                        lambda transaction: transaction.increment(map_name, "counter", "count")
                    )
        except BaseException as error:  # Reported by the main thread.
            failures.append(error)

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert client.get(map_name, "counter") == {"count": threads_count * increments}


def test_conditional_write_in_a_transaction(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    version = client.put(map_name, "k", "v1")

    # A stale condition fails the whole transaction: its other write is not applied.
    with pytest.raises(FailedPreconditionError), client.transaction() as transaction:
        transaction.put(map_name, "side", "effect")
        transaction.put(map_name, "k", "v2", if_version=version + 1000)
    assert client.get_many(map_name, ["k", "side"]) == {"k": "v1"}

    with pytest.raises(FailedPreconditionError), client.transaction() as transaction:
        transaction.put(map_name, "side", "effect")
        transaction.put(map_name, "k", "v2", if_absent=True)
    assert client.get(map_name, "side") is None

    with client.transaction() as transaction:
        transaction.put(map_name, "k", "v2", if_version=version)
        transaction.put(map_name, "fresh", "yes", if_absent=True)
        transaction.delete(map_name, "k2-absent-ok")
    assert client.get_many(map_name, ["k", "fresh"]) == {"k": "v2", "fresh": "yes"}
