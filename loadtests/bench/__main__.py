"""`make bench`: runs every benchmark and prints one table (ours, baseline, ratio, goal).

Options: ``--quick`` for short runs and smaller data sets, ``--tiny`` for the smoke test's
few seconds a suite (figures meaningless, every path taken); ``--only kv,txn`` to pick
suites. Results are also written to ``reports/bench.json`` to compare runs: the table
shows each figure of the last run of the same scale (the previous file is kept as
``bench.previous.json``). Missed goals are printed last and listed in the JSON
(``missed_goals``); they do not fail the run. A suite that raises is reported and the
others still run; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from pathlib import Path

from loadtests.bench import (
    auth,
    hll_memory,
    kv,
    latency,
    mvcc,
    observability,
    pipelines,
    procedures,
    replay,
    sandboxes,
    shared,
    shared_jvm,
    sketches,
    sql,
    txn,
)
from loadtests.bench.redis_server import RedisServer
from loadtests.bench.report import Report, previous_figures
from tests.support.server_process import REPO_ROOT

SUITES = {
    "kv": kv.main,
    "auth": auth.main,
    "txn": txn.main,
    "procedures": procedures.main,
    "mvcc": mvcc.main,
    "sql": sql.main,
    "sketches": sketches.main,
    "hll_memory": hll_memory.main,
    "pipelines": pipelines.main,
    "latency": latency.main,
    "replay": replay.main,
    "sandboxes": sandboxes.main,
    "shared": shared.main,
    "shared_hazelcast": shared_jvm.hazelcast_main,
    "shared_ignite": shared_jvm.ignite_main,
    "observability": observability.main,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short runs, small data sets")
    size.add_argument("--tiny", action="store_true", help="smoke test: seconds per suite")
    parser.add_argument("--only", default="", help="comma-separated suites: " + ",".join(SUITES))
    parser.add_argument("--output", default=str(REPO_ROOT / "reports" / "bench.json"))
    arguments = parser.parse_args(argv)
    scale = "tiny" if arguments.tiny else "quick" if arguments.quick else "full"
    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()] or list(SUITES)
    unknown = [name for name in chosen if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite {unknown[0]}; known: {', '.join(SUITES)}")
    os.environ.setdefault("SHOAL_LOG_LEVEL", "WARNING")
    output = Path(arguments.output)
    report = Report(folder=output.parent)
    with RedisServer() as redis_server, tempfile.TemporaryDirectory(prefix="shoal-bench-") as work:
        for name in chosen:
            print(f"== {name}", flush=True)
            try:
                SUITES[name](report, redis_server.port, Path(work), scale)
            except Exception as error:
                # One broken suite must not cost the figures of the others.
                traceback.print_exc()
                report.fail(name, error)
    previous = previous_figures(output, scale=scale)
    print()
    print(report.table(previous))
    if output.exists():
        output.replace(output.with_name(f"{output.stem}.previous{output.suffix}"))
    report.save(output, scale=scale, suites=chosen)
    print(f"\nsaved {output}")
    # Last, so a reader of the run's end sees them without scrolling the table.
    print(report.missed_goals())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
