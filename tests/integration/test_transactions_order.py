"""One commit order on every partition: concurrent appends to keys on different
partitions end in the same order, alone and mixed with increments and sketch adds."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from grid.partitioner import Partitioner
from shoal import Client

pytestmark = pytest.mark.integration

THREADS = 4
TRANSACTIONS_PER_THREAD = 150


def keys_on_two_partitions(client: Client) -> tuple[str, str]:
    partitioner = Partitioner(client.cluster_info().partitions)
    second = 1
    while partitioner.partition_of(f"k{second}") == partitioner.partition_of("k0"):
        second += 1
    return "k0", f"k{second}"


def run_threads(server: str, body: Any) -> list[BaseException]:
    errors: list[BaseException] = []

    def worker(thread_index: int) -> None:
        own = Client(server)
        try:
            for number in range(TRANSACTIONS_PER_THREAD):
                own.transact(body, f"{thread_index}-{number}")
        except BaseException as error:  # reported by the test, not lost in a thread
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return errors


def test_appends_to_two_partitions_end_in_one_order(shoal_server: str, map_name: str) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    first, second = keys_on_two_partitions(client)

    def append_both(tx: Any, item: str) -> None:
        tx.append(map_name, first, "ids", [item])
        tx.append(map_name, second, "ids", [item])

    errors = run_threads(shoal_server, append_both)
    assert not errors, errors
    one = client.get(map_name, first)["ids"]
    other = client.get(map_name, second)["ids"]
    assert len(one) == THREADS * TRANSACTIONS_PER_THREAD
    inversions = sum(1 for a, b in zip(one, other, strict=True) if a != b)
    assert one == other, f"{inversions} positions differ between the two partitions"
    client.close()


def test_mixed_commutative_updates_keep_one_order(shoal_server: str, map_name: str) -> None:
    client = Client(shoal_server)
    client.create_map(map_name)
    sketches = f"{map_name}_sketch"
    client.sketches.create(sketches, kind="hll")
    first, second = keys_on_two_partitions(client)

    def mixed(tx: Any, item: str) -> None:
        tx.append(map_name, first, "ids", [item])
        tx.increment(map_name, first, "n", 1)
        tx.sketch_add(sketches, first, item)
        tx.increment(map_name, second, "n", 1)
        tx.append(map_name, second, "ids", [item])
        tx.sketch_add(sketches, second, item)

    errors = run_threads(shoal_server, mixed)
    assert not errors, errors
    total = THREADS * TRANSACTIONS_PER_THREAD
    one, other = client.get(map_name, first), client.get(map_name, second)
    assert one["ids"] == other["ids"]
    assert one["n"] == other["n"] == len(one["ids"]) == total
    for key in (first, second):
        assert client.sketches.estimate(sketches, key).value == pytest.approx(total, rel=0.05)
    client.close()
