"""Procedure benchmarks: the transfer as a procedure next to the Redis Lua transfer.

16 client threads run two-account transfers for a fixed time. In Shoal each is one call of
the procedure ``transfer`` (loadtests/procedures/bank.py: read both balances, refuse an
overdraft, write both) run by the coordinator as one transaction; in Redis each is one
EVALSHA of a Lua script doing the same check and both writes on the server, the strongest
way Redis has (one round trip, atomic, nothing to retry; `txn.redis_lua_transfers`).
Values are JSON on both sides. 2-partition transfers use accounts in distinct partitions
(a three-phase commit in Shoal); single-partition ones share a hash tag (one phase).
Both sides run the same number of times, taking turns, and each keeps its best run.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from pathlib import Path

from loadtests.bench.kv import percentile_ms
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from loadtests.bench.txn import (
    CLIENTS,
    Counter,
    account_groups,
    drive,
    load_accounts,
    measure_sides,
    redis_lua_transfers,
)
from shoal import Client
from tests.support.server_process import REPO_ROOT, ServerProcess

SUITE = "procedures"
AMOUNT = 1
PROCEDURES = str(REPO_ROOT / "loadtests" / "procedures")

Measured = tuple[float, Counter]


def procedure_transfers(target: str, groups: list[list[str]], seconds: float) -> Measured:
    """One `call` per transfer, from 16 threads with a client each."""
    clients = [Client(target) for _ in range(CLIENTS)]
    local = threading.local()
    assigned = iter(clients)
    assign_lock = threading.Lock()

    def work(rng: random.Random, counter: Counter) -> None:
        if not hasattr(local, "client"):
            with assign_lock:
                local.client = next(assigned)
        source, destination = rng.choice(groups)
        started = time.perf_counter()
        local.client.call("transfer", source, destination, AMOUNT)
        counter.add(time.perf_counter() - started, 0)

    try:
        return drive(work, seconds)
    finally:
        for client in clients:
            client.close()


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    seconds = pick(scale, tiny=0.4, quick=3.0, full=6.0)
    runs = pick(scale, tiny=1, quick=2, full=2)
    count = pick(scale, tiny=20, quick=500, full=500)
    server = ServerProcess(
        work_dir / "procedures", ["--fsync", "batch", "--procedures", PROCEDURES]
    ).start()
    try:
        cases: list[tuple[str, list[list[str]], float | None]] = [
            ("2-partition transfer as a procedure", account_groups(count, 2), 0.5),
            ("single-partition transfer as a procedure", account_groups(count, 1), None),
        ]
        if scale == "tiny":
            # The smoke test only needs the suite to run: one case is enough.
            cases = cases[:1]
        for name, groups, goal in cases:
            load_accounts(server.target, redis_port, groups)
            results = measure_sides(
                {
                    "shoal": [
                        functools.partial(procedure_transfers, server.target, groups, seconds)
                    ],
                    "redis": [functools.partial(redis_lua_transfers, redis_port, groups, seconds)],
                },
                runs,
            )
            ours_rate, ours = results["shoal"]
            lua_rate, lua = results["redis"]
            report.add(
                Row(
                    SUITE,
                    f"{name}, {CLIENTS} clients",
                    ours_rate,
                    "txn/s",
                    "redis EVALSHA Lua",
                    lua_rate,
                    goal,
                    note=f"best of {runs} run(s) a side",
                )
            )
            for label, fraction in (("p50", 0.5), ("p99", 0.99)):
                report.add(
                    Row(
                        SUITE,
                        f"{name} {label}",
                        percentile_ms(ours.latencies, fraction),
                        "ms",
                        "redis EVALSHA Lua",
                        percentile_ms(lua.latencies, fraction),
                        higher_is_better=False,
                    )
                )
    finally:
        server.stop()
