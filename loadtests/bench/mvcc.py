"""Read-version benchmarks: snapshot readers next to writers, and what the window costs.

* A read-only transaction of 40 single `tx.get` calls while 4 writer processes run
  transfers over the same 40 keys: how many commit on their first attempt (the goal
  is all), and their median latency next to the same reader with no writers (goal:
  at most 1.2x).
* Write throughput (16 threads overwriting 1,000 keys with `put`) with the default
  window next to `mvcc_window_ms=0` (goal: at least 0.9x).
* Memory per key of keys that do not change, with the window on next to off (goal:
  within 10%).

Writers run in their own processes so their client work does not share the reader's
interpreter lock; the server is the same.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from loadtests.bench.kv import VALUE_100, percentile_ms, rss_bytes
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.server_process import ServerProcess

SUITE = "mvcc"
KEYS = [f"a{index}" for index in range(40)]
WRITERS = 4
PUT_THREADS = 16
PUT_KEYS = 1_000


def _transfer(tx: Any, source: str, target: str) -> None:
    source_balance = tx.get("bank", source)["balance"]
    target_balance = tx.get("bank", target)["balance"]
    tx.put("bank", source, {"balance": source_balance - 1})
    tx.put("bank", target, {"balance": target_balance + 1})


def writer_process(target: str, seed: int, seconds: float) -> None:
    """Transfers between random pairs of the keys until the time is up (a subprocess)."""
    rng = random.Random(seed)
    client = Client(target)
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        source, other = rng.sample(KEYS, 2)
        client.transact(_transfer, source, other)
    client.close()


def read_only_runs(target: str, seconds: float) -> tuple[list[float], int, int, set[int]]:
    """(latencies, transactions, attempts, totals seen) of the 40-get reader."""
    client = Client(target)
    attempts = 0

    def read_all(tx: Any) -> int:
        nonlocal attempts
        attempts += 1
        return sum(tx.get("bank", key)["balance"] for key in KEYS)

    latencies: list[float] = []
    totals: set[int] = set()
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        totals.add(client.transact(read_all))
        latencies.append(time.perf_counter() - started)
    client.close()
    return latencies, len(latencies), attempts, totals


def plain_gets(target: str, seconds: float) -> list[float]:
    """Latencies of the same 40 reads as plain gets of the latest values (no snapshot)."""
    client = Client(target)
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        for key in KEYS:
            client.get("bank", key)
        latencies.append(time.perf_counter() - started)
    client.close()
    return latencies


def readers_next_to_writers(
    report: Report, work_dir: Path, seconds: float, warm_up_s: float = 1.5
) -> None:
    server = ServerProcess(work_dir / "mvcc-readers", ["--fsync", "batch"]).start()
    try:
        client = Client(server.target)
        client.create_map("bank")
        client.put_many("bank", {key: {"balance": 1_000} for key in KEYS})
        client.close()
        alone, _, _, _ = read_only_runs(server.target, seconds)
        context = multiprocessing.get_context("spawn")
        writers = [
            context.Process(
                target=writer_process, args=(server.target, seed, seconds + warm_up_s + 0.5)
            )
            for seed in range(WRITERS)
        ]
        for process in writers:
            process.start()
        time.sleep(warm_up_s)  # let the writers connect and get going
        latencies, done, attempts, totals = read_only_runs(server.target, seconds)
        plain = plain_gets(server.target, seconds / 2)
        for process in writers:
            process.join(seconds + 60)
    finally:
        server.stop()
    report.add(
        Row(
            SUITE,
            f"read-only 40 gets, {WRITERS} writers: first-attempt commits",
            100 * done / max(1, attempts),
            "%",
            "all",
            100.0,
            1.0,
            note=f"totals seen: {sorted(totals)}",
        )
    )
    report.add(
        Row(
            SUITE,
            f"read-only 40 gets p50, {WRITERS} writers",
            percentile_ms(latencies, 0.5),
            "ms",
            "no writers",
            percentile_ms(alone, 0.5),
            1.2,
            higher_is_better=False,
            note="the server's CPU is shared with the writers' transactions",
        )
    )
    report.add(
        Row(
            SUITE,
            f"read-only 40 gets p50, {WRITERS} writers, next to 40 plain gets of latest values",
            percentile_ms(latencies, 0.5),
            "ms",
            "plain gets, same writers",
            percentile_ms(plain, 0.5),
            higher_is_better=False,
            note="what reading at a read version costs over reading the latest values",
        )
    )


def put_burst(target: str, seconds: float) -> tuple[int, float]:
    """(puts done, seconds taken) of 16 threads overwriting the keys for a while."""
    done = [0] * PUT_THREADS
    stop = time.perf_counter() + seconds
    clients = [Client(target) for _ in range(PUT_THREADS)]

    def loop(index: int) -> None:
        rng = random.Random(index)
        while time.perf_counter() < stop:
            clients[index].put("hot", f"k{rng.randrange(PUT_KEYS)}", VALUE_100)
            done[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(index,)) for index in range(PUT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return sum(done), elapsed


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def put_rates(work_dir: Path, seconds: float) -> tuple[float, float, float, float]:
    """Put throughput with the window on and at 0 (both servers up, measured in
    alternating bursts so a busy machine weighs on both alike), and the server CPU
    time of one put in each."""
    servers = {
        window_ms: ServerProcess(
            work_dir / f"mvcc-put-{window_ms}",
            ["--fsync", "batch", "--mvcc-window-ms", str(window_ms)],
        ).start()
        for window_ms in (5000, 0)
    }
    try:
        totals = {window_ms: [0, 0.0, 0.0] for window_ms in servers}
        for server in servers.values():
            setup = Client(server.target)
            setup.create_map("hot")
            setup.put_many("hot", {f"k{index}": VALUE_100 for index in range(PUT_KEYS)})
            setup.close()
        for round_number in range(4):
            # Alternate which goes first, so neither always follows the other's load.
            order = list(servers.items())
            for window_ms, server in order if round_number % 2 == 0 else order[::-1]:
                assert server.process is not None
                cpu_before = cpu_seconds(server.process.pid)
                done, elapsed = put_burst(server.target, seconds / 4)
                totals[window_ms][0] += done
                totals[window_ms][1] += elapsed
                totals[window_ms][2] += cpu_seconds(server.process.pid) - cpu_before
        on, off = totals[5000], totals[0]
        return on[0] / on[1], off[0] / off[1], on[2] / on[0] * 1e6, off[2] / off[0] * 1e6
    finally:
        for server in servers.values():
            server.stop()


def memory_per_key(work_dir: Path, name: str, window_ms: int, keys: int) -> float:
    server = ServerProcess(
        work_dir / name, ["--fsync", "batch", "--mvcc-window-ms", str(window_ms)]
    ).start()
    try:
        client = Client(server.target, timeout_s=120)
        client.create_map("mem")
        assert server.process is not None
        before = rss_bytes(server.process.pid)
        batch = 5000
        for start in range(0, keys, batch):
            client.put_many(
                "mem", [(f"key:{i:08d}", VALUE_100) for i in range(start, min(keys, start + batch))]
            )
        after = rss_bytes(server.process.pid)
        client.close()
        return (after - before) / keys
    finally:
        server.stop()


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    seconds = pick(scale, tiny=0.6, quick=3.0, full=10.0)
    readers_next_to_writers(
        report, work_dir, seconds, warm_up_s=pick(scale, tiny=0.5, quick=1.5, full=1.5)
    )
    window_on, window_off, cpu_on_us, cpu_off_us = put_rates(work_dir, seconds)
    report.add(
        Row(
            SUITE,
            f"put throughput, window 5000 ms, {PUT_THREADS} threads on {PUT_KEYS:,} keys",
            window_on,
            "ops/s",
            "window 0",
            window_off,
            0.9,
        )
    )
    report.add(
        Row(
            SUITE,
            "server CPU per put, window 5000 ms",
            cpu_on_us,
            "us",
            "window 0",
            cpu_off_us,
            1.1,
            higher_is_better=False,
            note="steadier than throughput on a shared machine",
        )
    )
    # Fewer keys make RSS growth too noisy to compare within 10%.
    keys = pick(scale, tiny=2_000, quick=300_000, full=300_000)
    memory_on = memory_per_key(work_dir, "mvcc-memory-on", 5000, keys)
    memory_off = memory_per_key(work_dir, "mvcc-memory-off", 0, keys)
    report.add(
        Row(
            SUITE,
            f"memory per key, window on ({keys:,} unchanging keys, 100 B values)",
            memory_on,
            "B",
            "window 0",
            memory_off,
            1.1,
            higher_is_better=False,
            note="server RSS growth",
        )
    )
