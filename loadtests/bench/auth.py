"""Authentication's price: key-value calls with auth on against the same calls with auth
off, in the same run (issue: security; goal: at least 0.9 of the throughput).

Both servers run side by side and are measured in short slices taken in turn, as the kv
suite does, so a noisy machine treats both alike. With auth on every call carries a
bearer token; the first call hashes it (scrypt) and later calls find it in the
verified-token cache, then check the principal's grants on the map (writer:kv*).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import psutil

from loadtests.bench.kv import concurrent_gets, timed_calls
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from shoal import Client
from tests.support.server_process import ServerProcess

SUITE = "auth"
GOAL = 0.9
# CPU per call may grow by at most 1 / 0.9.
CPU_GOAL = 1.11
# Many short slices, each pair taken back to back and in alternating order: on a
# machine shared with other work, the load changes from second to second, and a pair
# sees the same load.
ROUNDS = 12
ADMIN_TOKEN = "bench-bootstrap-admin-token-0123456789abcdef"
VALUE = "v" * 98


def run(report: Report, work_dir: Path, *, seconds: float) -> None:
    plain = ServerProcess(work_dir / "auth-off", ["--auth", "off"]).start()
    secured = ServerProcess(
        work_dir / "auth-on",
        ["--auth", "on"],
        environment={"SHOAL_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN},
    ).start()
    slice_s = seconds / ROUNDS
    keys = [f"k{i}" for i in range(1000)]
    try:
        with Client(secured.target, token=ADMIN_TOKEN) as admin:
            admin.create_map("kv")
            token = admin.auth.create_token("bench-writer", ["writer:kv*"]).token
        with Client(plain.target) as setup:
            setup.create_map("kv")
        off = Client(plain.target)
        on = Client(secured.target, token=token)
        for each in (off, on):
            each.put_many("kv", {key: VALUE for key in keys})
            each.get("kv", "k0")

        processes = {"off": psutil.Process(_pid(plain)), "on": psutil.Process(_pid(secured))}
        # Server CPU seconds and calls of the sequential gets, per side: CPU per call
        # hardly moves with the machine's load, which moves the rates by tens of percent.
        cpu = {"off": [0.0, 0], "on": [0.0, 0]}

        def gets(client: Client, side: str) -> float:
            before = _cpu_s(processes[side])
            rate, latencies = timed_calls(lambda i: client.get("kv", keys[i % 1000]), slice_s)
            cpu[side][0] += _cpu_s(processes[side]) - before
            cpu[side][1] += len(latencies)
            return rate

        def puts(client: Client) -> float:
            return timed_calls(lambda i: client.put("kv", keys[i % 1000], VALUE), slice_s)[0]

        def in_flight(target: str, with_token: str | None) -> float:
            return concurrent_gets(target, "kv", slice_s, token=with_token)

        measures = {
            "get": (lambda: gets(off, "off"), lambda: gets(on, "on")),
            "put": (lambda: puts(off), lambda: puts(on)),
            "64": (
                lambda: in_flight(plain.target, None),
                lambda: in_flight(secured.target, token),
            ),
        }
        results: dict[str, list[float]] = {
            f"{name} {side}": [] for name in measures for side in ("off", "on")
        }
        for round_index in range(ROUNDS):
            for name, (measure_off, measure_on) in measures.items():
                pair = [("off", measure_off), ("on", measure_on)]
                for side, measure in pair if round_index % 2 == 0 else reversed(pair):
                    results[f"{name} {side}"].append(measure())
        off.close()
        on.close()
    finally:
        plain.kill()
        secured.kill()
    median = {name: statistics.median(values) for name, values in results.items()}
    note = f"same run, {ROUNDS} paired slices in alternating order; medians"
    for name, label in (
        ("get", "get sequential"),
        ("put", "put sequential"),
        ("64", "get 64 in flight"),
    ):
        report.add(
            Row(
                SUITE,
                f"{label}, auth on",
                median[f"{name} on"],
                "ops/s",
                "auth off",
                median[f"{name} off"],
                GOAL,
                note=note,
            )
        )
    per_call_us = {side: total * 1e6 / max(calls, 1) for side, (total, calls) in cpu.items()}
    report.add(
        Row(
            SUITE,
            "server CPU per get, auth on",
            per_call_us["on"],
            "us",
            "auth off",
            per_call_us["off"],
            CPU_GOAL,
            higher_is_better=False,
            note="the servers' own CPU time over every sequential get slice",
        )
    )


def _pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    del redis_port
    run(report, work_dir, seconds=pick(scale, tiny=0.5, quick=5.0, full=15.0))
