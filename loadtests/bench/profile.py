"""Where a coordinator's time goes under one benchmark workload: py-spy on the server.

    python -m loadtests.bench.profile get-many      # 1,000-key get_many in a loop
    python -m loadtests.bench.profile hll           # hll adds of 10,000 items (lg_k=14)
    python -m loadtests.bench.profile pipeline      # exactly-once apply of a filled topic
    python -m loadtests.bench.profile pipeline --mode at_least_once --seconds 20
    python -m loadtests.bench.profile get --backend redis://127.0.0.1:6379   # or put, transfer

get, put and transfer (the 2-partition transfer from 16 clients, as the shared suite runs
it) take `--backend` (a fresh namespace is added to a redis:// URL) and also print the
server's CPU per call, the figure that carries over to a larger machine.

Starts a coordinator, drives the workload from this process, records the server with
`py-spy record --gil` (only the thread holding the interpreter lock: CPU, not waiting)
and prints the top functions by their own samples and by inclusive samples. The raw
samples (collapsed stacks, for flamegraph.pl or speedscope) are kept with `--raw FILE`.
py-spy comes with the dev extra; Kafka from `SHOAL_TEST_KAFKA` or deploy/local/kafka.sh.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil

from loadtests.bench import pipelines, txn
from shoal import Client
from tests.support.external_servers import ensure_kafka
from tests.support.kafka import unique
from tests.support.pipeline_server import PipelinesApi
from tests.support.server_process import ServerProcess


def summary(raw: str, top: int) -> str:
    """The top functions of collapsed stacks ("frame;frame;frame count" lines)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples (did the workload run while py-spy recorded?)"
    lines = [f"{total} samples holding the GIL", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    program = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [
            program,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "100",
            "--gil",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def drive_for(seconds: float, step: Callable[[], object]) -> int:
    done = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        step()
        done += 1
    return done


def profile_get_many(work: Path, seconds: float, output: Path) -> str:
    server = ServerProcess(work / "data", ["--fsync", "batch"]).start()
    try:
        with Client(server.target) as client:
            client.create_map("kv")
            client.put_many("kv", {f"k{index}": "v" * 98 for index in range(1000)})
            keys = [f"k{index}" for index in range(1000)]
            assert server.process is not None
            spy = record(server.process.pid, seconds, output)
            calls = drive_for(seconds + 1, lambda: client.get_many("kv", keys))
            spy.wait()
        return f"get_many of 1,000 keys: {calls / (seconds + 1):,.0f} calls/s"
    finally:
        server.stop()


def profile_hll(work: Path, seconds: float, output: Path) -> str:
    server = ServerProcess(work / "data", ["--fsync", "batch"]).start()
    try:
        with Client(server.target, timeout_s=60) as client:
            client.sketches.create("hll", kind="hll", lg_k=14)
            batches = [
                [f"user-{index}" for index in range(start, start + 10_000)]
                for start in range(0, 1_000_000, 10_000)
            ]
            turn = iter(range(10**9))
            assert server.process is not None
            spy = record(server.process.pid, seconds, output)
            calls = drive_for(
                seconds + 1,
                lambda: client.sketches.add("hll", "key", batches[next(turn) % len(batches)]),
            )
            spy.wait()
        return f"hll adds: {calls * 10_000 / (seconds + 1):,.0f} items/s"
    finally:
        server.stop()


def profile_calls(work: Path, seconds: float, output: Path, workload: str, backend: str) -> str:
    """get, put or transfer through one coordinator on `backend` (memory when empty)."""
    if backend.startswith("redis://") and backend.count("/") == 2:
        backend += f"/profile{uuid.uuid4().hex[:8]}"
    arguments = ["--partitions", "64"] + (["--backend", backend] if backend else [])
    server = ServerProcess(work / "data", arguments).start()
    try:
        with Client(server.target) as client:
            client.create_map("kv")
            keys = [f"k{index}" for index in range(1000)]
            document = {"name": "a value", "n": 12345, "tags": ["x", "y"]}
            client.put_many("kv", {key: document for key in keys})
            groups = txn.account_groups(300, 2)
            if workload == "transfer":
                client.create_map("accounts")
                accounts = {key for group in groups for key in group}
                client.put_many("accounts", {key: {"balance": 1_000_000} for key in accounts})
            turn = iter(range(10**9))
            assert server.process is not None
            process = psutil.Process(server.process.pid)
            before = process.cpu_times()
            spy = record(server.process.pid, seconds, output)
            if workload == "get":
                calls = drive_for(seconds + 1, lambda: client.get("kv", keys[next(turn) % 1000]))
            elif workload == "put":
                calls = drive_for(
                    seconds + 1, lambda: client.put("kv", keys[next(turn) % 1000], document)
                )
            else:
                rate, _ = txn.shoal_transfers(server.target, groups, seconds + 1)
                calls = int(rate * (seconds + 1))
            after = process.cpu_times()
            spy.wait()
        cpu = after.user + after.system - before.user - before.system
        return (
            f"{workload}: {calls / (seconds + 1):,.0f} calls/s, server CPU "
            f"{1e6 * cpu / max(calls, 1):,.0f} µs a call (py-spy's sampling included)"
        )
    finally:
        server.stop()


def profile_pipeline(work: Path, seconds: float, output: Path, mode: str, events: int) -> str:
    bootstrap = ensure_kafka()
    topic, group = unique("profile"), unique("profile")
    pipelines.fill_topic(bootstrap, topic, events)
    module = pipelines.PIPELINE.format(
        topic=topic, group=group, mode=mode, batch_max=5000, batch_ms=100
    )
    server = pipelines.start_server(work, group, bootstrap, module)
    try:
        with PipelinesApi(server.target) as api:
            while not api.info(group).assigned:
                time.sleep(0.01)
            assert server.process is not None
            spy = record(server.process.pid, seconds, output)
            started = time.perf_counter()
            while api.info(group).counters.get("applied", 0) < events:
                time.sleep(0.05)
            rate = events / (time.perf_counter() - started)
            spy.wait()
        return f"{mode} apply: {rate:,.0f} events/s (profile the first {seconds:g} s)"
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "workload", choices=("get-many", "hll", "pipeline", "get", "put", "transfer")
    )
    parser.add_argument("--backend", default="", help="get, put, transfer: shoal serve --backend")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long py-spy records")
    parser.add_argument("--mode", default="exactly_once", help="pipeline mode")
    parser.add_argument("--events", type=int, default=100_000, help="pipeline events")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--raw", type=Path, help="keep the collapsed stacks here")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="shoal-profile-") as folder:
        work = Path(folder)
        output = arguments.raw or work / "profile.txt"
        if arguments.workload == "get-many":
            headline = profile_get_many(work, arguments.seconds, output)
        elif arguments.workload == "hll":
            headline = profile_hll(work, arguments.seconds, output)
        elif arguments.workload in ("get", "put", "transfer"):
            headline = profile_calls(
                work, arguments.seconds, output, arguments.workload, arguments.backend
            )
        else:
            headline = profile_pipeline(
                work, arguments.seconds, output, arguments.mode, arguments.events
            )
        print(headline)
        print(summary(output.read_text() if output.exists() else "", arguments.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
