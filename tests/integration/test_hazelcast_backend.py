"""The Hazelcast backend shared by several coordinators (grid/hazelcast/), on a real member.

The single-backend contract is tests/conformance/test_backend_contract.py; this file checks what
only sharing can break, beyond the two-coordinator checks it shares with Redis
(test_jvm_backends_two_coordinators.py): the commit sequence and the catalog kept in Hazelcast
for every coordinator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import orjson
import pytest
from hazelcast.proxy.map import Map as HazelcastMap

from grid.entry import value_of
from grid.errors import StaleVersion
from grid.hazelcast.backend import (
    HazelcastBackend,
    HazelcastBackendConfig,
    connect,
)
from grid.hazelcast.catalog_store import CATALOG_KEY, HazelcastCatalogStore, catalog_map_name
from grid.hazelcast.sequence import HazelcastCommitSequence
from grid.memory.records import Op
from grid.protocol import (
    Applied,
    ApplyOnePhase,
    Write,
)
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME
from tests.support.shared_store import dropped_namespace

pytestmark = [pytest.mark.integration, pytest.mark.hazelcast]

PARTITIONS = 4
Pair = tuple[HazelcastBackend, HazelcastBackend]


@pytest.fixture
def url(hazelcast_address: str) -> str:
    return f"hazelcast://{hazelcast_address}/{HAZELCAST_CLUSTER_NAME}"


@pytest.fixture
def namespace(url: str) -> Iterator[str]:
    with dropped_namespace(url) as name:
        yield name


@pytest.fixture
def coordinators(url: str, namespace: str) -> Iterator[Pair]:
    config = HazelcastBackendConfig(url, namespace, PARTITIONS)
    with closing(HazelcastBackend(config)) as first, closing(HazelcastBackend(config)) as second:
        yield first, second


@pytest.fixture
def client(url: str) -> Iterator[Any]:
    connection = connect(url)
    try:
        yield connection
    finally:
        connection.shutdown()


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


def test_a_partition_remembers_a_bounded_number_of_answers(coordinators: Pair) -> None:
    """Answers kept for retries are trimmed oldest first (4,096), as the memory participant's."""
    partition = coordinators[0].partitions[3]
    for index in range(4100):
        partition.step(ApplyOnePhase(f"request-{index}".encode(), (), (put("k", index),)))
    newest = partition.step(ApplyOnePhase(b"request-4099", (), (put("k", 4099),)))
    assert isinstance(newest, Applied) and newest.replayed
    oldest = partition.step(ApplyOnePhase(b"request-0", (), (put("k", 0),)))
    assert isinstance(oldest, Applied) and not oldest.replayed


def test_commit_numbers_are_unique_and_reads_stay_below_every_number_held(
    client: Any, namespace: str
) -> None:
    coordinators = [HazelcastCommitSequence(client, namespace) for _ in range(2)]
    taken: list[list[int]] = [[] for _ in range(4)]

    def commit_many(index: int) -> None:
        for _ in range(25):
            with coordinators[index % 2].commit(f"c{index}") as number:
                taken[index].append(number)

    run_threads(4, commit_many)
    assert sorted(number for numbers in taken for number in numbers) == list(range(1, 101))
    assert all(numbers == sorted(numbers) for numbers in taken)
    first, second = coordinators
    assert second.read_version() == 100
    early, late = first.take("first"), second.take("second")
    # The numbers below one held when it was taken, listed by the member (the same number
    # again: its owner holds it).
    assert second.take_with_lower("second")[::2] == (late, [early])
    assert first.take_with_lower("first")[::2] == (early, [])
    second.release(late)
    assert second.read_version() == early - 1, "the earlier commit is not applied yet"
    first.release(early)
    assert first.read_version() == late


def test_a_number_whose_holder_died_is_found_after_its_lease(client: Any, namespace: str) -> None:
    dying = HazelcastCommitSequence(client, namespace, lease_ms=300)
    alive = HazelcastCommitSequence(client, namespace, lease_ms=60_000)
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


def test_two_catalog_changes_from_the_same_version_cannot_both_win(
    client: Any, namespace: str
) -> None:
    first, second = (
        HazelcastCatalogStore(client, namespace),
        HazelcastCatalogStore(client, namespace),
    )
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


def test_catalog_watchers_learn_of_changes_notified_or_not(client: Any, namespace: str) -> None:
    writer, reader = (
        HazelcastCatalogStore(client, namespace),
        HazelcastCatalogStore(client, namespace),
    )
    seen: list[int] = []
    watcher = reader.watch(seen.append)
    try:
        assert writer.save_if(0, [{"name": "accounts"}]) == 1
        wait_for(lambda: seen == [1], timeout_s=5)
        # A change whose notification is lost (the listener removed first): the poll finds it.
        reader.stop_listening(watcher.registration)
        raw = orjson.dumps({"version": 2, "maps": []})
        client.get_map(catalog_map_name(namespace)).blocking().put(CATALOG_KEY, raw)
        wait_for(lambda: seen == [1, 2], timeout_s=5)
    finally:
        watcher.close()


def test_a_one_phase_step_past_its_numbers_deadline_is_refused(coordinators: Pair) -> None:
    """A commit number's lease ends by the member's clock; a step carrying it after that must
    not apply (another coordinator may have released the number)."""
    first, _ = coordinators
    number, deadline = first.sequence.take_with_deadline("t-late")
    assert abs(deadline - (first.time_ms() + first.sequence.lease_ms)) < 5_000
    late = ApplyOnePhase(b"late", (), (put("k", 1),), version=number, deadline_ms=1)
    with pytest.raises(StaleVersion):
        first.partitions[0].step(late)
    assert first.partitions[0].get("m", "k") is None, "nothing written"
    in_time = ApplyOnePhase(b"in-time", (), (put("k", 2),), version=number, deadline_ms=deadline)
    assert isinstance(first.partitions[0].step(in_time), Applied)
    first.sequence.release(number)


def test_a_get_many_sends_one_processor_per_partition(
    coordinators: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 keys on 4 partitions: 4 member calls, all sent before any answer is awaited (it
    was one call per key), at the latest state and at a read version alike."""
    backend = coordinators[0]
    keys = [f"k{index}" for index in range(200)]
    partitions = [index % PARTITIONS for index in range(200)]
    for partition in range(PARTITIONS):
        writes = tuple(put(key, key) for key in keys[partition::PARTITIONS])
        backend.partitions[partition].step(ApplyOnePhase(f"r{partition}".encode(), (), writes))
    version = max(partition.commit_version() for partition in backend.partitions)
    calls: list[str] = []
    execute_on_key = HazelcastMap.execute_on_key

    def counted(proxy: Any, key: Any, entry_processor: Any) -> Any:
        calls.append(str(key))
        return execute_on_key(proxy, key, entry_processor)

    monkeypatch.setattr(HazelcastMap, "execute_on_key", counted)
    for at in (None, version):
        calls.clear()
        found = backend.lookup_many("m", keys, partitions, at)
        assert [orjson.loads(value_of(entry)) for entry in found if entry is not None] == keys
        assert sorted(calls) == [f"p{index}" for index in range(PARTITIONS)]
