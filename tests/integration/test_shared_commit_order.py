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
    with coordinators(tmp_path, redis_url, 2) as servers:
        client = Client(servers[0].target)
        client.create_map("lists")
        partitioner = Partitioner(client.cluster_info().partitions)
        second = 1
        while partitioner.partition_of(f"k{second}") == partitioner.partition_of("k0"):
            second += 1
        first_key, second_key = "k0", f"k{second}"
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
