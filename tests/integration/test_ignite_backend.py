"""The Ignite backend shared by several coordinators (grid/ignite/), on a real node.

The single-backend contract is tests/conformance/test_backend_contract.py; this file checks what
only sharing can break: two backends opened on one namespace (as two coordinators would) see
one grid, a lock taken through one holds against the other, a transaction prepared by one is
finished by the other, status swaps and increments racing between them have one outcome; and
the commit sequence and the catalog kept in Ignite for every coordinator.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import orjson
import pytest

from grid.entry import value_of
from grid.errors import Conflict, StaleVersion
from grid.ignite.backend import IgniteBackend, IgniteBackendConfig, connect, drop_namespace
from grid.memory.records import Op
from grid.protocol import (
    ABORTED,
    COMMITTED,
    PENDING,
    Applied,
    ApplyOnePhase,
    CasStatus,
    Commit,
    CreateStatus,
    PreCommit,
    Prepare,
    StatusReply,
    Vote,
    Write,
)

pytestmark = [pytest.mark.integration, pytest.mark.ignite]

PARTITIONS = 4
Pair = tuple[IgniteBackend, IgniteBackend]


@pytest.fixture
def url(ignite_address: str) -> str:
    return f"ignite://{ignite_address}"


@pytest.fixture
def namespace(url: str) -> Iterator[str]:
    name = f"shared-{uuid.uuid4().hex[:12]}"
    yield name
    client = connect(url)
    try:
        drop_namespace(client, name)
    finally:
        client.close()


@pytest.fixture
def coordinators(url: str, namespace: str) -> Iterator[Pair]:
    config = IgniteBackendConfig(url, namespace, PARTITIONS)
    first, second = IgniteBackend(config), IgniteBackend(config)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def backend(url: str, namespace: str) -> Iterator[IgniteBackend]:
    opened = IgniteBackend(IgniteBackendConfig(url, namespace, PARTITIONS))
    try:
        yield opened
    finally:
        opened.close()


def put(key: str, value: object) -> Write:
    return Write(Op.PUT, "m", key, orjson.dumps(value))


def run_threads(count: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_lock_taken_through_one_coordinator_holds_against_the_other(
    coordinators: Pair,
) -> None:
    first, second = coordinators
    vote = first.partitions[1].step(Prepare(b"t1", (), (put("k", 1),), 10**13, 0))
    assert isinstance(vote, Vote) and vote.yes
    with pytest.raises(Conflict):
        second.partitions[1].step(ApplyOnePhase(b"r1", (), (put("k", 2),)))
    other = second.partitions[1].step(Prepare(b"t2", (), (put("k", 3),), 10**13, 0))
    assert isinstance(other, Vote) and not other.yes
    # The second coordinator finishes what the first prepared, as a recovery sweeper does.
    assert [view.txn_id for view in second.partitions[1].staged_transactions()] == [b"t1"]
    second.partitions[1].step(PreCommit(b"t1"))
    assert isinstance(second.partitions[1].step(Commit(b"t1")), Applied)
    entry = first.partitions[1].get("m", "k")
    assert entry is not None and orjson.loads(value_of(entry)) == 1
    assert first.partitions[1].staged_transactions() == []


def test_status_swaps_racing_between_coordinators_have_one_winner(coordinators: Pair) -> None:
    first, second = coordinators
    created = first.partitions[0].step(CreateStatus(b"t", (0, 1), 10**13, 1))
    assert isinstance(created, StatusReply) and created.swapped
    start = threading.Barrier(8)
    replies: list[StatusReply] = []

    def swap(index: int) -> None:
        outcome = COMMITTED if index % 4 < 2 else ABORTED
        start.wait()
        reply = coordinators[index % 2].partitions[0].step(CasStatus(b"t", PENDING, outcome, 2))
        assert isinstance(reply, StatusReply)
        replies.append(reply)

    run_threads(8, swap)
    winners = [reply for reply in replies if reply.swapped]
    assert len(winners) == 1
    assert all(reply.state == winners[0].state for reply in replies)
    assert [view.state for view in second.partitions[0].status_records()] == [winners[0].state]


def test_increments_racing_from_two_coordinators_all_count(coordinators: Pair) -> None:
    """Resolved in Python and applied only if the key did not change since it was read:
    increments sent at once through both coordinators all land, none twice."""
    first, second = coordinators
    first.partitions[0].step(ApplyOnePhase(b"", (), (put("hits", {"n": 0}),)))
    rounds = 20
    errors: list[BaseException] = []

    def add(index: int) -> None:
        increment = Write(Op.INCREMENT, "m", "hits", orjson.dumps({"n": 1}))
        try:
            for _ in range(rounds):
                while True:
                    try:
                        coordinators[index % 2].partitions[0].step(
                            ApplyOnePhase(b"", (), (increment,))
                        )
                        break
                    except Conflict:
                        continue  # lost every race this time: nothing applied
        except BaseException as error:
            errors.append(error)

    run_threads(4, add)
    assert errors == []
    entry = second.partitions[0].get("m", "hits")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 4 * rounds}


def test_increments_prepared_through_both_coordinators_do_not_conflict(
    coordinators: Pair,
) -> None:
    first, second = coordinators
    first.partitions[1].step(ApplyOnePhase(b"", (), (put("stock", {"n": 10}),)))

    def increment(amount: int) -> Write:
        return Write(Op.INCREMENT, "m", "stock", orjson.dumps({"n": amount}))

    one = first.partitions[1].step(Prepare(b"t1", (), (increment(2),), 10**13, 0))
    other = second.partitions[1].step(Prepare(b"t2", (), (increment(3),), 10**13, 0))
    assert isinstance(one, Vote) and one.yes
    assert isinstance(other, Vote) and other.yes
    with pytest.raises(Conflict):
        first.partitions[1].step(ApplyOnePhase(b"", (), (put("stock", {"n": 0}),)))
    second.partitions[1].step(Commit(b"t2"))
    first.partitions[1].step(Commit(b"t1"))
    entry = first.partitions[1].get("m", "stock")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 15}
    assert first.partitions[1].staged_transactions() == []


def test_commit_numbers_are_unique_and_reads_stay_below_every_number_held(
    coordinators: Pair,
) -> None:
    sequences = [backend.commit_sequence() for backend in coordinators]
    taken: list[list[int]] = [[] for _ in range(4)]

    def commit_many(index: int) -> None:
        for _ in range(10):
            with sequences[index % 2].commit(f"c{index}") as number:
                taken[index].append(number)

    run_threads(4, commit_many)
    assert sorted(number for numbers in taken for number in numbers) == list(range(1, 41))
    assert all(numbers == sorted(numbers) for numbers in taken)
    first, second = sequences
    assert second.read_version() == 40
    early, late = first.take("first"), second.take("second")
    second.release(late)
    assert second.read_version() == early - 1, "the earlier commit is not applied yet"
    first.release(early)
    assert first.read_version() == late


def test_a_number_whose_holder_died_is_found_after_its_lease(coordinators: Pair) -> None:
    dying = coordinators[0].commit_sequence(lease_ms=300)
    alive = coordinators[1].commit_sequence(lease_ms=60_000)
    abandoned = dying.take("gone")
    held = alive.take("alive")
    expired: list[tuple[int, str]] = []

    def found() -> bool:
        expired[:] = alive.expired()
        return bool(expired)

    wait_for(found, timeout_s=30)
    assert expired == [(abandoned, "gone")], "a live holder's number is not reported"
    assert not alive.renew(abandoned + 1000)
    assert alive.renew(held)
    alive.release(abandoned)
    assert alive.read_version() == held - 1


def test_two_catalog_changes_from_the_same_version_cannot_both_win(coordinators: Pair) -> None:
    first, second = (backend.catalog_store for backend in coordinators)
    assert first.load_versioned() == (0, [])
    results: list[int | None] = []
    start = threading.Barrier(6)

    def change(index: int) -> None:
        start.wait()
        results.append((first, second)[index % 2].save_if(0, [{"name": f"map{index}"}]))

    run_threads(6, change)
    assert sorted(results, key=lambda outcome: outcome or 0) == [None] * 5 + [1]
    version, maps = second.load_versioned()
    assert second.save_if(version, [*maps, {"name": "orders"}]) == 2
    assert first.load_versioned() == (2, [*maps, {"name": "orders"}])


def test_catalog_watchers_learn_of_changes_by_polling(coordinators: Pair) -> None:
    writer, reader = (backend.catalog_store for backend in coordinators)
    seen: list[int] = []
    watcher = reader.watch(seen.append)
    try:
        assert writer.save_if(0, [{"name": "accounts"}]) == 1
        wait_for(lambda: seen == [1], timeout_s=5)
        assert writer.save_if(1, []) == 2
        wait_for(lambda: seen == [1, 2], timeout_s=5)
    finally:
        watcher.close()


def test_a_one_phase_step_whose_number_outlived_its_lease_is_refused(coordinators: Pair) -> None:
    """A commit number's lease ends by the cluster's clock (its lease entry expires); a step
    carrying it after that must not apply (another coordinator may have released it)."""
    first, _ = coordinators
    short = first.commit_sequence(lease_ms=300)
    number, deadline = short.take_with_deadline("t-late")
    assert deadline > 0
    wait_for(lambda: bool(short.expired()), timeout_s=30)
    late = ApplyOnePhase(b"late", (), (put("k", 1),), version=number, deadline_ms=deadline)
    with pytest.raises(StaleVersion):
        first.partitions[0].step(late)
    assert first.partitions[0].get("m", "k") is None, "nothing written"
    wait_for(lambda: bool(short.expired(margin_ms=1000)), timeout_s=30)
    short.release(number)
    held, deadline = first.sequence.take_with_deadline("t-in-time")
    in_time = ApplyOnePhase(b"in-time", (), (put("k", 2),), version=held, deadline_ms=deadline)
    assert isinstance(first.partitions[0].step(in_time), Applied)
    first.sequence.release(held)


def test_a_consistent_read_kept_waiting_past_its_timeout_is_unavailable_then_served(
    url: str, namespace: str
) -> None:
    # A freshly started node setting up its caches kept a coordinator's start-up read waiting
    # past the transaction timeout; pyignite's CacheError ended the coordinator. Such a read is
    # tried again like a step, then answered UNAVAILABLE, and served once the lock is gone.
    from pyignite.datatypes.transactions import TransactionConcurrency, TransactionIsolation

    from grid.errors import Unavailable
    from grid.ignite.records import RECORDS_CACHE, partition_prefix

    backend = IgniteBackend(IgniteBackendConfig(url, namespace, PARTITIONS, tx_timeout_ms=300))
    try:
        backend.partitions[0].step(ApplyOnePhase(b"r0", (), (put("k", 1),)))
        holder_locked, release = threading.Event(), threading.Event()

        def hold_the_meta_record() -> None:
            client = connect(url)
            try:
                records = client.get_cache(RECORDS_CACHE)
                with client.tx_start(
                    TransactionConcurrency.PESSIMISTIC,
                    TransactionIsolation.REPEATABLE_READ,
                    timeout=60_000,
                ) as transaction:
                    records.get(partition_prefix(namespace, 0) + "m")
                    holder_locked.set()
                    release.wait(60)
                    transaction.rollback()
            finally:
                client.close()

        holder = threading.Thread(target=hold_the_meta_record)
        holder.start()
        try:
            assert holder_locked.wait(30)
            version = backend.partitions[0].commit_version()
            with pytest.raises(Unavailable, match="refused the read"):
                backend.partitions[0].items_at("m", version)
        finally:
            release.set()
            holder.join()
        assert [key for key, _ in backend.partitions[0].items_at("m", version)] == ["k"]
    finally:
        backend.close()
