"""The Ignite backend shared by several coordinators (grid/ignite/), on a real node.

The single-backend contract is tests/conformance/test_backend_contract.py; this file checks what
only sharing can break, beyond the two-coordinator checks it shares with Redis
(test_jvm_backends_two_coordinators.py): the commit sequence and the catalog kept in Ignite
for every coordinator.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any, TypeVar

import orjson
import pytest
from pyignite.connection.connection import Connection

from grid.entry import value_of
from grid.errors import StaleVersion
from grid.ignite.backend import IgniteBackend, IgniteBackendConfig, connect
from grid.memory.records import Op
from grid.protocol import (
    Applied,
    ApplyOnePhase,
    Commit,
    PreCommit,
    Prepare,
    Vote,
    Write,
)
from tests.support.shared_store import dropped_namespace

pytestmark = [pytest.mark.integration, pytest.mark.ignite]

PARTITIONS = 4
Pair = tuple[IgniteBackend, IgniteBackend]
Result = TypeVar("Result")


@pytest.fixture
def url(ignite_address: str) -> str:
    return f"ignite://{ignite_address}"


@pytest.fixture
def namespace(url: str) -> Iterator[str]:
    with dropped_namespace(url) as name:
        yield name


@pytest.fixture
def coordinators(url: str, namespace: str) -> Iterator[Pair]:
    config = IgniteBackendConfig(url, namespace, PARTITIONS)
    with closing(IgniteBackend(config)) as first, closing(IgniteBackend(config)) as second:
        yield first, second


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
    # The numbers below one held when it was taken, read in the take's transaction (the same
    # number again: its owner holds it).
    assert second.take_with_lower("second")[::2] == (late, [early])
    assert first.take_with_lower("first")[::2] == (early, [])
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


class RoundTrips:
    """Counts the requests this process sends to Ignite (pyignite's Connection.request)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        request = Connection.request

        def counted(connection: Connection, data: bytes | bytearray, flags: Any = None) -> Any:
            self.count += 1
            return request(connection, data, flags)

        monkeypatch.setattr(Connection, "request", counted)

    def of(self, call: Callable[[], Result]) -> tuple[Result, int]:
        before = self.count
        result = call()
        return result, self.count - before


def test_a_commit_costs_a_bounded_number_of_round_trips(
    backend: IgniteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put is a number (a transaction of four round trips and its two lease entries), one
    step and the release; the clock behind the number's deadline is not asked each time, nor
    the cluster for the partitions of a cache handle, and a commit step reads its writes'
    records in one round trip (each of these cost one or two more before)."""
    trips = RoundTrips(monkeypatch)
    sequence = backend.sequence
    # Made once: the map's cache, this thread's handles, the clock's offset (for a second).
    backend.partitions[0].step(ApplyOnePhase(b"w", (), (put("w", 0),)))
    sequence.release(sequence.take_with_deadline("warm")[0])
    (number, deadline), taking = trips.of(lambda: sequence.take_with_deadline("put"))
    assert deadline > backend.time_ms() and taking <= 6
    step = ApplyOnePhase(b"r1", (), (put("a", 1),), number, 0, deadline)
    applied, stepping = trips.of(lambda: backend.partitions[0].step(step))
    assert isinstance(applied, Applied) and applied.versions == (number,)
    assert stepping <= 8
    _, releasing = trips.of(lambda: sequence.release(number))
    assert releasing <= 5
    txn = uuid.uuid4().bytes
    writes = (put("a", 2), put("b", 2), put("c", 2))
    prepared = backend.partitions[0].step(Prepare(txn, (), writes, backend.time_ms() + 60_000, 0))
    assert prepared == Vote(True)
    backend.partitions[0].step(PreCommit(txn))
    committed, committing = trips.of(lambda: backend.partitions[0].step(Commit(txn, number + 1)))
    assert isinstance(committed, Applied) and committed.versions == (number + 1,) * 3
    assert committing <= 9, "start, 3 reads, entries, 3 writes, commit"


def test_a_get_many_reads_every_partition_in_one_round_trip(
    backend: IgniteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 keys on 4 partitions: one get_all of the map's entries cache (it was one get per
    key), at the latest state and at a read version no key changed after; at an older version
    the changed keys are read again, a few round trips per partition, not per key."""
    keys = [f"k{index}" for index in range(200)]
    partitions = [index % PARTITIONS for index in range(200)]

    def write_all(value: int) -> int:
        version = 0
        for partition in range(PARTITIONS):
            writes = tuple(put(key, value) for key in keys[partition::PARTITIONS])
            request = f"r{value}-{partition}".encode()
            applied = backend.partitions[partition].step(ApplyOnePhase(request, (), writes))
            assert isinstance(applied, Applied)
            version = max(version, applied.versions[0])
        return version

    def values_at(version: int | None) -> tuple[list[object], int]:
        found, reading = trips.of(lambda: backend.lookup_many("m", keys, partitions, version))
        return [None if e is None else orjson.loads(value_of(e)) for e in found], reading

    first = write_all(1)
    trips = RoundTrips(monkeypatch)
    assert values_at(None) == ([1] * 200, 1)
    assert values_at(first) == ([1] * 200, 1)
    write_all(2)
    found, reading = values_at(first)
    assert found == [1] * 200
    # One get_all, then per partition: start, meta, entries, kept states, commit.
    assert reading <= 1 + 5 * PARTITIONS


def test_a_snapshot_of_every_partition_scans_the_map_once(backend: IgniteBackend) -> None:
    """items_at on every partition at one read version: one scan of the map's cache (it was
    one per partition, each of the whole cache), still exact for a version older than what the
    scan found (kept states), and a new scan for a version newer than the scan's."""

    def write(key: str, value: int, partition: int) -> None:
        with backend.sequence.commit("writer") as number:
            step = ApplyOnePhase(f"{key}-{value}".encode(), (), (put(key, value),), number)
            assert isinstance(backend.partitions[partition].step(step), Applied)

    for index in range(8):
        write(f"k{index}", 1, index % PARTITIONS)
    first = backend.sequence.read_version()
    scans = backend.scans.scans_made

    def snapshot(version: int) -> dict[str, object]:
        return {
            key: orjson.loads(value_of(entry))
            for partition in backend.partitions
            for key, entry in partition.items_at("m", version)
        }

    assert snapshot(first) == {f"k{index}": 1 for index in range(8)}
    assert backend.scans.scans_made == scans + 1
    write("k0", 2, 0)
    write("new", 2, 1)
    assert snapshot(first) == {f"k{index}": 1 for index in range(8)}, "the scan found k0 at 1"
    assert backend.scans.scans_made == scans + 1
    later = backend.sequence.read_version()
    assert snapshot(later) == {**{f"k{index}": 1 for index in range(1, 8)}, "k0": 2, "new": 2}
    assert backend.scans.scans_made == scans + 2
