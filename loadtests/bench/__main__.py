"""`make bench`: runs every benchmark and prints one table (ours, baseline, ratio, goal).

Options: ``--quick`` for short runs and smaller data sets; ``--only kv,txn`` to pick
suites. Results are also written to ``reports/bench.json`` to compare runs: the table
shows each figure of the last run of the same kind (the previous file is kept as
``bench.previous.json``). A suite that raises is reported and the others still run;
the exit code is then 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from loadtests.bench import hll_memory, kv, mvcc, pipelines, sketches, sql, txn
from loadtests.bench.report import Report, previous_figures
from tests.support.server_process import REPO_ROOT

REDIS_PORT = 6390
SUITES = {
    "kv": kv.main,
    "txn": txn.main,
    "mvcc": mvcc.main,
    "sql": sql.main,
    "sketches": sketches.main,
    "hll_memory": hll_memory.main,
    "pipelines": pipelines.main,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, small data sets")
    parser.add_argument("--only", default="", help="comma-separated suites: " + ",".join(SUITES))
    parser.add_argument("--output", default=str(REPO_ROOT / "reports" / "bench.json"))
    arguments = parser.parse_args()
    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()] or list(SUITES)
    unknown = [name for name in chosen if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite {unknown[0]}; known: {', '.join(SUITES)}")
    environment = {**os.environ, "REDIS_PORT": str(REDIS_PORT)}
    redis_script = REPO_ROOT / "deploy" / "local" / "redis.sh"
    subprocess.run([str(redis_script), "up"], check=True, env=environment)
    report = Report()
    try:
        with tempfile.TemporaryDirectory(prefix="shoal-bench-") as work:
            for name in chosen:
                print(f"== {name}", flush=True)
                try:
                    SUITES[name](report, REDIS_PORT, Path(work), arguments.quick)
                except Exception as error:
                    # One broken suite must not cost the figures of the others.
                    traceback.print_exc()
                    report.fail(name, error)
    finally:
        subprocess.run([str(redis_script), "down"], check=False, env=environment)
    output = Path(arguments.output)
    previous = previous_figures(output, quick=arguments.quick)
    print()
    print(report.table(previous))
    if output.exists():
        output.replace(output.with_name(f"{output.stem}.previous{output.suffix}"))
    report.save(output, quick=arguments.quick, suites=chosen)
    print(f"\nsaved {output}")
    missed = [row for row in report.rows if row.met is False]
    if missed:
        print(f"{len(missed)} goal(s) not met: " + "; ".join(row.name for row in missed))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
