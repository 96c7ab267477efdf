"""One commit order across coordinators: concurrent appends to keys on two partitions,
committed through two coordinators sharing one Redis, end in the same order on both."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from grid.partitioner import Partitioner
from shoal import Client
from tests.support.shared_store import coordinators

pytestmark = [pytest.mark.integration, pytest.mark.redis]

THREADS_PER_COORDINATOR = 2
TRANSACTIONS_PER_THREAD = 60


def test_appends_through_two_coordinators_end_in_one_order(tmp_path: Path, redis_url: str) -> None:
    # Sweeps every few milliseconds over many partitions, the keys on the first and the last
    # read: a sweep then often reads the staged lists while a commit is between its prepares,
    # which is how a sweeper finishing a live commit on the partitions it saw split the order.
    sweeping = ["--txn-sweep-interval-ms", "2", "--partitions", "64"]
    with coordinators(tmp_path, redis_url, 2, extra_args=sweeping) as servers:
        client = Client(servers[0].target)
        client.create_map("lists")
        partitioner = Partitioner(client.cluster_info().partitions)
        by_partition: dict[int, str] = {}
        for index in range(2000):
            by_partition.setdefault(partitioner.partition_of(f"k{index}"), f"k{index}")
        first_key, second_key = by_partition[min(by_partition)], by_partition[max(by_partition)]
        errors: list[BaseException] = []

        def append_both(tx: Any, item: str) -> None:
            tx.append("lists", first_key, "ids", [item])
            tx.append("lists", second_key, "ids", [item])

        def worker(target: str, name: str) -> None:
            own = Client(target)
            try:
                for number in range(TRANSACTIONS_PER_THREAD):
                    own.transact(append_both, f"{name}-{number}")
            except BaseException as error:  # reported by the test, not lost in a thread
                errors.append(error)
            finally:
                own.close()

        threads = [
            threading.Thread(target=worker, args=(server.target, f"c{index}t{thread}"))
            for index, server in enumerate(servers)
            for thread in range(THREADS_PER_COORDINATOR)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not errors, errors[:3]
        one = client.get("lists", first_key)["ids"]
        other = client.get("lists", second_key)["ids"]
        assert len(one) == len(servers) * THREADS_PER_COORDINATOR * TRANSACTIONS_PER_THREAD
        differing = sum(1 for a, b in zip(one, other, strict=True) if a != b)
        assert one == other, f"{differing} positions differ between the two partitions"
        client.close()


def test_list_append_histories_through_two_coordinators_are_serializable(
    tmp_path: Path, redis_url: str
) -> None:
    """Random transactions reading and appending to four lists through two coordinators,
    checked the way Elle does (tests/support/elle.py): no cycle, every read a prefix."""
    import itertools
    import random

    from tests.support.elle import Observed, check

    keys = [f"k{index}" for index in range(4)]
    counter = itertools.count(1)
    counter_lock = threading.Lock()
    with coordinators(tmp_path, redis_url, 2) as servers:
        client = Client(servers[0].target)
        client.create_map("lists")
        for key in keys:
            client.put("lists", key, {"ids": []})
        history: list[Observed] = []
        errors: list[BaseException] = []

        def worker(target: str, seed: int) -> None:
            rng = random.Random(seed)
            own = Client(target)
            try:
                for number in range(40):
                    chosen = rng.sample(keys, rng.randint(2, 3))
                    reading = [key for key in chosen if rng.random() < 0.4]
                    appending = [key for key in chosen if key not in reading or rng.random() < 0.3]
                    attempt: list[Observed] = []

                    def body(
                        tx: Any,
                        name: str = f"s{seed}-{number}",
                        attempt: list[Observed] = attempt,
                        reading: list[str] = reading,
                        appending: list[str] = appending,
                    ) -> None:
                        observed = Observed(name, committed=True)
                        attempt[:] = [observed]
                        for key in reading:
                            document = tx.get("lists", key)
                            observed.reads.append((key, tuple(document["ids"])))
                        for key in appending:
                            with counter_lock:
                                element = next(counter)
                            tx.append("lists", key, "ids", [element])
                            observed.appends.append((key, element))

                    own.transact(body)
                    history.extend(attempt)
            except BaseException as error:  # reported by the test, not lost in a thread
                errors.append(error)
            finally:
                own.close()

        threads = [
            threading.Thread(target=worker, args=(server.target, index * 10 + thread))
            for index, server in enumerate(servers)
            for thread in range(THREADS_PER_COORDINATOR)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not errors, errors[:3]
        final = {key: tuple(client.get("lists", key)["ids"]) for key in keys}
        client.close()
    verdict = check(history, final)
    assert verdict.anomalies == [], verdict.anomalies[:5]
    assert verdict.cycle is None, verdict.cycle
    assert verdict.edges > len(history), "too few dependencies for the check to mean much"
