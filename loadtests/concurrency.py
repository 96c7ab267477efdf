"""The concurrency curve: `make load`'s mixed profile at several user counts, one server.

    python -m loadtests.concurrency --users 4,8,16,32 --run-time 30s [--profile-server]

Starts one coordinator (memory backend, fsync batch, as `make load`), preloads the data
set once, then runs `loadtests.run_load` against it at each user count (users started
at once, no think time) and reads each run's Locust statistics: requests per second,
the median and 99th percentile latency, and the 99th percentile of the slowest tasks.
With `--profile-server`, py-spy (``pip install py-spy``) samples the server during the
middle of each run, every thread, waiting ones included, and the share of samples
whose thread held the GIL, into `<reports>/u<users>.pyspy.txt` (collapsed stacks).
`--plot docs/load-curve.png` draws the curve (needs matplotlib, in the dev extra).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.support.server_process import REPO_ROOT, ServerProcess

SLOW_TASKS = ("sql.aggregate", "sql.filter", "txn.transfer")


@dataclass(frozen=True)
class Point:
    users: int
    requests_per_s: float
    median_ms: float
    p99_ms: float
    failures: int
    task_p99_ms: dict[str, float]
    # CPU time per request of the server, and of the load generator (Locust), in ms:
    # where the work goes, whatever else the machine runs at the time.
    server_cpu_ms: float = 0.0
    locust_cpu_ms: float = 0.0
    load_average: float = 0.0


def run_once(
    target: str, users: int, run_time: str, reports: Path, *, preload: bool
) -> dict[str, dict[str, str]]:
    environment = {
        **os.environ,
        "SHOAL_LOAD_PREFIX": "curve",
        "SHOAL_LOAD_PRELOAD": "1" if preload else "0",
    }
    command = [
        sys.executable,
        "-m",
        "loadtests.run_load",
        "--host",
        f"grpc://{target}",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        run_time,
        "--reports",
        str(reports),
        "--",
        "--only-summary",
    ]
    subprocess.run(command, cwd=REPO_ROOT, env=environment, check=False)
    with (reports / "locust_stats.csv").open(newline="") as stats_file:
        return {row["Name"]: row for row in csv.DictReader(stats_file)}


def seconds(run_time: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(run_time[:-1]) * units[run_time[-1]] if run_time[-1] in units else float(run_time)


def sample_server(pid: int, delay_s: float, duration_s: float, output: Path) -> threading.Thread:
    """py-spy records the server for `duration_s` after `delay_s`, in the background."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    def record() -> None:
        threading.Event().wait(delay_s)
        for flags, suffix in (("--idle", ".pyspy.txt"), ("--gil", ".gil.txt")):
            subprocess.run(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(duration_s / 2)),
                    "--rate",
                    "50",
                    "--format",
                    "raw",
                    flags,
                    "--output",
                    str(output.with_suffix(suffix)),
                ],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    return thread


def children_cpu_s() -> float:
    """CPU seconds of the finished children (run_load and the Locust processes it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    users_list: list[int],
    run_time: str,
    reports: Path,
    *,
    profile_server: bool,
    workers: int,
    server_tree: Path | None = None,
) -> list[Point]:
    import psutil

    points = []
    with tempfile.TemporaryDirectory(prefix="shoal-curve-") as work:
        server = ServerProcess(Path(work) / "data", ["--fsync", "batch", "--workers", str(workers)])
        if server_tree is not None:
            # Another checkout's server (an older commit, to compare): its code first.
            server.cwd = server_tree
            server.environment = {
                "PYTHONPATH": f"{server_tree}{os.pathsep}{server_tree / 'clients' / 'python'}"
            }
        server.start()
        try:
            assert server.process is not None
            process = psutil.Process(server.process.pid)
            for index, users in enumerate(users_list):
                folder = reports / f"u{users}"
                sampler = None
                if profile_server:
                    total_s = seconds(run_time)
                    sampler = sample_server(
                        server.process.pid, total_s / 4, total_s / 2, folder / "server"
                    )
                folder.mkdir(parents=True, exist_ok=True)
                server_before = sum(process.cpu_times()[:2])
                locust_before = children_cpu_s()
                rows = run_once(server.target, users, run_time, folder, preload=index == 0)
                server_cpu_s = sum(process.cpu_times()[:2]) - server_before
                locust_cpu_s = children_cpu_s() - locust_before
                requests = max(1, int(rows["Aggregated"]["Request Count"]))
                if sampler is not None:
                    sampler.join(seconds(run_time))
                total = rows["Aggregated"]
                points.append(
                    Point(
                        users,
                        float(total["Requests/s"]),
                        float(total["50%"]),
                        float(total["99%"]),
                        int(total["Failure Count"]),
                        {name: float(rows[name]["99%"]) for name in SLOW_TASKS if name in rows},
                        server_cpu_s * 1000 / requests,
                        locust_cpu_s * 1000 / requests,
                        os.getloadavg()[0],
                    )
                )
                print(table(points[-1:]), flush=True)
        finally:
            server.stop()
    return points


def table(points: list[Point]) -> str:
    lines = [
        "| users | requests/s | median ms | p99 ms | "
        + " | ".join(f"{name} p99 ms" for name in SLOW_TASKS)
        + " | server CPU ms/request | Locust CPU ms/request | load average | failures |",
        "| ---: " * (8 + len(SLOW_TASKS)) + "|",
    ]
    for point in points:
        slow = " | ".join(f"{point.task_p99_ms.get(name, 0):.0f}" for name in SLOW_TASKS)
        lines.append(
            f"| {point.users} | {point.requests_per_s:.0f} | {point.median_ms:.0f} | "
            f"{point.p99_ms:.0f} | {slow} | {point.server_cpu_ms:.2f} | "
            f"{point.locust_cpu_ms:.2f} | {point.load_average:.1f} | {point.failures} |"
        )
    return "\n".join(lines)


def workers_table(workers: dict[int, Point]) -> str:
    lines = [
        "| server threads | requests/s | p99 ms | server CPU ms/request | Locust CPU ms/request |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for count in sorted(workers):
        point = workers[count]
        lines.append(
            f"| {count} | {point.requests_per_s:.0f} | {point.p99_ms:.0f} | "
            f"{point.server_cpu_ms:.2f} | {point.locust_cpu_ms:.2f} |"
        )
    return "\n".join(lines)


def load_points(path: Path) -> list[Point]:
    return [Point(**item) for item in json.loads(path.read_text())]


def average(runs: list[list[Point]]) -> list[Point]:
    """The mean of several runs of the same user counts, point by point."""
    averaged = []
    for points in zip(*runs, strict=True):
        count = len(points)
        averaged.append(
            Point(
                points[0].users,
                sum(point.requests_per_s for point in points) / count,
                sum(point.median_ms for point in points) / count,
                sum(point.p99_ms for point in points) / count,
                sum(point.failures for point in points),
                {
                    name: sum(point.task_p99_ms.get(name, 0.0) for point in points) / count
                    for name in SLOW_TASKS
                },
                sum(point.server_cpu_ms for point in points) / count,
                sum(point.locust_cpu_ms for point in points) / count,
                sum(point.load_average for point in points) / count,
            )
        )
    return averaged


def plot(
    series: dict[str, list[Point]],
    output: Path,
    workers: dict[int, Point] | None = None,
) -> None:
    """Throughput, p99 latency and CPU per request by users; with `workers` (points at
    one user count by the server's thread count), a fourth panel of those."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    panels = 4 if workers else 3
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4))
    throughput, latency, cost = axes[:3]
    for label, points in series.items():
        users = [point.users for point in points]
        throughput.plot(users, [point.requests_per_s for point in points], marker="o", label=label)
        latency.plot(users, [point.p99_ms for point in points], marker="o", label=label)
        cost.plot(
            users, [point.server_cpu_ms for point in points], marker="o", label=f"server, {label}"
        )
    for axis, title, unit in (
        (throughput, "throughput", "requests/s"),
        (latency, "99th percentile latency", "ms"),
        (cost, "server CPU per request", "ms"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xticks([point.users for point in next(iter(series.values()))])
        axis.get_xaxis().set_major_formatter(ScalarFormatter())
        axis.set_xlabel("users (mixed profile, no think time)")
        axis.set_ylabel(unit)
        axis.set_ylim(bottom=0)
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    if workers:
        threads = sorted(workers)
        by_threads = axes[3]
        by_threads.plot(
            threads,
            [workers[count].server_cpu_ms for count in threads],
            marker="o",
            label="server CPU ms per request",
        )
        rate = by_threads.twinx()
        rate.plot(
            threads,
            [workers[count].requests_per_s for count in threads],
            marker="s",
            color="tab:green",
            label="requests/s",
        )
        by_threads.set_xscale("log", base=2)
        by_threads.set_xticks(threads)
        by_threads.get_xaxis().set_major_formatter(ScalarFormatter())
        by_threads.set_xlabel("server threads (--workers), 32 users")
        by_threads.set_ylabel("server CPU ms per request")
        rate.set_ylabel("requests/s")
        by_threads.set_ylim(bottom=0)
        rate.set_ylim(bottom=0)
        by_threads.set_title("threaded server: more threads")
        by_threads.grid(True, alpha=0.3)
        lines = by_threads.get_legend_handles_labels()
        more = rate.get_legend_handles_labels()
        by_threads.legend(lines[0] + more[0], lines[1] + more[1], fontsize="small")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="4,8,16,32")
    parser.add_argument("--run-time", default="30s")
    parser.add_argument("--reports", type=Path, default=REPO_ROOT / "reports" / "curve")
    parser.add_argument("--workers", type=int, default=16, help="the server's --workers")
    parser.add_argument("--profile-server", action="store_true")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the points as JSON (to plot later)"
    )
    parser.add_argument(
        "--plot-from",
        default="",
        help="only plot: label=points.json[+more.json],... (points of one label are averaged)",
    )
    parser.add_argument(
        "--workers-from",
        default="",
        help="with --plot-from: threads=points.json[+more.json],... of one user count",
    )
    parser.add_argument(
        "--server-tree", type=Path, default=None, help="run the server of another checkout"
    )
    arguments = parser.parse_args()
    if arguments.plot_from:
        series = {
            label: average([load_points(Path(path)) for path in paths.split("+")])
            for label, _, paths in (item.partition("=") for item in arguments.plot_from.split(","))
        }
        for label, points in series.items():
            print(f"{label}:\n{table(points)}")
        workers = None
        if arguments.workers_from:
            workers = {}
            for item in arguments.workers_from.split(","):
                count, _, paths = item.partition("=")
                [point] = average([load_points(Path(path)) for path in paths.split("+")])
                workers[int(count)] = point
            print(workers_table(workers))
        plot(series, arguments.plot or REPO_ROOT / "docs" / "load-curve.png", workers)
        return 0
    users_list = [int(item) for item in arguments.users.split(",")]
    points = measure(
        users_list,
        arguments.run_time,
        arguments.reports,
        profile_server=arguments.profile_server,
        workers=arguments.workers,
        server_tree=arguments.server_tree,
    )
    print(table(points))
    if arguments.json is not None:
        arguments.json.write_text(json.dumps([asdict(point) for point in points], indent=1))
    if arguments.plot is not None:
        plot({"mixed": points}, arguments.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
