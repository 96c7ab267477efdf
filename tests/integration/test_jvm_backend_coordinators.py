"""Coordinators serving the SDK on the Hazelcast and Ignite backends (`shoal serve --backend
hazelcast://…`, `ignite://…`), two at once on one namespace: a map created through one is seen
by the other within a second, writes through one are read through the other, and SQL sums taken
through one while the bank runs through the other are always exact.

The same checks on Redis are in test_shared_coordinators.py; a JVM member is slow to start, so
each backend gets one test that starts its two coordinators once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shoal import Client
from tests.support.bank import run_bank, setup_bank
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME
from tests.support.shared_store import coordinators

pytestmark = pytest.mark.integration

ACCOUNTS = 10


@pytest.fixture(
    params=[
        pytest.param("hazelcast", marks=pytest.mark.hazelcast),
        pytest.param("ignite", marks=pytest.mark.ignite),
    ]
)
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        return f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
    return "ignite://" + request.getfixturevalue("ignite_address")


def test_two_coordinators_serve_one_grid(tmp_path: Path, store_url: str) -> None:
    with coordinators(tmp_path, store_url, 2) as servers:
        first, second = (Client(server.target) for server in servers)
        assert "orders" not in {info.name for info in second.list_maps()}, "a fresh namespace"
        first.create_map("orders", schema={"total": "int"})
        created = time.monotonic()
        while "orders" not in {info.name for info in second.list_maps()}:
            assert time.monotonic() - created < 1.0, "the new map was not seen within 1 s"
            time.sleep(0.01)
        first.put("orders", "o1", {"total": 5})
        assert second.get("orders", "o1") == {"total": 5}
        with pytest.raises(Exception, match="total"):
            second.put("orders", "o2", {"total": "five"})

        total = setup_bank(first, "accounts", "ledger", accounts=ACCOUNTS)
        stop = threading.Event()
        run, threads = run_bank(
            servers[0].target,
            "accounts",
            "ledger",
            accounts=ACCOUNTS,
            clients=2,
            stop=stop,
            reader=False,
        )
        sums = []
        deadline = time.monotonic() + 90
        try:
            while (run.transfers < 20 or len(sums) < 5) and time.monotonic() < deadline:
                rows = second.sql("SELECT sum(balance) AS total, count(*) AS n FROM accounts")
                sums.append(rows.fetchall()[0])
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        assert run.errors == []
        assert run.transfers >= 20, "the writers made no progress"
        assert set(sums) == {(total, ACCOUNTS)}
        first.close()
        second.close()
