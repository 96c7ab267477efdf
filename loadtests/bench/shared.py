"""Shoal on a shared Redis next to redis-py on the same Redis, and 1, 2, 3 coordinators.

Per operation, one Shoal coordinator started with `--backend redis://…/<namespace>` against the
benchmark's private redis-server, next to the same operation done directly with redis-py
(hiredis) on that server: get (one client, sequential), get-many of 1,000 keys (keys a second,
the values decoded on both sides), put, and the 2-partition transfer from 16 clients next to the
Lua transfer (one EVALSHA doing the check and the writes, the strongest Redis way). A get
through a bare Python gRPC server (a dict behind Shoal's messages, loadtests/bench/bare_server.py)
next to the same redis-py GET is the get's ceiling: the client's and the server's gRPC cost
(about 250 µs of CPU each a call, by py-spy and psutil) bounds any Python gRPC service well
under the 0.5x goal, whatever it serves from. Then the
coordinator scaling: the 2-partition transfer from 16 clients spread over 1, 2 and 3
coordinators on one namespace, with the CPU seconds each process used (coordinators, Redis,
this client process): on a machine of few cores the client and the store take cores the
coordinators would need, which limits the figure; per coordinator CPU per transfer is what
carries over to a larger machine. The same per-operation rows on Hazelcast and Ignite are the
suites of shared_jvm.py.

What limits each ratio (docs/architecture/shared-stores.md, "Per store", has the figures): a get
makes one store round trip, the rest is the gRPC hop (compare the bare server's row); a put makes
three (the catalog's version, the commit number, the step with the number's release behind
it); a transfer makes some fifteen store calls and two gRPC calls, and the coordinator's CPU
for them is the limit on this machine (the scaling rows' CPU per transfer).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.utils import HIREDIS_AVAILABLE

from loadtests.bench import txn
from loadtests.bench.kv import BareServer
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.server_process import ServerProcess

SUITE = "shared"
PARTITIONS = 64
DOCUMENT = {"name": "a value", "n": 12345, "tags": ["x", "y"]}
# name, baseline name, Shoal's call, the baseline's call, keys per call, goal (ours / theirs)
Case = tuple[str, str, Callable[[int], Any], Callable[[int], Any], int, float | None]


def rate(call: Callable[[int], Any], seconds: float) -> float:
    """Calls a second of a sequential loop run for `seconds`."""
    done = 0
    started = time.perf_counter()
    stop = started + seconds
    while time.perf_counter() < stop:
        call(done)
        done += 1
    return done / (time.perf_counter() - started)


def start_coordinators(work_dir: Path, url: str, count: int) -> list[ServerProcess]:
    return [
        ServerProcess(
            work_dir / f"shared-{index}-{uuid.uuid4().hex[:6]}",
            ["--backend", url, "--partitions", str(PARTITIONS)],
        ).start()
        for index in range(count)
    ]


def best_rates(
    ours: Callable[[int], Any], theirs: Callable[[int], Any], seconds: float, runs: int
) -> tuple[float, float]:
    """The best rate of each side over `runs` runs a side, the sides taking turns run by
    run, so a noisy moment of the shared machine falls on both alike."""
    ours_best = theirs_best = 0.0
    for _ in range(runs):
        ours_best = max(ours_best, rate(ours, seconds))
        theirs_best = max(theirs_best, rate(theirs, seconds))
    return ours_best, theirs_best


def kv_case_rows(
    report: Report, suite: str, store: str, cases: list[Case], seconds: float, runs: int
) -> None:
    """One row per case: Shoal on `store` next to the store's own client, interleaved."""
    for name, baseline_name, ours_call, theirs_call, per_call, goal in cases:
        ours, theirs = best_rates(ours_call, theirs_call, seconds, runs)
        unit = "keys/s" if per_call > 1 else "ops/s"
        report.add(
            Row(
                suite,
                f"{store} backend: {name}",
                ours * per_call,
                unit,
                baseline_name,
                theirs * per_call,
                goal,
                note=f"one client, sequential; best of {runs}, the sides taking turns",
            )
        )


def kv_rows(report: Report, port: int, target: str, seconds: float, runs: int) -> None:
    keys = [f"k{index}" for index in range(1000)]
    client = Client(target)
    client.create_map("kv", if_not_exists=True)
    client.put_many("kv", {key: DOCUMENT for key in keys})
    direct = redis.Redis(port=port)
    direct.mset({f"bench:{key}": json.dumps(DOCUMENT) for key in keys})
    direct_keys = [f"bench:{key}" for key in keys]
    parser = "hiredis" if HIREDIS_AVAILABLE else "the pure-Python parser (install hiredis)"
    with BareServer() as bare:
        bare_client = Client(bare.target)
        bare_client.put_many("kv", {key: DOCUMENT for key in keys})
        cases: list[Case] = [
            (
                "get",
                f"redis-py GET + json ({parser})",
                lambda i: client.get("kv", keys[i % 1000]),
                lambda i: json.loads(direct.get(direct_keys[i % 1000]) or b"null"),
                1,
                0.5,
            ),
            (
                # What any Python gRPC service reaches with this client: the get's ceiling.
                "get, a bare Python gRPC server (a dict) in Shoal's place",
                "redis-py GET + json",
                lambda i: bare_client.get("kv", keys[i % 1000]),
                lambda i: json.loads(direct.get(direct_keys[i % 1000]) or b"null"),
                1,
                None,
            ),
            (
                "get-many 1,000 keys",
                "redis-py MGET + json",
                lambda i: client.get_many("kv", keys),
                lambda i: [json.loads(raw) for raw in direct.mget(direct_keys) if raw],
                1000,
                0.8,
            ),
            (
                "put",
                "redis-py SET json",
                lambda i: client.put("kv", keys[i % 1000], DOCUMENT),
                lambda i: direct.set(direct_keys[i % 1000], json.dumps(DOCUMENT)),
                1,
                None,
            ),
        ]
        kv_case_rows(report, SUITE, "redis", cases, seconds, runs)
        bare_client.close()
    client.close()
    direct.close()


def transfer_rows(
    report: Report, port: int, target: str, seconds: float, runs: int, group_count: int
) -> list[list[str]]:
    groups = txn.account_groups(group_count, 2)
    txn.load_accounts(target, port, groups)
    results = txn.measure_sides(
        {
            "shoal": [lambda: txn.shoal_transfers(target, groups, seconds)],
            "redis lua": [lambda: txn.redis_lua_transfers(port, groups, seconds)],
        },
        runs,
    )
    report.add(
        Row(
            SUITE,
            f"redis backend: 2-partition transfer, {txn.CLIENTS} clients",
            results["shoal"][0],
            "txn/s",
            "redis Lua transfer (EVALSHA)",
            results["redis lua"][0],
            0.5,
            note=f"best of {runs} run(s) a side",
        )
    )
    return groups


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def scaling_rows(
    report: Report,
    port: int,
    redis_pid: int,
    work_dir: Path,
    url: str,
    groups: list[list[str]],
    seconds: float,
) -> None:
    """The same transfers through 1, 2 and 3 coordinators on one namespace."""
    started: list[ServerProcess] = []
    try:
        first_rate = 0.0
        for count in (1, 2, 3):
            started += start_coordinators(work_dir, url, count - len(started))
            targets = ",".join(server.target for server in started)
            pids = [server.process.pid for server in started if server.process is not None]
            before = (cpu_seconds(pids), cpu_seconds([redis_pid]), time.process_time())
            transfers, _ = txn.shoal_transfers(targets, groups, seconds)
            after = (cpu_seconds(pids), cpu_seconds([redis_pid]), time.process_time())
            coordinators_cpu, redis_cpu, client_cpu = (
                later - earlier for later, earlier in zip(after, before, strict=True)
            )
            first_rate = first_rate or transfers
            report.add(
                Row(
                    SUITE,
                    f"redis backend: transfers through {count} coordinator(s)",
                    transfers,
                    "txn/s",
                    "through 1 coordinator",
                    first_rate,
                    note=(
                        f"CPU s per s: coordinators {coordinators_cpu / seconds:.2f}, "
                        f"redis {redis_cpu / seconds:.2f}, clients {client_cpu / seconds:.2f}; "
                        f"coordinator CPU ms per transfer "
                        f"{1000 * coordinators_cpu / max(1.0, transfers * seconds):.2f}"
                    ),
                )
            )
    finally:
        for server in started:
            server.stop()


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    seconds = pick(scale, tiny=0.3, quick=2.0, full=4.0)
    runs = pick(scale, tiny=1, quick=2, full=3)
    group_count = pick(scale, tiny=20, quick=300, full=500)
    url = f"redis://127.0.0.1:{redis_port}/bench{random.randrange(1 << 30)}"
    redis_pid = int(redis.Redis(port=redis_port).info("server")["process_id"])
    (server,) = start_coordinators(work_dir, url, 1)
    try:
        kv_rows(report, redis_port, server.target, seconds, runs)
        groups = transfer_rows(report, redis_port, server.target, seconds, runs, group_count)
    finally:
        server.stop()
    scaling_rows(report, redis_port, redis_pid, work_dir, url, groups, seconds)
