"""kill -9 of coordinators sharing one Redis: the others carry on and end what it left.

The bank runs through three coordinators while one of them is killed every few seconds and
started again: the total is conserved, every acknowledged transfer is there with both of its
ledger entries, and nothing is left in doubt. A coordinator killed at a point of the commit
protocol has its transaction ended by another coordinator's recovery sweeper within one lease,
without being restarted.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from shoal import Client
from shoal.v1 import transactions_pb2
from tests.support.bank import (
    Transfers,
    account_key,
    balances,
    ledger_is_atomic,
    setup_bank,
    transfer_until,
)
from tests.support.shared_store import coordinators

pytestmark = pytest.mark.fault

ACCOUNTS = 30
LEASE_MS = 2000
SWEEP_MS = 200
SHORT_LEASES = ["--txn-lease-ms", str(LEASE_MS), "--txn-sweep-interval-ms", str(SWEEP_MS)]


def in_doubt(client: Client) -> list[str]:
    reply = client._call(
        lambda s: s.transactions.ListTransactions,
        transactions_pb2.ListTransactionsRequest(),
        idempotent=True,
    )
    return [item.txn_id for item in reply.transactions]


def wait_nothing_in_doubt(client: Client, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    left = in_doubt(client)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = in_doubt(client)
    return left


def test_bank_through_three_coordinators_with_one_killed_every_few_seconds(
    tmp_path: Path, redis_url: str
) -> None:
    with coordinators(tmp_path, redis_url, 3, extra_args=SHORT_LEASES) as servers:
        targets = ",".join(server.target for server in servers)
        setup = Client(servers[0].target)
        total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
        setup.close()
        stop = threading.Event()
        done = Transfers()
        workers = [
            threading.Thread(
                target=transfer_until, args=(targets, stop, seed, done, ACCOUNTS), daemon=True
            )
            for seed in range(6)
        ]
        for worker in workers:
            worker.start()
        rng = random.Random(11)
        kills = 0
        try:
            for _ in range(4):
                time.sleep(rng.uniform(2.0, 4.0))
                victim = servers[rng.randrange(len(servers))]
                victim.kill()
                kills += 1
                time.sleep(rng.uniform(0.5, 1.5))
                victim.start()
            time.sleep(2.0)
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
        assert kills == 4
        assert len(done.acknowledged) >= 20, "the bank made too little progress to judge"
        checker = Client(targets)
        assert wait_nothing_in_doubt(checker, LEASE_MS / 1000 + 15) == []
        final = balances(checker, "accounts", ACCOUNTS)
        assert sum(final.values()) == total
        assert min(final.values()) >= 0
        assert ledger_is_atomic(checker, "ledger") == []
        present = {key.rsplit(":", 1)[1] for key, _ in checker.scan("ledger")}
        missing = [transfer_id for transfer_id in done.acknowledged if transfer_id not in present]
        assert missing == [], f"{len(missing)} acknowledged transfers lost"
        checker.close()


@pytest.mark.parametrize(
    ("point", "store"),
    [
        ("after_some_prepares", "redis"),
        ("after_status_pre_committed", "redis"),
        ("after_some_commits", "redis"),
        ("after_status_pre_committed", "redis-cluster"),
    ],
)
def test_a_coordinator_killed_mid_commit_has_its_transaction_ended_by_another_within_a_lease(
    tmp_path: Path, request: pytest.FixtureRequest, point: str, store: str
) -> None:
    redis_url = str(
        request.getfixturevalue("redis_cluster_url" if store == "redis-cluster" else "redis_url")
    )
    killed_mid_commit(tmp_path, redis_url, point)


def killed_mid_commit(tmp_path: Path, redis_url: str, point: str) -> None:
    """A coordinator of two on `redis_url` (any shared store's URL) kills itself at fault
    point `point`; the survivor's sweeper ends its transaction within one lease."""
    armed = {"SHOAL_TESTING": "1", "SHOAL_FAULT_POINTS": f"{point}:3"}
    # Long enough that the transaction is still in doubt when the test first looks.
    lease_ms = 4000
    leases = ["--txn-lease-ms", str(lease_ms), "--txn-sweep-interval-ms", str(SWEEP_MS)]
    with coordinators(
        tmp_path, redis_url, 2, extra_args=leases, environments=[armed, {}]
    ) as servers:
        dying, survivor = servers
        setup = Client(survivor.target)
        total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
        stop = threading.Event()
        done = Transfers()
        worker = threading.Thread(
            target=transfer_until, args=(dying.target, stop, 1, done, ACCOUNTS), daemon=True
        )
        worker.start()
        code = dying.wait_exit(timeout_s=90)
        killed_at = time.monotonic()
        stop.set()
        worker.join(60)
        assert code == -9, f"the coordinator should have killed itself at {point}, exit {code}"
        if point != "after_some_commits":
            # Undecided until its lease ends. (A committed record is finished by any sweeper
            # at once: the partitions left commit at the number the others committed at.)
            assert in_doubt(setup) != [], "the killed coordinator left its transaction in doubt"
        # One lease from the kill (the transaction's lease began before it), one sweep
        # interval, and slack for a busy machine.
        left = wait_nothing_in_doubt(setup, lease_ms / 1000 + SWEEP_MS / 1000 + 3)
        assert left == [], f"still in doubt {time.monotonic() - killed_at:.1f} s after the kill"
        final = balances(setup, "accounts", ACCOUNTS)
        assert sum(final.values()) == total
        assert ledger_is_atomic(setup, "ledger") == []
        # The commit number the dead coordinator held is released: new commits become visible.
        version = setup.put("accounts", account_key(0), {"balance": final[account_key(0)]})
        deadline = time.monotonic() + lease_ms / 1000 + 5
        while setup.snapshot().version < version:
            assert time.monotonic() < deadline, "the read version stayed behind a dead holder"
            time.sleep(0.05)
        setup.close()
