"""SQL benchmarks: Shoal's SQL next to DuckDB querying the same rows as an in-process Arrow
table, and a point lookup through SQL next to the SDK's get.

Data: 1,000,000 rows (id, region of 50 values, amount, ts). Latencies are medians of
repeated runs after one warm-up run (which builds the cached Arrow images; its time is
reported too).

The warm figures see no writes between queries; the same queries are then run while a
writer changes 1% of the rows a second (in ten ticks a second), so the cost of rebuilding
changed partitions' Arrow images is in the figure. The baseline then is DuckDB on its own
table with the same writer as UPDATE statements: the strongest single-process way. Shoal's
writer is a separate process (put_many), so its client work does not share the measuring
client's interpreter.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client, ConflictError
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


WRITE_SHARE_PER_S = 0.01
WRITE_TICKS_PER_S = 10
UPDATE = "UPDATE orders SET amount = amount + 1 WHERE id IN (SELECT unnest(CAST(? AS VARCHAR[])))"


def ids_of_tick(rng: random.Random, rows: int) -> list[str]:
    count = max(1, int(rows * WRITE_SHARE_PER_S / WRITE_TICKS_PER_S))
    return [f"o{rng.randrange(rows):07d}" for _ in range(count)]


def run_ticks(write: Callable[[list[str]], object], rows: int, stop: Callable[[], bool]) -> int:
    """Calls `write(ids)` on a fixed tick until `stop()`; returns the rows written."""
    rng = random.Random(11)
    period = 1 / WRITE_TICKS_PER_S
    written = 0
    next_tick = time.perf_counter()
    while not stop():
        ids = ids_of_tick(rng, rows)
        write(ids)
        written += len(ids)
        next_tick += period
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return written


def shoal_writer(target: str, rows: int, started_event: Any, stop_event: Any, written: Any) -> None:
    """A subprocess: changes 1% of the rows a second through put_many until told to stop;
    sets `started_event` once its first change is committed."""
    client = Client(target, timeout_s=60)

    def write(ids: list[str]) -> None:
        client.put_many(
            "orders",
            [
                (
                    key,
                    {"id": key, "region": "region-00", "amount": 1.0, "ts": int(time.time())},
                )
                for key in ids
            ],
        )
        started_event.set()

    started = time.perf_counter()
    count = run_ticks(write, rows, stop_event.is_set)
    written.value = count / (time.perf_counter() - started) / rows
    client.close()


class DuckWriter:
    """The same writer for DuckDB's own table, in a thread of this process."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, rows: int) -> None:
        self.cursor = connection.cursor()
        self.rows = rows
        self.stopping = threading.Event()
        self.share_per_s = 0.0
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        started = time.perf_counter()
        count = run_ticks(
            lambda ids: self.cursor.execute(UPDATE, [ids]), self.rows, self.stopping.is_set
        )
        self.share_per_s = count / (time.perf_counter() - started) / self.rows

    def __enter__(self) -> DuckWriter:
        self.thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join()
        self.cursor.close()


def retried(run: Callable[[], Any], retries: list[int], attempts: int = 5) -> Any:
    """Runs a query as a user would under writes: again after ABORTED (its snapshot's read
    version left the window while it was built), the retries counted in its time."""
    for attempt in range(attempts):
        try:
            return run()
        except ConflictError:
            retries.append(1)
            if attempt == attempts - 1:
                raise
    return None


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


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    rows = pick(scale, tiny=5_000, quick=100_000, full=1_000_000)
    repeats = pick(scale, tiny=2, quick=5, full=15)
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
    writing = duckdb.connect()
    writing.register("source", data)
    writing.execute("CREATE TABLE orders AS SELECT * FROM source")
    writing.unregister("source")
    with DuckWriter(writing, rows) as duck_writer:
        duck_group_writes = median_ms(lambda: writing.sql(GROUP_BY).to_arrow_table(), repeats)
        duck_selective_writes = median_ms(
            lambda: writing.sql(SELECTIVE, params=[threshold]).to_arrow_table(), repeats
        )
    writing.close()

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
        context = multiprocessing.get_context("spawn")
        started_event = context.Event()
        stop_event = context.Event()
        shoal_share = context.Value("d", 0.0)
        writer = context.Process(
            target=shoal_writer,
            args=(server.target, rows, started_event, stop_event, shoal_share),
        )
        writer.start()
        retries: list[int] = []
        try:
            # A process started on a busy machine takes seconds to import and connect.
            if not started_event.wait(120):
                raise RuntimeError("the SQL writer process never committed a change")
            ours_group_writes = median_ms(
                lambda: retried(lambda: client.sql(GROUP_BY).to_arrow(), retries), repeats
            )
            ours_selective_writes = median_ms(
                lambda: retried(lambda: client.sql(SELECTIVE, [threshold]).to_arrow(), retries),
                repeats,
            )
        finally:
            stop_event.set()
            writer.join(60)
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
    writes_note = (
        f"writer changed {shoal_share.value:.2%} of rows/s in Shoal, "
        f"{duck_writer.share_per_s:.2%} in DuckDB (asked: {WRITE_SHARE_PER_S:.0%}); "
        f"{len(retries)} query(ies) retried after ABORTED (read version left the window)"
    )
    report.add(
        Row(
            SUITE,
            f"GROUP BY region, {rows:,} rows, 1% of rows/s changing",
            ours_group_writes,
            "ms",
            "DuckDB table + UPDATEs",
            duck_group_writes,
            3.0,
            higher_is_better=False,
            note=writes_note,
        )
    )
    report.add(
        Row(
            SUITE,
            "selective filter (1% of rows), 1% of rows/s changing",
            ours_selective_writes,
            "ms",
            "DuckDB table + UPDATEs",
            duck_selective_writes,
            3.0,
            higher_is_better=False,
            note=writes_note,
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
