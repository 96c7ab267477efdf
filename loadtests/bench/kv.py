"""Key-value benchmarks: Shoal next to a bare gRPC server and redis-py in the same run.

Figures (issue: foundation): sequential get and put latency and rate, 64 gets in
flight with the asyncio SDK, get-many of 1,000 keys, put under fsync batch and
always, memory per key for 1,000,000 keys of 100-byte values, restart time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis
import redis.asyncio as redis_async
from redis.utils import HIREDIS_AVAILABLE

from loadtests.bench.redis_server import RedisServer
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import AsyncClient, Client
from tests.support.server_process import REPO_ROOT, ServerProcess

VALUE_100 = "v" * 98  # 100 bytes once JSON-quoted
SUITE = "kv"
# The strongest redis-py set-up: the hiredis reply parser (in the dev extra).
REDIS_PARSER = "hiredis" if HIREDIS_AVAILABLE else "pure-Python parser"
ROUNDS = 5


def interleave(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    """Runs each measurement `rounds` times, taking turns, and keeps every result."""
    results: dict[str, list[Any]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return results


def merge_sequential(slices: list[dict[str, Any]]) -> dict[str, float]:
    """The median rate of the slices, and percentiles over all their latencies."""
    latencies = [latency for item in slices for latency in item["latencies"]]
    return {
        "rate": statistics.median([item["rate"] for item in slices]),
        "p50_ms": percentile_ms(latencies, 0.5),
        "p99_ms": percentile_ms(latencies, 0.99),
    }


def timed_calls(call: Callable[[int], Any], seconds: float) -> tuple[float, list[float]]:
    """Runs `call(i)` repeatedly for about `seconds`; returns (calls per second, latencies)."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    index = 0
    clock = time.perf_counter
    while True:
        before = clock()
        call(index)
        after = clock()
        latencies.append(after - before)
        index += 1
        if after >= deadline:
            break
    return index / (clock() - started), latencies


def percentile_ms(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


class BareServer:
    """The bare dict-over-gRPC server as a subprocess."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.target = ""

    def __enter__(self) -> BareServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loadtests.bench.bare_server"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.target = line.strip().split(" ", 1)[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sequential(get: Callable[[str], Any], seconds: float, *, keys: int = 1000) -> dict[str, Any]:
    key_names = [f"k{i}" for i in range(keys)]
    rate, latencies = timed_calls(lambda i: get(key_names[i % keys]), seconds)
    return {"rate": rate, "latencies": latencies}


def concurrent_gets(
    target: str, map_name: str, seconds: float, in_flight: int = 64, *, token: str | None = None
) -> float:
    async def run() -> float:
        client = AsyncClient(target, token=token)
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            index = offset
            while time.perf_counter() < deadline:
                await client.get(map_name, f"k{index % 1000}")
                index += in_flight
                done += 1

        await client.get(map_name, "k0")
        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(in_flight)))
        elapsed = time.perf_counter() - started
        await client.close()
        return done / elapsed

    return asyncio.run(run())


def redis_concurrent_gets(port: int, seconds: float, in_flight: int = 64) -> float:
    async def run() -> float:
        client = redis_async.Redis(port=port, max_connections=in_flight)
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            index = offset
            while time.perf_counter() < deadline:
                await client.get(f"k{index % 1000}")
                index += in_flight
                done += 1

        await client.get("k0")
        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(in_flight)))
        elapsed = time.perf_counter() - started
        await client.aclose()
        return done / elapsed

    return asyncio.run(run())


def run(
    report: Report, redis_port: int, work_dir: Path, *, seconds: float, keys_for_memory: int
) -> None:
    value = VALUE_100
    redis_client = redis.Redis(port=redis_port)
    redis_client.flushall()
    pipe = redis_client.pipeline(transaction=False)
    for index in range(1000):
        pipe.set(f"k{index}", f'"{value}"')
    pipe.execute()

    keys_1000 = [f"k{i}" for i in range(1000)]

    def redis_mget_decoded(keys: list[str]) -> object:
        # The SDK's get_many hands back decoded values; a Redis user who wants the same
        # objects decodes MGET's bytes, with orjson (the fastest decoder at hand).
        loads = orjson.loads
        return [None if raw is None else loads(raw) for raw in redis_client.mget(keys)]

    rounds = ROUNDS
    slice_s = seconds / rounds
    shoal = ServerProcess(work_dir / "kv-batch", ["--fsync", "batch"]).start()
    always = ServerProcess(work_dir / "kv-always", ["--fsync", "always"]).start()
    try:
        with BareServer() as bare:
            bare_client = Client(bare.target)
            client = Client(shoal.target)
            always_client = Client(always.target)
            for each in (client, always_client):
                each.create_map("kv")
            for each in (bare_client, client, always_client):
                each.put_many("kv", {f"k{i}": value for i in range(1000)})
            # The machine is shared and noisy: measure in short slices taken in turn, so
            # every target sees the same conditions, and keep the median slice.
            sequential_results = interleave(
                {
                    "bare": lambda: sequential(lambda key: bare_client.get("kv", key), slice_s),
                    "ours": lambda: sequential(lambda key: client.get("kv", key), slice_s),
                    "redis": lambda: sequential(redis_client.get, slice_s),
                },
                rounds,
            )
            bare_seq, ours_seq, redis_seq = (
                merge_sequential(sequential_results[name]) for name in ("bare", "ours", "redis")
            )
            concurrent_results = interleave(
                {
                    "bare": lambda: concurrent_gets(bare.target, "kv", slice_s),
                    "ours": lambda: concurrent_gets(shoal.target, "kv", slice_s),
                    "redis": lambda: redis_concurrent_gets(redis_port, slice_s),
                },
                rounds,
            )
            bare_conc, ours_conc, redis_conc = (
                statistics.median(concurrent_results[name]) for name in ("bare", "ours", "redis")
            )
            many_results = interleave(
                {
                    "bare": lambda: timed_calls(
                        lambda i: bare_client.get_many("kv", keys_1000), slice_s
                    )[0],
                    "ours": lambda: timed_calls(
                        lambda i: client.get_many("kv", keys_1000), slice_s
                    )[0],
                    "redis": lambda: timed_calls(lambda i: redis_mget_decoded(keys_1000), slice_s)[
                        0
                    ],
                    "redis raw": lambda: timed_calls(
                        lambda i: redis_client.mget(keys_1000), slice_s
                    )[0],
                },
                rounds,
            )
            bare_many, ours_many, redis_many, redis_raw_many = (
                statistics.median(many_results[name])
                for name in ("bare", "ours", "redis", "redis raw")
            )
            put_latencies: list[float] = []
            always_latencies: list[float] = []

            def timed_put(target: Client, latencies: list[float]) -> float:
                rate, samples = timed_calls(
                    lambda i: target.put("kv", f"p{i}-{len(latencies)}", value), slice_s
                )
                latencies.extend(samples)
                return rate

            put_results = interleave(
                {
                    "bare": lambda: timed_calls(
                        lambda i: bare_client.put("kv", f"p{i}", value), slice_s
                    )[0],
                    "ours": lambda: timed_put(client, put_latencies),
                    "always": lambda: timed_put(always_client, always_latencies),
                },
                rounds,
            )
            bare_put, ours_put, always_put = (
                statistics.median(put_results[name]) for name in ("bare", "ours", "always")
            )
            for each in (bare_client, client, always_client):
                each.close()
    finally:
        shoal.stop()
        always.stop()

    report.add(
        Row(SUITE, "get sequential", ours_seq["rate"], "ops/s", "bare gRPC", bare_seq["rate"], 0.8)
    )
    report.add(
        Row(
            SUITE,
            "get sequential vs redis",
            ours_seq["rate"],
            "ops/s",
            "redis-py GET",
            redis_seq["rate"],
        )
    )
    report.add(
        Row(
            SUITE,
            "get p50",
            ours_seq["p50_ms"],
            "ms",
            "bare gRPC",
            bare_seq["p50_ms"],
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "get p99",
            ours_seq["p99_ms"],
            "ms",
            "bare gRPC",
            bare_seq["p99_ms"],
            higher_is_better=False,
        )
    )
    report.add(
        Row(SUITE, "get 64 in flight (async SDK)", ours_conc, "ops/s", "bare gRPC", bare_conc, 0.8)
    )
    report.add(
        Row(SUITE, "get 64 in flight vs redis", ours_conc, "ops/s", "redis.asyncio", redis_conc)
    )
    report.add(
        Row(
            SUITE,
            "get-many 1,000 keys",
            ours_many * 1000,
            "keys/s",
            f"redis-py MGET ({REDIS_PARSER}) + orjson",
            redis_many * 1000,
            1.0,
            note="same work: 1,000 100-byte JSON values as Python objects on both sides",
        )
    )
    report.add(
        Row(
            SUITE,
            "get-many 1,000 vs raw MGET bytes",
            ours_many * 1000,
            "keys/s",
            f"redis-py MGET ({REDIS_PARSER}), undecoded",
            redis_raw_many * 1000,
            note="Redis leaves the values as bytes; Shoal decodes them",
        )
    )
    report.add(
        Row(
            SUITE,
            "get-many 1,000 vs bare",
            ours_many * 1000,
            "keys/s",
            "bare gRPC",
            bare_many * 1000,
        )
    )
    report.add(Row(SUITE, "put fsync=batch", ours_put, "ops/s", "bare gRPC", bare_put, 0.6))
    report.add(
        Row(
            SUITE,
            "put fsync=batch p99",
            percentile_ms(put_latencies, 0.99),
            "ms",
            note="latency of one put",
            higher_is_better=False,
        )
    )

    report.add(Row(SUITE, "put fsync=always", always_put, "ops/s", "bare gRPC", bare_put))
    report.add(
        Row(
            SUITE,
            "put fsync=always p99",
            percentile_ms(always_latencies, 0.99),
            "ms",
            higher_is_better=False,
        )
    )

    memory_and_restart(report, redis_client, work_dir, keys_for_memory)
    redis_client.close()


def load_redis_keys(port: int, keys: int, document: str, batch: int) -> None:
    """SETs `keys` keys of the same JSON document as Shoal stores, pipelined in batches."""
    client = redis.Redis(port=port)
    pipe = client.pipeline(transaction=False)
    for index in range(keys):
        pipe.set(f"key:{index:08d}", document)
        if index % batch == batch - 1:
            pipe.execute()
    pipe.execute()
    client.close()


def memory_and_restart(
    report: Report, redis_client: redis.Redis, work_dir: Path, keys: int
) -> None:
    value = VALUE_100
    batch = 5000
    # Both servers measured alike: RSS growth of a fresh process loading the same 100-byte
    # JSON documents (Redis's used_memory leaves out the allocator's overhead that the
    # coordinator's RSS includes).
    with RedisServer() as fresh_redis:
        redis_before = rss_bytes(fresh_redis.pid)
        load_redis_keys(fresh_redis.port, keys, json.dumps(value), batch)
        redis_per_key = (rss_bytes(fresh_redis.pid) - redis_before) / keys

    shoal = ServerProcess(work_dir / "kv-memory", ["--fsync", "batch"]).start()
    try:
        client = Client(shoal.target, timeout_s=120)
        client.create_map("mem")
        assert shoal.process is not None
        before = rss_bytes(shoal.process.pid)
        started = time.perf_counter()
        for start in range(0, keys, batch):
            client.put_many(
                "mem", [(f"key:{i:08d}", value) for i in range(start, min(keys, start + batch))]
            )
        load_s = time.perf_counter() - started
        after = rss_bytes(shoal.process.pid)
        client.close()
        ours_per_key = (after - before) / keys
        report.add(
            Row(
                SUITE,
                f"memory per key ({keys:,} keys, 100 B values)",
                ours_per_key,
                "B",
                "redis RSS growth",
                redis_per_key,
                2.0,
                higher_is_better=False,
                note="RSS growth of each server process, same JSON documents",
            )
        )
        report.add(
            Row(SUITE, f"load {keys:,} keys by put_many", load_s, "s", higher_is_better=False)
        )
        shoal.stop(timeout_s=300)
        started = time.perf_counter()
        shoal.start(timeout_s=300)
        restart_s = time.perf_counter() - started
        report.add(
            Row(
                SUITE,
                f"restart after shutdown, {keys:,} keys",
                restart_s,
                "s",
                "re-put time",
                load_s,
                1.0,
                higher_is_better=False,
            )
        )
        client = Client(shoal.target)
        assert client.get("mem", f"key:{keys - 1:08d}") == value
        client.close()
        shoal.kill()
        started = time.perf_counter()
        shoal.start(timeout_s=300)
        crash_restart_s = time.perf_counter() - started
        report.add(
            Row(
                SUITE,
                f"restart after kill -9, {keys:,} keys",
                crash_restart_s,
                "s",
                "re-put time",
                load_s,
                1.0,
                higher_is_better=False,
            )
        )
    finally:
        shoal.stop(timeout_s=300)


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    run(
        report,
        redis_port,
        work_dir,
        seconds=pick(scale, tiny=0.25, quick=2.0, full=5.0),
        keys_for_memory=pick(scale, tiny=2_000, quick=100_000, full=1_000_000),
    )
