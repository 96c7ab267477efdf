"""HyperLogLog memory by distinct count: a Shoal hll key next to a Redis HyperLogLog key.

Both sides at the same error: Redis keeps 2^14 registers (0.81% standard error), so
Shoal is measured at lg_k=14. For each distinct count a fresh key gets that many items
(through the SDK into a real server; PFADD into a real redis-server), then:

- Shoal: the bytes the grid holds for the key (its `memory_bytes`: the stored image,
  the key and CPython's object and dict-slot overhead, as `shoal sketches list` shows);
- Redis: `MEMORY USAGE key` (the value, the key and Redis's own overhead).

Redis keeps a sparse encoding up to `hll-sparse-max-bytes` (3,000 bytes by default)
and DataSketches a coupon list or set up to about 2^lg_k / 10 items, so the small
counts compare the two sparse forms. `make bench BENCH_ARGS="--only hll_memory"` runs it
inside the benchmark suite; `python -m loadtests.bench.hll_memory` prints the table the
README shows (it starts and stops its own redis-server through deploy/local/redis.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.server_process import REPO_ROOT, ServerProcess

SUITE = "hll_memory"
LG_K = 14
COUNTS = (10, 100, 500, 1_000, 2_000, 5_000, 100_000, 1_000_000)
BATCH = 10_000
REDIS_PORT = 6391


def measure(
    redis_port: int, work_dir: Path, counts: tuple[int, ...] = COUNTS
) -> list[tuple[int, int, int]]:
    """(distinct items, Shoal bytes, Redis bytes) for each count."""
    redis_client = redis.Redis(port=redis_port)
    redis_client.flushall()
    server = ServerProcess(work_dir / "hll-memory", ["--fsync", "off"]).start()
    rows = []
    try:
        with Client(server.target, timeout_s=120) as client:
            for count in counts:
                map_name = f"hll_{count}"
                client.sketches.create(map_name, kind="hll", lg_k=LG_K)
                items = [f"item-{index}" for index in range(count)]
                pipeline = redis_client.pipeline(transaction=False)
                for start in range(0, count, BATCH):
                    batch = items[start : start + BATCH]
                    client.sketches.add(map_name, "key", batch)
                    pipeline.pfadd("key-" + str(count), *batch)
                pipeline.execute()
                [info] = [item for item in client.sketches.list() if item.name == map_name]
                redis_bytes = int(redis_client.memory_usage("key-" + str(count), samples=0) or 0)
                rows.append((count, int(info.memory_bytes), redis_bytes))
    finally:
        server.stop()
        redis_client.close()
    return rows


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    counts = pick(scale, tiny=COUNTS[:2], quick=COUNTS[:-1], full=COUNTS)
    for count, shoal_bytes, redis_bytes in measure(redis_port, work_dir, counts):
        report.add(
            Row(
                SUITE,
                f"hll memory, {count:,} distinct (lg_k={LG_K})",
                shoal_bytes,
                "B",
                "redis MEMORY USAGE",
                redis_bytes,
                higher_is_better=False,
                note="same standard error (0.81%)",
            )
        )


def markdown(rows: list[tuple[int, int, int]]) -> str:
    lines = [
        "| distinct items | Shoal hll, lg_k=14 (bytes) | Redis HyperLogLog (bytes) "
        "| Shoal / Redis |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for count, shoal_bytes, redis_bytes in rows:
        lines.append(
            f"| {count:,} | {shoal_bytes:,} | {redis_bytes:,} | {shoal_bytes / redis_bytes:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    environment = {**os.environ, "REDIS_PORT": str(REDIS_PORT)}
    script = REPO_ROOT / "deploy" / "local" / "redis.sh"
    subprocess.run([str(script), "up"], check=True, env=environment)
    try:
        with tempfile.TemporaryDirectory(prefix="shoal-hll-memory-") as work:
            print(markdown(measure(REDIS_PORT, Path(work))))
    finally:
        subprocess.run([str(script), "down"], check=False, env=environment)
    sys.exit(0)
