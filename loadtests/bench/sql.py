"""SQL benchmarks: Shoal's SQL next to DuckDB querying the same rows as an in-process Arrow
table, and a point lookup through SQL next to the SDK's get.

Data: 1,000,000 rows (id, region of 50 values, amount, ts). Latencies are medians of
repeated runs after one warm-up run (which builds the cached Arrow images; its time is
reported too).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from loadtests.bench.report import Report, Row
from shoal import Client
from tests.support.server_process import ServerProcess

SUITE = "sql"
GROUP_BY = "SELECT region, count(*), sum(amount), avg(amount) FROM orders GROUP BY region"
SELECTIVE = "SELECT id, region, amount FROM orders WHERE amount > ?"
POINT = "SELECT id, region, amount, ts FROM orders WHERE __key = ?"


def median_ms(run: Callable[[], Any], repeats: int) -> float:
    run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def generate(rows: int) -> pa.Table:
    rng = np.random.default_rng(42)
    return pa.table(
        {
            "id": pa.array([f"o{index:07d}" for index in range(rows)]),
            "region": pa.array([f"region-{index % 50:02d}" for index in range(rows)]),
            "amount": pa.array(rng.random(rows) * 1000),
            "ts": pa.array(np.arange(rows, dtype=np.int64) + 1_700_000_000),
        }
    )


def main(report: Report, redis_port: int, work_dir: Path, quick: bool) -> None:
    rows = 100_000 if quick else 1_000_000
    repeats = 5 if quick else 15
    data = generate(rows)
    threshold = 990.0  # 1% of amounts are above it

    connection = duckdb.connect()
    connection.register("orders", data)
    duck_group = median_ms(lambda: connection.sql(GROUP_BY).to_arrow_table(), repeats)
    duck_selective = median_ms(
        lambda: connection.sql(SELECTIVE, params=[threshold]).to_arrow_table(), repeats
    )
    duck_point = median_ms(
        lambda: connection.sql(
            "SELECT id, region, amount, ts FROM orders WHERE id = ?", params=["o0000042"]
        ).to_arrow_table(),
        repeats,
    )

    server = ServerProcess(work_dir / "sql", ["--fsync", "batch"]).start()
    try:
        client = Client(server.target, timeout_s=300)
        client.create_map(
            "orders",
            schema={
                "id": {"type": "string", "required": True},
                "region": "string",
                "amount": "float",
                "ts": "int",
            },
        )
        started = time.perf_counter()
        records = data.to_pylist()
        for start in range(0, rows, 5000):
            client.put_many("orders", [(row["id"], row) for row in records[start : start + 5000]])
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        client.sql(GROUP_BY).to_arrow()
        first_query_s = time.perf_counter() - started
        ours_group = median_ms(lambda: client.sql(GROUP_BY).to_arrow(), repeats)
        ours_selective = median_ms(lambda: client.sql(SELECTIVE, [threshold]).to_arrow(), repeats)
        ours_point = median_ms(lambda: client.sql(POINT, ["o0000042"]).fetchall(), repeats * 20)
        sdk_get = median_ms(lambda: client.get("orders", "o0000042"), repeats * 20)
        check = client.sql("SELECT count(*) FROM orders").fetchall()[0][0]
        assert check == rows, f"loaded {check} rows, not {rows}"
        client.close()
    finally:
        server.stop(timeout_s=300)

    report.add(
        Row(
            SUITE,
            f"GROUP BY region, {rows:,} rows",
            ours_group,
            "ms",
            "DuckDB on Arrow",
            duck_group,
            3.0,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "selective filter (1% of rows)",
            ours_selective,
            "ms",
            "DuckDB on Arrow",
            duck_selective,
            3.0,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "point lookup through SQL",
            ours_point,
            "ms",
            "SDK get",
            sdk_get,
            2.0,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "point lookup vs DuckDB",
            ours_point,
            "ms",
            "DuckDB on Arrow",
            duck_point,
            higher_is_better=False,
        )
    )
    report.add(
        Row(
            SUITE,
            "first query (builds Arrow images)",
            first_query_s * 1000,
            "ms",
            higher_is_better=False,
            note="once per change of a partition",
        )
    )
    report.add(Row(SUITE, f"load {rows:,} rows by put_many", load_s, "s", higher_is_better=False))
