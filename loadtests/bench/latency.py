"""Open-loop latency: p50, p99 and p99.9 at 25%, 50% and 90% of each operation's maximum.

A closed loop (32 calls in flight from one asyncio client) measures an operation's
maximum rate; then a fixed-arrival-rate driver offers 25%, 50% and 90% of it: calls start
on a schedule whether or not earlier ones have answered, and each latency is counted from
the moment the call was due, not from when it was sent, so a stalled server shows in the
figures instead of slowing the offered load (no coordinated omission). Operations: get,
put, a 2-partition transfer as a client-side transaction and as a procedure (the
procedure `transfer` of loadtests/procedures), and a pipeline's end-to-end latency
(producer timestamp to the commit that makes the event readable; events produced by kcat
at the rate, the maximum being the exactly-once apply rate of a filled topic).

Writes `latency.md` (the table) and `latency.png` (one panel per operation, latency by
offered load) next to the report's JSON (`reports/` by default). The issue's limits are
rows with goals: a transfer's p99 at half the maximum below 5 ms as a procedure and 15 ms
client-side, a pipeline's p99 below 2 s.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.bench import pipelines
from loadtests.bench.kv import VALUE_100
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from loadtests.bench.txn import account_groups
from shoal import AsyncClient, Client, ConflictError, ShoalError
from tests.support.external_servers import ensure_kafka, kafka_running, stop_kafka
from tests.support.kafka import unique
from tests.support.server_process import REPO_ROOT, ServerProcess

SUITE = "latency"
FRACTIONS = (0.25, 0.5, 0.9)
CLOSED_LOOP_IN_FLIGHT = 32
# Calls waiting for an answer past this are counted as late and not started: the client
# must not drown in tasks when the server falls behind.
OPEN_LOOP_IN_FLIGHT_MAX = 2_000
KEYS = 1_000
PROCEDURES = REPO_ROOT / "loadtests" / "procedures"
# The limits on p99, in ms: (operation, fraction) -> limit.
LIMITS_MS = {
    ("transfer (procedure)", 0.5): 5.0,
    ("transfer (client-side)", 0.5): 15.0,
    ("pipeline end to end", 0.25): 2000.0,
    ("pipeline end to end", 0.5): 2000.0,
    ("pipeline end to end", 0.9): 2000.0,
}

Operation = Callable[[random.Random], Awaitable[object]]


@dataclass
class Point:
    """One operation at one offered rate."""

    fraction: float
    offered_per_s: float
    achieved_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    samples: int
    late: int = 0
    failed: int = 0


@dataclass
class Curve:
    operation: str
    max_per_s: float
    points: list[Point] = field(default_factory=list)


def percentile_ms(latencies: list[float], fraction: float) -> float:
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


async def closed_loop_rate(operation: Operation, seconds: float) -> float:
    """Calls a second with CLOSED_LOOP_IN_FLIGHT calls always in flight."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.perf_counter() < stop:
            await operation(rng)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(seed) for seed in range(CLOSED_LOOP_IN_FLIGHT)))
    return done / (time.perf_counter() - started)


async def open_loop(operation: Operation, rate: float, seconds: float, fraction: float) -> Point:
    """Starts a call every 1/rate seconds for `seconds`; latency from each call's due time."""
    rng = random.Random(17)
    latencies: list[float] = []
    in_flight = 0
    late = 0
    failed = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float) -> None:
        nonlocal in_flight, failed
        try:
            await operation(rng)
            latencies.append(time.perf_counter() - due)
        except ShoalError:
            # An overloaded server sheds calls (RESOURCE_EXHAUSTED, deadlines): counted,
            # and weighed below as late calls are.
            failed += 1
        finally:
            in_flight -= 1

    count = max(1, int(rate * seconds))
    started = time.perf_counter()
    for index in range(count):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= OPEN_LOOP_IN_FLIGHT_MAX:
            late += 1
            continue
        in_flight += 1
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    # A call never started or failed counts at the worst latency seen: no answer came
    # sooner.
    worst = max(latencies, default=0.0)
    measured = latencies + [worst] * (late + failed)
    return Point(
        fraction,
        rate,
        len(latencies) / elapsed,
        percentile_ms(measured, 0.5),
        percentile_ms(measured, 0.99),
        percentile_ms(measured, 0.999),
        len(measured),
        late,
        failed,
    )


def grid_operations(client: AsyncClient, groups: list[list[str]]) -> dict[str, Operation]:
    async def get(rng: random.Random) -> object:
        return await client.get("latency", f"k{rng.randrange(KEYS)}")

    async def put(rng: random.Random) -> object:
        return await client.put("latency", f"k{rng.randrange(KEYS)}", VALUE_100)

    async def transfer_client_side(rng: random.Random) -> object:
        source, target = rng.choice(groups)
        attempts = 0
        while True:
            tx = client.transaction()
            try:
                values = await tx.get_many("accounts", [source, target])
                tx.put("accounts", source, {"balance": values[source]["balance"] - 1})
                tx.put("accounts", target, {"balance": values[target]["balance"] + 1})
                return await tx.commit()
            except ConflictError:
                attempts += 1
                await asyncio.sleep(rng.uniform(0, 0.001 * min(attempts, 8)))

    async def transfer_procedure(rng: random.Random) -> object:
        source, target = rng.choice(groups)
        return await client.call("transfer", source, target, 1)

    return {
        "get": get,
        "put": put,
        "transfer (client-side)": transfer_client_side,
        "transfer (procedure)": transfer_procedure,
    }


def measure_grid(work_dir: Path, max_seconds: float, open_seconds: float) -> list[Curve]:
    server = ServerProcess(
        work_dir / "latency", ["--fsync", "batch", "--procedures", str(PROCEDURES)]
    ).start()
    groups = account_groups(500, 2)
    try:
        with Client(server.target) as setup:
            setup.create_map("latency")
            setup.create_map("accounts")
            setup.put_many("latency", {f"k{index}": VALUE_100 for index in range(KEYS)})
            setup.put_many(
                "accounts", {key: {"balance": 1_000_000} for group in groups for key in group}
            )

        async def run() -> list[Curve]:
            client = AsyncClient(server.target)
            curves = []
            try:
                for name, operation in grid_operations(client, groups).items():
                    await operation(random.Random(0))  # connect, warm the path
                    curve = Curve(name, await closed_loop_rate(operation, max_seconds))
                    for fraction in FRACTIONS:
                        curve.points.append(
                            await open_loop(
                                operation, curve.max_per_s * fraction, open_seconds, fraction
                            )
                        )
                    curves.append(curve)
                    print(f"  {describe(curve)}", flush=True)
            finally:
                await client.close()
            return curves

        return asyncio.run(run())
    finally:
        server.stop()


def measure_pipeline(report: Report, work_dir: Path, max_events: int, open_seconds: float) -> Curve:
    started_here = not os.environ.get("SHOAL_TEST_KAFKA") and not kafka_running()
    bootstrap = ensure_kafka()
    try:
        # The pipelines suite's exactly-once rate when it ran in this run; else measured.
        measured = [
            row.ours
            for row in report.rows
            if row.suite == pipelines.SUITE and row.name.startswith("exactly-once apply")
        ]
        if measured:
            maximum = measured[-1]
        else:
            topic = unique("bench-latency-max")
            pipelines.fill_topic(bootstrap, topic, max_events)
            maximum = pipelines.apply_rate(
                work_dir, bootstrap, topic, max_events, "exactly_once"
            ).rate
        curve = Curve("pipeline end to end", maximum)
        for fraction in FRACTIONS:
            rate = maximum * fraction
            p50, p99, p999, events = pipelines.latency_at(work_dir, bootstrap, rate, open_seconds)
            curve.points.append(Point(fraction, rate, rate, p50, p99, p999, events))
        print(f"  {describe(curve)}", flush=True)
        return curve
    finally:
        if started_here:
            stop_kafka()


def describe(curve: Curve) -> str:
    points = "; ".join(
        f"{point.fraction:.0%}: p50 {point.p50_ms:.3g} p99 {point.p99_ms:.3g} "
        f"p99.9 {point.p999_ms:.3g} ms"
        for point in curve.points
    )
    return f"{curve.operation} (max {curve.max_per_s:,.0f}/s): {points}"


def markdown(curves: list[Curve]) -> str:
    lines = [
        "| operation | max (/s) | load | offered (/s) | achieved (/s) | p50 (ms) | p99 (ms) "
        "| p99.9 (ms) | samples |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for curve in curves:
        for point in curve.points:
            lines.append(
                f"| {curve.operation} | {curve.max_per_s:,.0f} | {point.fraction:.0%} "
                f"| {point.offered_per_s:,.0f} | {point.achieved_per_s:,.0f} "
                f"| {point.p50_ms:.3g} | {point.p99_ms:.3g} | {point.p999_ms:.3g} "
                f"| {point.samples:,}{f' ({point.late} late)' if point.late else ''}"
                f"{f' ({point.failed} failed)' if point.failed else ''} |"
            )
    return "\n".join(lines) + "\n"


def plot(curves: list[Curve], path: Path) -> None:
    """One panel per operation: p50, p99 and p99.9 (log scale) by offered load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(curves))
    rows = -(-len(curves) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    axes = [axis for row in grid for axis in row]
    for axis in axes[len(curves) :]:
        axis.set_visible(False)
    for axis, curve in zip(axes, curves, strict=False):
        loads = [point.fraction * 100 for point in curve.points]
        for label, values, style in (
            ("p50", [point.p50_ms for point in curve.points], "o-"),
            ("p99", [point.p99_ms for point in curve.points], "s-"),
            ("p99.9", [point.p999_ms for point in curve.points], "^-"),
        ):
            axis.plot(loads, [max(value, 1e-3) for value in values], style, label=label)
        for (operation, fraction), limit in LIMITS_MS.items():
            if operation == curve.operation:
                axis.plot([fraction * 100], [limit], "rx", markersize=10)
        axis.set_yscale("log")
        axis.set_xticks([int(fraction * 100) for fraction in FRACTIONS])
        axis.set_xlabel("offered load, % of the measured maximum")
        axis.set_title(f"{curve.operation}\nmax {curve.max_per_s:,.0f}/s", fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.set_ylabel("latency (ms, log scale)")
    axes[0].legend(loc="upper left", fontsize=8)
    figure.suptitle("Shoal open-loop latency (red x: the issue's p99 limit)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def add_rows(report: Report, curves: list[Curve]) -> None:
    for curve in curves:
        for point in curve.points:
            where = f"at {point.fraction:.0%} of max ({point.offered_per_s:,.0f}/s)"
            limit = LIMITS_MS.get((curve.operation, point.fraction))
            report.add(
                Row(
                    SUITE,
                    f"{curve.operation} p99 {where}",
                    point.p99_ms,
                    "ms",
                    "" if limit is None else f"limit {limit:g} ms",
                    limit,
                    None if limit is None else 1.0,
                    higher_is_better=False,
                    note=f"p50 {point.p50_ms:.3g} ms, p99.9 {point.p999_ms:.3g} ms, "
                    f"{point.samples:,} samples ({point.late} late, {point.failed} failed), "
                    "open loop",
                )
            )


def main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    curves = measure_grid(
        work_dir,
        max_seconds=pick(scale, tiny=0.3, quick=2.0, full=4.0),
        open_seconds=pick(scale, tiny=0.4, quick=4.0, full=8.0),
    )
    curves.append(
        measure_pipeline(
            report,
            work_dir,
            max_events=pick(scale, tiny=2_000, quick=30_000, full=60_000),
            open_seconds=pick(scale, tiny=1.0, quick=5.0, full=10.0),
        )
    )
    add_rows(report, curves)
    folder = report.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latency.md").write_text(markdown(curves))
    plot(curves, folder / "latency.png")
    print(f"  wrote {folder / 'latency.md'} and {folder / 'latency.png'}", flush=True)
