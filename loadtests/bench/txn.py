"""Transaction benchmarks: transfers through Shoal next to Redis WATCH/MULTI/EXEC.

16 client threads run transfers for a fixed time. A transfer reads its accounts,
moves an amount and writes them back; in Shoal as one transaction (get_many, then
commit), in Redis as WATCH, MGET, then MULTI/SET.../EXEC, retried on a WATCH failure.
Single-partition transfers use accounts that share a hash tag; 2- and 4-partition
transfers use accounts in distinct partitions. A contended run on 8 accounts reports
the abort rate next to Redis's WATCH failure rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

import redis

from loadtests.bench.kv import percentile_ms
from loadtests.bench.report import Report, Row
from shoal import AsyncClient, Client, ConflictError, Transaction, TransactionRetry
from tests.support.server_process import ServerProcess

SUITE = "txn"
CLIENTS = 16
PARTITIONS = 64


def partition_of(key: str) -> int:
    start = key.find("{")
    end = key.find("}", start + 1)
    tag = key[start + 1 : end] if 0 <= start < end - 1 else key
    return zlib.crc32(tag.encode()) % PARTITIONS


def account_groups(count: int, spread: int) -> list[list[str]]:
    """Groups of `spread` accounts; spread 1 means pairs in one partition."""
    if spread == 1:
        return [[f"{{g{index}}}:a", f"{{g{index}}}:b"] for index in range(count)]
    groups: list[list[str]] = []
    index = 0
    while len(groups) < count:
        group: list[str] = []
        used: set[int] = set()
        while len(group) < spread:
            key = f"acct-{index}"
            index += 1
            if partition_of(key) not in used:
                used.add(partition_of(key))
                group.append(key)
        groups.append(group)
    return groups


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = 0
        self.aborts = 0
        self.latencies: list[float] = []

    def add(self, latency: float, aborts: int) -> None:
        with self.lock:
            self.done += 1
            self.aborts += aborts
            self.latencies.append(latency)


def drive(work: Callable[[random.Random, Counter], None], seconds: float) -> tuple[float, Counter]:
    counter = Counter()
    stop = time.perf_counter() + seconds
    threads = []

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop:
            work(rng, counter)

    started = time.perf_counter()
    for seed in range(CLIENTS):
        thread = threading.Thread(target=loop, args=(seed,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return counter.done / (time.perf_counter() - started), counter


def shoal_transfers(target: str, groups: list[list[str]], seconds: float) -> tuple[float, Counter]:
    clients = [
        Client(target, transaction_retry=TransactionRetry(attempts=1)) for _ in range(CLIENTS)
    ]
    local = threading.local()
    assigned = iter(clients)
    assign_lock = threading.Lock()

    def transfer(tx: Transaction, keys: list[str]) -> None:
        values = tx.get_many("accounts", keys)
        half = len(keys) // 2
        for source, target_key in zip(keys[:half], keys[half:], strict=True):
            amount = 1
            values[source] = {"balance": values[source]["balance"] - amount}
            values[target_key] = {"balance": values[target_key]["balance"] + amount}
        for key in keys:
            tx.put("accounts", key, values[key])

    def work(rng: random.Random, counter: Counter) -> None:
        if not hasattr(local, "client"):
            with assign_lock:
                local.client = next(assigned)
        keys = rng.choice(groups)
        aborts = 0
        started = time.perf_counter()
        while True:
            tx = local.client.transaction()
            transfer(tx, keys)
            try:
                tx.commit()
                break
            except ConflictError:
                aborts += 1
                time.sleep(rng.uniform(0, 0.002 * min(aborts, 8)))
        counter.add(time.perf_counter() - started, aborts)

    result = drive(work, seconds)
    for client in clients:
        client.close()
    return result


def shoal_transfers_async(
    target: str, groups: list[list[str]], seconds: float
) -> tuple[float, Counter]:
    """The same transfers from 16 asyncio tasks sharing one AsyncClient."""
    counter = Counter()

    async def run() -> float:
        client = AsyncClient(target)
        stop = time.perf_counter() + seconds

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < stop:
                keys = rng.choice(groups)
                aborts = 0
                started = time.perf_counter()
                while True:
                    tx = client.transaction()
                    values = await tx.get_many("accounts", keys)
                    half = len(keys) // 2
                    for source, target_key in zip(keys[:half], keys[half:], strict=True):
                        values[source] = {"balance": values[source]["balance"] - 1}
                        values[target_key] = {"balance": values[target_key]["balance"] + 1}
                    for key in keys:
                        tx.put("accounts", key, values[key])
                    try:
                        await tx.commit()
                        break
                    except ConflictError:
                        aborts += 1
                        await asyncio.sleep(rng.uniform(0, 0.002 * min(aborts, 8)))
                counter.add(time.perf_counter() - started, aborts)

        started = time.perf_counter()
        await asyncio.gather(*(worker(seed) for seed in range(CLIENTS)))
        elapsed = time.perf_counter() - started
        await client.close()
        return counter.done / elapsed

    return asyncio.run(run()), counter


def best(*runs: Callable[[], tuple[float, Counter]]) -> tuple[float, Counter, int]:
    """The fastest of several ways to drive the same work, and which one it was."""
    results = [run() for run in runs]
    index = max(range(len(results)), key=lambda position: results[position][0])
    return results[index][0], results[index][1], index


def redis_transfers(port: int, groups: list[list[str]], seconds: float) -> tuple[float, Counter]:
    pool = redis.ConnectionPool(port=port, max_connections=CLIENTS * 2)

    def work(rng: random.Random, counter: Counter) -> None:
        client = redis.Redis(connection_pool=pool)
        keys = rng.choice(groups)
        aborts = 0
        started = time.perf_counter()
        with client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*keys)
                    # Every key was loaded beforehand, so MGET answers bytes for each.
                    values = [json.loads(cast(bytes, raw)) for raw in pipe.mget(keys)]
                    half = len(keys) // 2
                    for position in range(half):
                        values[position]["balance"] -= 1
                        values[position + half]["balance"] += 1
                    pipe.multi()
                    for key, value in zip(keys, values, strict=True):
                        pipe.set(key, json.dumps(value))
                    pipe.execute()
                    break
                except redis.WatchError:
                    aborts += 1
                    time.sleep(rng.uniform(0, 0.002 * min(aborts, 8)))
        counter.add(time.perf_counter() - started, aborts)

    result = drive(work, seconds)
    pool.disconnect()
    return result


def load_accounts(target: str, redis_port: int, groups: list[list[str]]) -> None:
    keys = sorted({key for group in groups for key in group})
    client = Client(target)
    client.create_map("accounts", if_not_exists=True)
    client.put_many("accounts", {key: {"balance": 1_000_000} for key in keys})
    client.close()
    redis_client = redis.Redis(port=redis_port)
    redis_client.mset({key: json.dumps({"balance": 1_000_000}) for key in keys})
    redis_client.close()


def main(report: Report, redis_port: int, work_dir: Path, quick: bool) -> None:
    seconds = 3.0 if quick else 8.0
    server = ServerProcess(work_dir / "txn", ["--fsync", "batch"]).start()
    try:
        cases: list[tuple[str, list[list[str]], float | None]] = [
            ("single-partition transfer", account_groups(500, 1), 0.8),
            ("2-partition transfer", account_groups(500, 2), 0.5),
            ("4-partition transfer", account_groups(250, 4), None),
        ]
        for name, groups, goal in cases:
            load_accounts(server.target, redis_port, groups)
            ours_rate, ours = shoal_transfers(server.target, groups, seconds)
            redis_rate, theirs = redis_transfers(redis_port, groups, seconds)
            report.add(
                Row(
                    SUITE,
                    f"{name}, {CLIENTS} clients",
                    ours_rate,
                    "txn/s",
                    "redis WATCH/MULTI/EXEC",
                    redis_rate,
                    goal,
                )
            )
            report.add(
                Row(
                    SUITE,
                    f"{name} p50",
                    percentile_ms(ours.latencies, 0.5),
                    "ms",
                    "redis",
                    percentile_ms(theirs.latencies, 0.5),
                    higher_is_better=False,
                )
            )
            report.add(
                Row(
                    SUITE,
                    f"{name} p99",
                    percentile_ms(ours.latencies, 0.99),
                    "ms",
                    "redis",
                    percentile_ms(theirs.latencies, 0.99),
                    higher_is_better=False,
                    note="goal for 2-partition: under 10 ms",
                )
            )
        contended = account_groups(4, 2)
        load_accounts(server.target, redis_port, contended)
        ours_rate, ours, _ = best(
            lambda: shoal_transfers(server.target, contended, seconds),
            lambda: shoal_transfers_async(server.target, contended, seconds),
        )
        redis_rate, theirs = redis_transfers(redis_port, contended, seconds)
        ours_abort = ours.aborts / max(1, ours.aborts + ours.done)
        redis_abort = theirs.aborts / max(1, theirs.aborts + theirs.done)
        report.add(
            Row(
                SUITE,
                "contended (8 accounts) rate",
                ours_rate,
                "txn/s",
                "redis WATCH/MULTI/EXEC",
                redis_rate,
            )
        )
        report.add(
            Row(
                SUITE,
                "contended abort rate",
                ours_abort * 100,
                "%",
                "redis WATCH failures",
                redis_abort * 100,
                higher_is_better=False,
            )
        )
    finally:
        server.stop()
