"""Sandbox benchmarks: seeding a sandbox next to production's own restart, and a diff next to
DuckDB's own time for the same join.

Data: 1,000,000 keys of one map with a schema (region, amount); 100,000 with --quick,
2,000 with --tiny; `SHOAL_BENCH_SANDBOX_KEYS` sets the count whatever the scale.

* Seeding: `sandboxes.create(from_snapshot=True)` until the sandbox serves, next to a
  restart of production with the same data (SIGTERM, which writes a checkpoint, then
  start until it serves). Goal: at most 1.0x.
* Diff: the sandbox changes 1% of the keys; `sandboxes.diff` (both sides read at a
  snapshot, the sandbox's table streamed over gRPC, the join in DuckDB) next to DuckDB
  joining the same two tables held as Arrow in-process. Goal: at most 3x, and under 5 s.
  The first diff also builds the SQL images of both sides; it is reported apart.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client, SandboxInfo
from tests.support.server_process import ServerProcess

SUITE = "sandboxes"
KEYS_ENV = "SHOAL_BENCH_SANDBOX_KEYS"
CHANGED_FRACTION = 0.01
DIFF_BUDGET_MS = 5000.0
JOIN = """
SELECT count(*) FILTER (WHERE s.__key IS NULL) AS only_in_production,
       count(*) FILTER (WHERE p.__key IS NULL) AS only_in_sandbox,
       count(*) FILTER (WHERE p.__key IS NOT NULL AND s.__key IS NOT NULL) AS different
FROM production_side p FULL OUTER JOIN sandbox_side s ON p.__key = s.__key
WHERE p.__key IS NULL OR s.__key IS NULL
   OR p.region IS DISTINCT FROM s.region OR p.amount IS DISTINCT FROM s.amount
"""


def key_count(scale: str) -> int:
    given = os.environ.get(KEYS_ENV)
    if given:
        return int(given)
    return pick(scale, tiny=2_000, quick=100_000, full=1_000_000)


def rows_of(count: int) -> tuple[list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    keys = [f"o{index:08d}" for index in range(count)]
    regions = [f"region-{index % 50:02d}" for index in range(count)]
    amounts = rng.integers(0, 100_000, count)
    return keys, regions, amounts


def load(client: Client, keys: list[str], regions: list[str], amounts: np.ndarray) -> None:
    for start in range(0, len(keys), 10_000):
        client.put_many(
            "orders",
            [
                (keys[index], {"region": regions[index], "amount": int(amounts[index])})
                for index in range(start, min(start + 10_000, len(keys)))
            ],
        )


def duckdb_join_ms(count: int, changed: list[int], repeats: int) -> float:
    """DuckDB's own time for the diff's join on two in-process Arrow tables."""
    keys, regions, amounts = rows_of(count)
    production = pa.table(
        {"__key": keys, "__version": np.ones(count, np.int64), "region": regions, "amount": amounts}
    )
    changed_amounts = amounts.copy()
    changed_amounts[changed] = -1
    sandbox = production.set_column(3, "amount", pa.array(changed_amounts))
    connection = duckdb.connect()
    connection.register("production_side", production)
    connection.register("sandbox_side", sandbox)
    connection.sql(JOIN).fetchall()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        found = connection.sql(JOIN).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    assert found[0][2] == len(changed), found
    return statistics.median(samples)


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    count = key_count(scale)
    keys, regions, amounts = rows_of(count)
    server = ServerProcess(work_dir / "sandboxes", ["--fsync", "batch"]).start()
    try:
        with Client(server.target, timeout_s=600) as client:
            client.create_map("orders", schema={"region": "string", "amount": "int"})
            load(client, keys, regions, amounts)
        # Production's restart with this data: a checkpoint at SIGTERM, then a start.
        started = time.perf_counter()
        server.stop(timeout_s=600)
        stopped = time.perf_counter()
        server.start(timeout_s=600)
        restart_s = time.perf_counter() - started
        start_s = time.perf_counter() - stopped

        with Client(server.target, timeout_s=600) as client:
            started = time.perf_counter()
            info = client.sandboxes.create("bench", from_snapshot=True, maps=["orders"])
            create_s = time.perf_counter() - started
            assert isinstance(info, SandboxInfo) and info.seeded_entries == count, info

            step = int(1 / CHANGED_FRACTION)
            changed = list(range(0, count, step))
            with client.sandbox("bench") as sandbox:
                for start in range(0, len(changed), 10_000):
                    sandbox.put_many(
                        "orders",
                        [
                            (keys[index], {"region": regions[index], "amount": -1})
                            for index in changed[start : start + 10_000]
                        ],
                    )
            started = time.perf_counter()
            first = client.sandboxes.diff("bench", maps=["orders"])
            first_diff_s = time.perf_counter() - started
            samples = []
            for _ in range(pick(scale, tiny=1, quick=3, full=3)):
                started = time.perf_counter()
                report_found = client.sandboxes.diff("bench", maps=["orders"])
                samples.append(time.perf_counter() - started)
            diff_ms = statistics.median(samples) * 1000
            assert isinstance(first, dict) and isinstance(report_found, dict)
            assert report_found["maps"]["orders"]["different"] == len(changed), report_found
            client.sandboxes.delete("bench")
    finally:
        server.stop(timeout_s=600)
    join_ms = duckdb_join_ms(count, changed, pick(scale, tiny=1, quick=5, full=5))

    report.add(
        Row(
            SUITE,
            f"create a sandbox seeded with {count:,} keys",
            create_s,
            "s",
            "production restart (stop + start)",
            restart_s,
            1.0,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "production start alone (same data)",
            start_s,
            "s",
            higher_is_better=False,
            note="the restart's second half",
        )
    )
    report.add(
        Row(
            SUITE,
            f"diff of {count:,} keys, 1% different",
            diff_ms,
            "ms",
            "DuckDB join on Arrow",
            join_ms,
            3.0,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "diff against its 5 s budget",
            diff_ms,
            "ms",
            "5 s",
            DIFF_BUDGET_MS,
            1.0,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "first diff (builds both sides' Arrow images)",
            first_diff_s * 1000,
            "ms",
            higher_is_better=False,
        )
    )
