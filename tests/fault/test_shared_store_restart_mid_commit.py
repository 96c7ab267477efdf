"""A coordinator killed in the middle of a commit, then the shared Redis itself killed with
SIGKILL and restarted from its append-only file (`appendfsync always`): the surviving
coordinator ends what the dead one left, and the bank is whole.

The store's restart comes while the dead coordinator's transaction is still in doubt (its
lease not yet over), so the survivor's recovery reads the status record, the staged writes
and the commit number the dead one held from what Redis replayed from its log.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from shoal import Client
from tests.fault.test_shared_coordinators_kill import ACCOUNTS, in_doubt, wait_nothing_in_doubt
from tests.support.bank import (
    Transfers,
    account_key,
    balances,
    ledger_is_atomic,
    setup_bank,
    transfer_until,
)
from tests.support.external_servers import run_redis_script
from tests.support.shared_store import coordinators

pytestmark = [pytest.mark.fault, pytest.mark.redis]

# A redis-server of this test's own, killed and restarted (never the session's).
PORT = 6397
LEASE_MS = 4000
LEASES = ["--txn-lease-ms", str(LEASE_MS), "--txn-sweep-interval-ms", "200"]


@pytest.mark.parametrize("point", ["after_status_pre_committed", "after_status_committed"])
def test_a_store_restarted_after_a_coordinator_died_mid_commit_loses_nothing(
    tmp_path: Path, point: str
) -> None:
    environment = {"REDIS_APPENDFSYNC": "always", "SHOAL_CACHE_DIR": str(tmp_path / "redis")}
    run_redis_script("up", PORT, environment)
    url = f"redis://127.0.0.1:{PORT}"
    armed = {"SHOAL_TESTING": "1", "SHOAL_FAULT_POINTS": f"{point}:3"}
    try:
        with coordinators(tmp_path, url, 2, extra_args=LEASES, environments=[armed, {}]) as servers:
            dying, survivor = servers
            setup = Client(survivor.target, timeout_s=30)
            total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
            stop = threading.Event()
            done = Transfers()
            worker = threading.Thread(
                target=transfer_until,
                args=(dying.target, stop, 1, done, ACCOUNTS),
                daemon=True,
            )
            worker.start()
            code = dying.wait_exit(timeout_s=90)
            stop.set()
            worker.join(60)
            assert code == -9, f"the coordinator should have killed itself at {point}"
            if point == "after_status_pre_committed":
                assert in_doubt(setup) != [], "the dead coordinator left nothing in doubt"
            pid = int((tmp_path / "redis" / f"redis-{PORT}" / "redis.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            run_redis_script("up", PORT, environment)
            assert wait_nothing_in_doubt(setup, LEASE_MS / 1000 + 30) == []
            final = balances(setup, "accounts", ACCOUNTS)
            assert sum(final.values()) == total
            assert ledger_is_atomic(setup, "ledger") == []
            present = {key.rsplit(":", 1)[1] for key, _ in setup.scan("ledger")}
            missing = [tid for tid in done.acknowledged if tid not in present]
            assert missing == [], f"{len(missing)} acknowledged transfers lost"
            # The survivor commits after the restart, and its commits become visible (the
            # number the dead coordinator held was released from the replayed sequence).
            after = Transfers()
            more = threading.Event()
            threading.Timer(3.0, more.set).start()
            transfer_until(survivor.target, more, 2, after, ACCOUNTS)
            assert after.acknowledged, "no transfer through the survivor after the restart"
            version = setup.put("accounts", account_key(0), {"balance": 0})
            deadline = time.monotonic() + LEASE_MS / 1000 + 10
            while setup.snapshot().version < version:
                assert time.monotonic() < deadline, "the read version stayed behind"
                time.sleep(0.05)
            setup.close()
    finally:
        run_redis_script("down", PORT, environment)
