"""The catalog kept in Redis for several coordinators (grid/redis/catalog_store.py): a change is
a compare-and-set, so two racing changes cannot both win, and every watching coordinator learns
of a change, from its announcement or, when that is lost, from polling the version."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from grid.redis.backend import connect
from grid.redis.catalog_store import RedisCatalogStore
from grid.redis.layout import catalog_key

pytestmark = [pytest.mark.integration, pytest.mark.redis]


Stores = tuple[RedisCatalogStore, RedisCatalogStore]


@pytest.fixture(params=["redis_url", "redis_cluster_url"], ids=["redis", "redis-cluster"])
def redis_under_test(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(request.param)
    return url


@pytest.fixture
def namespace(redis_under_test: str) -> Iterator[tuple[Any, str]]:
    """A client of the Redis under test and a namespace of the test's own (dropped after)."""
    name = f"catalog-{uuid.uuid4().hex[:12]}"
    client = connect(redis_under_test)
    try:
        yield client, name
    finally:
        for key in list(client.scan_iter(match=f"{{{name}:*")):
            client.delete(key)
        client.close()


@pytest.fixture
def stores(redis_under_test: str, namespace: tuple[Any, str]) -> Iterator[Stores]:
    """Two coordinators' catalog stores on one namespace, each with its own connection."""
    _, name = namespace
    first_client, second_client = connect(redis_under_test), connect(redis_under_test)
    try:
        yield RedisCatalogStore(first_client, name), RedisCatalogStore(second_client, name)
    finally:
        first_client.close()
        second_client.close()


def wait_for(condition: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_two_changes_from_the_same_version_cannot_both_win(
    stores: Stores,
) -> None:
    first, second = stores
    assert first.load_versioned() == (0, [])
    assert first.save_if(0, [{"name": "accounts"}]) == 1
    assert second.save_if(0, [{"name": "orders"}]) is None, "it read version 0, now stale"
    version, maps = second.load_versioned()
    assert (version, maps) == (1, [{"name": "accounts"}])
    assert second.save_if(version, [*maps, {"name": "orders"}]) == 2
    assert first.load() == [{"name": "accounts"}, {"name": "orders"}]


def test_of_many_racing_changes_exactly_one_wins(
    stores: Stores,
) -> None:
    start = threading.Barrier(8)
    results: list[int | None] = []
    lock = threading.Lock()

    def change(index: int) -> None:
        store = stores[index % 2]
        start.wait()
        outcome = store.save_if(0, [{"name": f"map{index}"}])
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=change, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda outcome: outcome or 0) == [None] * 7 + [1]
    assert stores[0].load_versioned()[0] == 1


def test_watchers_learn_of_changes_announced_or_not(
    stores: Stores, namespace: tuple[Any, str]
) -> None:
    first, second = stores
    seen: list[int] = []
    watcher = second.watch(seen.append)
    try:
        assert first.save_if(0, [{"name": "accounts"}]) == 1
        wait_for(lambda: seen == [1])
        # A change whose announcement is lost (bumped here without PUBLISH): the watcher's
        # poll of the version still finds it.
        client, name = namespace
        client.incr(f"{catalog_key(name)}:version")
        wait_for(lambda: seen == [1, 2])
    finally:
        watcher.close()
