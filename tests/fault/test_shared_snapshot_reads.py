"""Snapshot reads while the bank runs through two coordinators, one of them killed (`kill -9`)
at random moments and started again: every total read is exact.

The reader takes a read version from the writer that is never killed and reads every account
at it through a third coordinator (a read version is the store's, so any coordinator serves
it), sums the accounts with SQL (a scan and the point-lookup paths), and reads them in a
read-only transaction: each total must be the bank's, whatever the killed coordinator was
doing when it died (a commit number held, a transaction half-committed).
`SHOAL_HISTORY_STORES` adds stores, as for test_shared_histories.py.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from shoal import Client
from tests.fault.test_shared_coordinators_kill import wait_nothing_in_doubt
from tests.fault.test_shared_histories import STORES, store_url
from tests.support.bank import Transfers, account_key, balances, setup_bank, transfer_until
from tests.support.shared_store import coordinators, wait_for_map

pytestmark = pytest.mark.fault

ACCOUNTS = 20
LEASE_MS = 2000
SHORT_LEASES = ["--txn-lease-ms", str(LEASE_MS), "--txn-sweep-interval-ms", "200"]
KILLS = 3


@pytest.mark.parametrize("store", STORES)
def test_totals_read_through_other_coordinators_than_the_killed_writers_are_exact(
    tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    url = store_url(request, store)
    keys = [account_key(index) for index in range(ACCOUNTS)]
    with coordinators(tmp_path, url, 3, extra_args=SHORT_LEASES) as servers:
        writers, reading = servers[:2], servers[2]
        victim, versions = writers
        setup = Client(reading.target)
        total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
        wait_for_map(servers, "accounts", keys[0])
        stop = threading.Event()
        done = Transfers()
        targets = ",".join(server.target for server in writers)
        workers = [
            threading.Thread(
                target=transfer_until, args=(targets, stop, seed, done, ACCOUNTS), daemon=True
            )
            for seed in range(4)
        ]
        for worker in workers:
            worker.start()
        wrong: list[str] = []
        reads = {"versions": 0, "sql": 0, "transactions": 0}

        def read_totals() -> None:
            # Correctness, not latency: a cold SQL image on a JVM store of a busy machine
            # took longer than the default 10 s.
            version_source = Client(versions.target, timeout_s=60)
            reader = Client(reading.target, timeout_s=60)
            try:
                while not stop.is_set():
                    version = version_source.snapshot().version
                    found = reader.get_many("accounts", keys, at=version)
                    if sum(value["balance"] for value in found.values()) != total:
                        wrong.append(f"at {version} through another coordinator: {found}")
                    reads["versions"] += 1
                    rows = reader.sql("SELECT sum(balance), count(*) FROM accounts").fetchall()
                    if rows[0] != (total, ACCOUNTS):
                        wrong.append(f"SQL: {rows}")
                    # The point-lookup paths (coordinator/sql/point_lookup.py): every key named.
                    listed = ", ".join("?" * len(keys))
                    rows = reader.sql(
                        f"SELECT sum(balance) FROM accounts WHERE __key IN ({listed})", keys
                    ).fetchall()
                    if rows[0][0] != total:
                        wrong.append(f"SQL point lookup: {rows}")
                    rows = reader.sql(
                        f"SELECT balance FROM accounts WHERE __key IN ({listed})", keys
                    ).fetchall()
                    if sum(row[0] for row in rows) != total:
                        wrong.append(f"SQL point rows: {rows}")
                    reads["sql"] += 1
                    in_transaction = sum(balances(reader, "accounts", ACCOUNTS).values())
                    if in_transaction != total:
                        wrong.append(f"read-only transaction: {in_transaction}")
                    reads["transactions"] += 1
            finally:
                version_source.close()
                reader.close()

        reader_thread = threading.Thread(target=read_totals, daemon=True)
        reader_thread.start()
        rng = random.Random(5)
        kills = 0
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(1.0, 3.0))
                victim.kill()
                kills += 1
                time.sleep(rng.uniform(0.2, 1.0))
                victim.start()
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
            reader_thread.join(60)
        assert wrong == [], wrong[:3]
        assert kills == KILLS
        assert len(done.acknowledged) >= 20, "the bank made too little progress to judge"
        assert min(reads.values()) >= 5, f"too few reads to judge: {reads}"
        assert wait_nothing_in_doubt(setup, LEASE_MS / 1000 + 30) == []
        assert sum(balances(setup, "accounts", ACCOUNTS).values()) == total
        setup.close()
