"""A commit acknowledged through a retry on another coordinator is seen by the next read.

A coordinator killed after deciding a transaction (its status record says committed) and
before committing it on the partitions: the SDK retries the commit on another coordinator,
which finds the decision and answers. The client's next read must see the transaction on
every partition, as the README's read-your-writes example promises, not only once a sweeper
got round to committing what the dead coordinator left. `SHOAL_HISTORY_STORES` adds stores,
as for test_shared_histories.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grid.partitioner import Partitioner
from shoal import Client, ShoalError
from tests.fault.test_shared_histories import STORES, store_url
from tests.support.shared_store import coordinators, wait_for_map

pytestmark = pytest.mark.fault

TRANSACTIONS_MAX = 300


def put_both(tx: Any, keys: tuple[str, str], number: int) -> None:
    for key in keys:
        tx.put("m", key, {"n": number})


@pytest.mark.parametrize("store", STORES)
def test_a_commit_acknowledged_by_a_retry_on_another_coordinator_is_read_at_once(
    tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    armed = {"SHOAL_TESTING": "1", "SHOAL_FAULT_POINTS": "after_status_committed:3"}
    url = store_url(request, store)
    with coordinators(tmp_path, url, 2, environments=[armed, {}]) as servers:
        dying, survivor = servers
        setup = Client(survivor.target)
        setup.create_map("m")
        partitioner = Partitioner(setup.cluster_info().partitions)
        by_partition: dict[int, str] = {}
        for index in range(100):
            by_partition.setdefault(partitioner.partition_of(f"k{index}"), f"k{index}")
        keys = (by_partition[min(by_partition)], by_partition[max(by_partition)])
        wait_for_map([dying], "m", keys[0])
        stale = []
        unknown = 0
        after_death = 0
        for number in range(TRANSACTIONS_MAX):
            # A new client each time starts at a coordinator drawn at random, so the armed
            # one gets its third decided transaction soon.
            client = Client(f"{dying.target},{survivor.target}")
            try:
                client.transact(put_both, keys, number)
            except ShoalError:
                unknown += 1
                continue
            finally:
                client.close()
            reader = Client(survivor.target)
            seen = [reader.get("m", key) for key in keys]
            reader.close()
            if seen != [{"n": number}] * 2:
                stale.append((number, seen))
            if dying.process is not None and dying.process.poll() is not None:
                after_death += 1
                if after_death > 5:
                    break
        assert dying.wait_exit(timeout_s=5) == -9, "the armed coordinator should have died"
        assert stale == [], f"acknowledged commits not read at once: {stale[:3]}"
        assert unknown == 0, "a commit through a dead coordinator should be answered by a retry"
        setup.close()
