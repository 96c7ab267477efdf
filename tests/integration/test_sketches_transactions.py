"""Sketch adds as transactional, commutative writes: aborts leave no trace, adds never conflict."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import numpy as np
import pytest

from grid.partitioner import Partitioner
from shoal import AsyncClient, Client, ConflictError, FailedPreconditionError

pytestmark = pytest.mark.integration


def keys_on_two_partitions(client: Client) -> tuple[str, str]:
    partitioner = Partitioner(client.cluster_info().partitions)
    first = "day-0"
    index = 1
    while partitioner.partition_of(f"day-{index}") == partitioner.partition_of(first):
        index += 1
    return first, f"day-{index}"


def test_sketch_add_in_a_transaction_across_partitions(client: Client, map_name: str) -> None:
    client.sketches.create(map_name, kind="hll")
    first, second = keys_on_two_partitions(client)
    with client.transaction() as tx:
        tx.sketch_add(map_name, first, "u1")
        tx.sketch_add(map_name, first, ["u2", "u3"])
        tx.sketch_add(map_name, second, ["u1", 42, b"\x00\x01"])
    assert client.sketches.estimate(map_name, first).value == pytest.approx(3, abs=0.01)
    assert client.sketches.estimate(map_name, second).value == pytest.approx(3, abs=0.01)
    assert client.sketches.merge_estimate(map_name, [first, second]).value == pytest.approx(
        5, abs=0.01
    )

    def add_visit(tx, day: str, user: str) -> None:
        tx.sketch_add(map_name, day, user)

    client.transact(add_visit, first, "u4")
    assert client.sketches.estimate(map_name, first).value == pytest.approx(4, abs=0.01)


def test_an_aborted_transaction_leaves_no_sketch_update(client: Client, map_name: str) -> None:
    client.sketches.create(map_name, kind="cms", width=1_000, depth=5)
    guard = f"{map_name}_guard"
    client.create_map(guard)
    first, second = keys_on_two_partitions(client)
    client.sketches.add(map_name, first, ["x"])
    before = {key: client.sketches.export(map_name, key) for key in (first, second)}

    # Refused by a condition, on one partition and across two.
    for keys in ([first], [first, second]):
        with pytest.raises(FailedPreconditionError), client.transaction() as tx:
            for key in keys:
                tx.sketch_add(map_name, key, ["x", "x", "y"])
            tx.put(guard, "g", {"n": 1}, if_version=99)

    # Aborted by a conflict: what it read changed before it committed.
    client.put(guard, "g", {"n": 1})
    transaction = client.transaction()
    transaction.get(guard, "g")
    transaction.sketch_add(map_name, first, ["x"] * 10)
    transaction.sketch_add(map_name, second, ["z"])
    transaction.put(guard, "other", {"n": 2})
    client.put(guard, "g", {"n": 2})
    with pytest.raises(ConflictError):
        transaction.commit()

    assert {key: client.sketches.export(map_name, key) for key in (first, second)} == before
    assert client.sketches.frequency(map_name, first, "x").value == 1


def test_eight_concurrent_adders_build_the_same_sketch_as_sequential_adds(
    shoal_server: str, client: Client, map_name: str
) -> None:
    hll, cms = f"{map_name}_hll", f"{map_name}_cms"
    client.sketches.create(hll, kind="hll", lg_k=12)
    client.sketches.create(cms, kind="cms", width=2_000, depth=5)
    generator = np.random.default_rng(42)
    batches = [
        [f"user-{value}" for value in generator.zipf(1.2, size=2_000).tolist()]
        for _ in range(8 * 6)
    ]
    for batch in batches:
        client.sketches.add(hll, "sequential", batch)
        client.sketches.add(cms, "sequential", batch)

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def adder(worker: int) -> None:
        try:
            with Client(shoal_server) as own:
                start.wait()
                for position, batch in enumerate(batches[worker::8]):
                    if position % 3 == 2:
                        # Some adds go through transactions: they commute with the rest too.
                        with own.transaction() as tx:
                            tx.sketch_add(hll, "concurrent", batch)
                            tx.sketch_add(cms, "concurrent", batch)
                    else:
                        own.sketches.add(hll, "concurrent", batch)
                        own.sketches.add(cms, "concurrent", batch)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=adder, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors

    assert (
        client.sketches.estimate(hll, "concurrent").value
        == client.sketches.estimate(hll, "sequential").value
    )
    items = sorted(Counter(item for batch in batches for item in batch))
    concurrent = [answer.value for answer in client.sketches.frequencies(cms, "concurrent", items)]
    sequential = [answer.value for answer in client.sketches.frequencies(cms, "sequential", items)]
    assert concurrent == sequential
    assert client.sketches.estimate(cms, "concurrent").value == 8 * 6 * 2_000


def test_the_async_client_has_the_same_sketch_calls(shoal_server: str, map_name: str) -> None:
    async def run() -> None:
        async with AsyncClient(shoal_server) as client:
            await client.sketches.create(map_name, kind="kll")
            await client.sketches.add(map_name, "k", list(range(1, 1_001)))
            await asyncio.gather(
                *(client.sketches.add(map_name, "k", [1_000.5 + i]) for i in range(10))
            )
            summary = await client.sketches.estimate(map_name, "k")
            assert summary.items_seen == 1_010
            quantile = await client.sketches.quantile(map_name, "k", 0.5)
            assert abs(quantile.value - 505) <= 20
            assert [item.name for item in await client.sketches.list()].count(map_name) == 1
            assert await client.sketches.export(map_name, "k")

    asyncio.run(run())
