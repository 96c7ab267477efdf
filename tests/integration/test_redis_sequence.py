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
