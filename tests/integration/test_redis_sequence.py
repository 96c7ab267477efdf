"""The commit sequence kept in Redis, shared by several coordinators (grid/redis/sequence.py).

Two sequence objects on one namespace stand for two coordinators. The read version must never
pass a number still held, whoever holds it; a number whose holder died is reported once its
lease passed by Redis's clock, and releasing it lets reads move on.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from grid.redis.sequence import RedisCommitSequence

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def namespace(client: redis.Redis) -> Iterator[str]:
    name = f"seq-{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(client.scan_iter(match=f"{{{name}:*"))
    if keys:
        client.delete(*keys)


def test_numbers_are_unique_and_increasing_across_coordinators(
    client: redis.Redis, namespace: str
) -> None:
    coordinators = [RedisCommitSequence(client, namespace) for _ in range(2)]
    taken: list[list[int]] = [[] for _ in range(4)]

    def commit_many(index: int) -> None:
        sequence = coordinators[index % 2]
        for _ in range(50):
            with sequence.commit(f"c{index}") as number:
                taken[index].append(number)

    threads = [threading.Thread(target=commit_many, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [number for numbers in taken for number in numbers]
    assert sorted(every) == list(range(1, 201))
    assert all(numbers == sorted(numbers) for numbers in taken)
    assert coordinators[1].read_version() == 200


def test_the_read_version_stays_below_every_number_held(
    client: redis.Redis, namespace: str
) -> None:
    first = RedisCommitSequence(client, namespace)
    second = RedisCommitSequence(client, namespace)
    assert first.read_version() == 0
    early = first.take("first")
    late = second.take("second")
    assert late > early
    second.release(late)
    # The later commit is applied, the earlier is not: reading at the later would see half.
    assert second.read_version() == early - 1
    first.release(early)
    assert second.read_version() == late


def test_a_number_whose_holder_died_is_found_after_its_lease(
    client: redis.Redis, namespace: str
) -> None:
    sequence = RedisCommitSequence(client, namespace, lease_ms=300)
    alive = RedisCommitSequence(client, namespace, lease_ms=60_000)
    abandoned = sequence.take("gone")
    held = alive.take("alive")
    assert sequence.read_version() == abandoned - 1
    deadline = time.monotonic() + 30
    expired: list[tuple[int, str]] = []
    while not expired:
        expired = alive.expired()
        assert time.monotonic() < deadline, "the lease never expired by the store's clock"
        time.sleep(0.05)
    assert expired == [(abandoned, "gone")], "a live holder's number is not reported"
    assert not alive.renew(abandoned + 1000)
    assert alive.renew(held)
    # The sweeper decides the transaction, then lets reads move on.
    alive.release(abandoned)
    assert alive.read_version() == held - 1
    alive.release(held)
    assert alive.read_version() == held


def test_a_transaction_holds_one_number_whoever_takes_it(
    client: redis.Redis, namespace: str
) -> None:
    coordinator, sweeper = (RedisCommitSequence(client, namespace) for _ in range(2))
    number = coordinator.take("txn-1")
    assert sweeper.take("txn-1") == number, "a sweeper finishing it commits at its number"
    assert sweeper.take("txn-2") == number + 1
    coordinator.release(number)
    assert coordinator.take("txn-1") == number + 2, "released: a retry takes a new one"


def test_a_number_comes_with_the_lower_numbers_still_held(
    client: redis.Redis, namespace: str
) -> None:
    first, second = (RedisCommitSequence(client, namespace) for _ in range(2))
    low, _, lower = first.take_with_lower("low")
    assert lower == []
    middle, _, _ = second.take_with_lower("middle")
    high, _, lower = first.take_with_lower("high")
    assert lower == [low, middle]
    second.release(middle)
    again, _, lower = second.take_with_lower("high")
    assert (again, lower) == (high, [low]), "a holder's number, with what is below it now"
    first.release(low)
    first.release(high)


def test_a_one_phase_step_past_its_numbers_deadline_refuses_and_writes_nothing(
    redis_url: str, namespace: str
) -> None:
    from grid.catalog import Catalog
    from grid.entry import value_of, version_of
    from grid.errors import StaleVersion
    from grid.memory.records import Op
    from grid.protocol import ApplyOnePhase, Write
    from grid.redis.backend import RedisBackend, RedisBackendConfig
    from tests.support.shared_store import drop_namespace

    backend = RedisBackend(RedisBackendConfig(redis_url, namespace, 2, lease_ms=200))
    try:
        Catalog(backend.catalog_store).create("m", None, now_ms=0)
        number, deadline = backend.sequence.take_with_deadline("writer")
        assert deadline >= backend.time_ms() + 100
        write = (Write(Op.PUT, "m", "k", b'{"v": 1}'),)
        partition = backend.partitions[0]
        partition.step(ApplyOnePhase(b"r1", (), write, number, 0, deadline))
        assert partition.get("m", "k") is not None
        # The lease ends by Redis's clock: the next step holding the number refuses.
        while backend.time_ms() <= deadline:
            time.sleep(0.02)
        later = (Write(Op.PUT, "m", "k", b'{"v": 2}'),)
        with pytest.raises(StaleVersion):
            partition.step(ApplyOnePhase(b"r2", (), later, number + 1, 0, deadline))
        entry = partition.get("m", "k")
        assert entry is not None
        assert (value_of(entry), version_of(entry)) == (b'{"v": 1}', number)
        # Reported as abandoned only a margin after the deadline, once no step may use it.
        assert backend.sequence.expired(margin_ms=60_000) == []
        assert backend.sequence.expired(margin_ms=0) == [(number, "writer")]
    finally:
        backend.close()
        drop_namespace(redis_url, namespace)
