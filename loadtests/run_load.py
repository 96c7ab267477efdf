"""`make load`: a headless Locust run against Shoal, with an HTML and CSV report.

Starts a coordinator on the embedded memory backend unless a host is given
(``--host`` or ``SHOAL_LOAD_HOST``), runs Locust's own command line headless (the data
set is preloaded by the locustfile when the test starts), writes ``reports/locust.html``
and ``reports/locust_*.csv``, and exits non-zero when the share of failed requests
passes ``--fail-ratio`` (1% by default), when no request was made, or when the load
test itself raised an exception. ``--workers N`` runs Locust distributed: one master
and N worker processes, as the README's distributed mode describes.

    python -m loadtests.run_load --users 50 --run-time 1m --profile mixed,transfers
    python -m loadtests.run_load --host grpc://10.0.0.5:50051 --workers 2 -- --loglevel DEBUG
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from loadtests.locust.catalog import PROFILES, user_classes
from loadtests.locust.settings import SettingsError
from tests.support.server_process import REPO_ROOT, ServerProcess

LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
REPORT_PREFIX = "locust"
# After the run time, users finish the task in hand (for up to this long) before stopping,
# so no call is cut off half-way and counted as anything.
STOP_TIMEOUT_S = 10
WORKER_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Outcome:
    requests: int
    failures: int
    exceptions: int

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 1.0


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    environment = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.run_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default=environment.get("SHOAL_LOAD_HOST", ""),
        help="grpc://host:port of a running coordinator (default: start one; SHOAL_LOAD_HOST)",
    )
    parser.add_argument(
        "-u",
        "--users",
        type=int,
        default=int(environment.get("SHOAL_LOAD_USERS", "20")),
        help="simulated users (SHOAL_LOAD_USERS, default 20)",
    )
    parser.add_argument(
        "-r",
        "--spawn-rate",
        type=float,
        default=float(environment.get("SHOAL_LOAD_SPAWN_RATE", "10")),
        help="users started per second (SHOAL_LOAD_SPAWN_RATE, default 10)",
    )
    parser.add_argument(
        "-t",
        "--run-time",
        default=environment.get("SHOAL_LOAD_RUN_TIME", "30s"),
        help="how long, in Locust's format: 30s, 5m, 1h30m (SHOAL_LOAD_RUN_TIME, default 30s)",
    )
    parser.add_argument(
        "--profile",
        default=environment.get("SHOAL_LOAD_PROFILE", "mixed"),
        help="comma-separated profiles, or 'all' (SHOAL_LOAD_PROFILE, default mixed): "
        + ", ".join(PROFILES),
    )
    parser.add_argument(
        "--fail-ratio",
        type=float,
        default=float(environment.get("SHOAL_LOAD_FAIL_RATIO", "0.01")),
        help="highest acceptable share of failed requests (SHOAL_LOAD_FAIL_RATIO, default 0.01)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(environment.get("SHOAL_LOAD_WORKERS", "0")),
        help="run distributed: one Locust master and this many workers (default 0: one process)",
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=REPO_ROOT / "reports",
        help="folder of locust.html and the CSV files (default reports/)",
    )
    parser.add_argument(
        "--fsync", default="batch", help="fsync policy of the server started here (default batch)"
    )
    parser.add_argument(
        "locust_args", nargs="*", help="after --: more options passed to locust as they are"
    )
    arguments = parser.parse_args(argv)
    if arguments.users < 1 or arguments.spawn_rate <= 0 or arguments.workers < 0:
        parser.error("--users and --spawn-rate must be positive and --workers not negative")
    if not 0 <= arguments.fail_ratio <= 1:
        parser.error("--fail-ratio is a share between 0 and 1, like 0.01 for 1%")
    try:
        user_classes(arguments.profile)
    except SettingsError as error:
        parser.error(str(error))
    return arguments


def locust_environment(arguments: argparse.Namespace) -> dict[str, str]:
    """The environment of every Locust process: the locustfile runs the profiles that
    SHOAL_LOAD_PROFILE names, on the master and on each worker alike."""
    return {**os.environ, "SHOAL_LOAD_PROFILE": arguments.profile}


def locust_command(arguments: argparse.Namespace, host: str, role: Sequence[str] = ()) -> list[str]:
    prefix = arguments.reports / REPORT_PREFIX
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--users",
        str(arguments.users),
        "--spawn-rate",
        str(arguments.spawn_rate),
        "--run-time",
        arguments.run_time,
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--html",
        f"{prefix}.html",
        "--csv",
        str(prefix),
        # The failure ratio is judged here, against --fail-ratio, not on any failure.
        "--exit-code-on-error",
        "0",
        *role,
        *arguments.locust_args,
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_locust(arguments: argparse.Namespace, host: str) -> int:
    """Runs Locust to the end; returns the master's (or the single process's) exit code."""
    environment = locust_environment(arguments)
    if arguments.workers == 0:
        return subprocess.run(
            locust_command(arguments, host), cwd=REPO_ROOT, env=environment, check=False
        ).returncode
    master_port = free_port()
    master = locust_command(
        arguments,
        host,
        [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(arguments.workers),
            "--expect-workers-max-wait",
            str(WORKER_START_TIMEOUT_S),
        ],
    )
    worker = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
    ]
    with ExitStack() as cleanup:
        workers = []
        for index in range(arguments.workers):
            log = cleanup.enter_context(
                (arguments.reports / f"{REPORT_PREFIX}_worker_{index}.log").open("w")
            )
            process = subprocess.Popen(
                worker, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
            cleanup.callback(_reap, process)
            workers.append(process)
        code = subprocess.run(master, cwd=REPO_ROOT, env=environment, check=False).returncode
        for process in workers:
            # The master tells its workers to quit when the run ends.
            try:
                process.wait(STOP_TIMEOUT_S + 20)
            except subprocess.TimeoutExpired:
                print(f"load: worker {process.pid} did not quit; killing it", file=sys.stderr)
        return code


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def read_outcome(reports: Path) -> Outcome:
    with (reports / f"{REPORT_PREFIX}_stats.csv").open(newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    total = rows.get("Aggregated", {"Request Count": "0", "Failure Count": "0"})
    with (reports / f"{REPORT_PREFIX}_exceptions.csv").open(newline="") as exceptions_file:
        exceptions = sum(int(row["Count"]) for row in csv.DictReader(exceptions_file))
    return Outcome(int(total["Request Count"]), int(total["Failure Count"]), exceptions)


def judge(outcome: Outcome, fail_ratio: float) -> list[str]:
    """The reasons the run fails; empty when it passes."""
    reasons = []
    if outcome.requests == 0:
        reasons.append("no request was made")
    elif outcome.failure_ratio > fail_ratio:
        reasons.append(
            f"{outcome.failure_ratio:.2%} of requests failed, above the {fail_ratio:.2%} allowed"
        )
    if outcome.exceptions:
        reasons.append(
            f"the load test raised {outcome.exceptions} exception(s): see "
            f"{REPORT_PREFIX}_exceptions.csv"
        )
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    arguments.reports.mkdir(parents=True, exist_ok=True)
    for stale in arguments.reports.glob(f"{REPORT_PREFIX}*"):
        if stale.is_file():
            stale.unlink()
    with ExitStack() as cleanup:
        host = arguments.host
        server: ServerProcess | None = None
        if not host:
            work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="shoal-load-")))
            server = ServerProcess(work / "data", ["--fsync", arguments.fsync]).start()
            cleanup.callback(server.stop)
            host = f"grpc://{server.target}"
            print(f"load: started a coordinator on {server.target} (memory backend)", flush=True)
        elif "://" not in host:
            host = f"grpc://{host}"
        code = run_locust(arguments, host)
        if server is not None and server.process is not None and server.process.poll() is not None:
            print(f"load: the coordinator died during the run:\n{server.log_tail()}")
            return 1
    if code != 0:
        print(f"load: locust exited with {code}", file=sys.stderr)
        return code
    try:
        outcome = read_outcome(arguments.reports)
    except FileNotFoundError as error:
        print(f"load: no report: {error}", file=sys.stderr)
        return 1
    reasons = judge(outcome, arguments.fail_ratio)
    print(
        f"load: {outcome.requests:,} requests, {outcome.failures:,} failed "
        f"({outcome.failure_ratio if outcome.requests else 0:.2%}, "
        f"allowed {arguments.fail_ratio:.2%}); report {arguments.reports / 'locust.html'}"
    )
    for reason in reasons:
        print(f"load: FAILED: {reason}", file=sys.stderr)
    return 1 if reasons else 0


if __name__ == "__main__":
    sys.exit(main())
