"""Measures the alternatives for a partition's participant step on Redis, Hazelcast and Ignite.

    .venv/bin/python -m loadtests.bench.steps                       # everything, 5 runs each
    .venv/bin/python -m loadtests.bench.steps --backends redis --runs 5 --seconds 3

Each backend's server is started through deploy/local (and stopped again when this run started
it, so a JVM never idles on the shared machine). Every (variant, shape, threads) runs ``--runs``
times for ``--seconds``, the variants taking turns. The table shows the median commits/s
(min-max over the runs), the median p50 and p99 latency, and retries per commit. Results go to
reports/steps.json; docs/architecture/shared-stores.md ("Per store") says what the figures decided.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadtests.bench.steps import hazelcast_steps, ignite_steps, redis_steps
from loadtests.bench.steps.workload import (
    SHAPES,
    Commit,
    Measurement,
    Summary,
    measure,
    summarize,
)
from tests.support.server_process import REPO_ROOT

REDIS_PORT = int(os.environ.get("SHOAL_STEPS_REDIS_PORT", "6391"))
LOCAL = REPO_ROOT / "deploy" / "local"
Factory = Callable[[str, str], Callable[[], Commit]]


@contextmanager
def server(script: str, environment: dict[str, str]) -> Iterator[None]:
    """Runs ``<script> up``; afterwards ``down`` when this run was the one that started it."""
    env = {**os.environ, **environment}
    path = str(LOCAL / script)
    was_up = (
        subprocess.run([path, "status"], check=False, env=env, capture_output=True).returncode == 0
    )
    subprocess.run([path, "up"], env=env, check=True)
    try:
        yield
    finally:
        if not was_up:
            subprocess.run([path, "down"], env=env, check=False)


@dataclass(frozen=True)
class Backend:
    variants: tuple[str, ...]
    prepare: Callable[[], None]
    factory: Factory
    finish: Callable[[], None]
    script: str


def backends(redis_port: int) -> dict[str, Backend]:
    redis_url = f"redis://127.0.0.1:{redis_port}"
    hazelcast_address = "127.0.0.1:5701"
    return {
        "redis": Backend(
            redis_steps.VARIANTS,
            lambda: redis_steps.prepare_server(redis_url),
            lambda variant, shape: redis_steps.commit_factory(redis_url, variant, shape),
            redis_steps.finish,
            "redis.sh",
        ),
        "hazelcast": Backend(
            hazelcast_steps.VARIANTS,
            lambda: hazelcast_steps.prepare_server(hazelcast_address),
            lambda variant, shape: hazelcast_steps.commit_factory(
                hazelcast_address, variant, shape
            ),
            hazelcast_steps.finish,
            "hazelcast.sh",
        ),
        "ignite": Backend(
            ignite_steps.VARIANTS,
            lambda: ignite_steps.prepare_server("127.0.0.1", 10800),
            lambda variant, shape: ignite_steps.commit_factory("127.0.0.1", 10800, variant, shape),
            ignite_steps.finish,
            "ignite.sh",
        ),
    }


def print_row(summary: Summary) -> None:
    print(
        f"  {summary.backend:<16} {summary.variant:<12} {summary.shape:<7} "
        f"{summary.threads:>2} thr  {summary.commits_per_s:8.0f}/s "
        f"({summary.commits_per_s_min:.0f}-{summary.commits_per_s_max:.0f})  "
        f"p50 {summary.p50_ms:6.2f} ms  p99 {summary.p99_ms:7.2f} ms  "
        f"retries/commit {summary.retries_per_commit:.3f}",
        flush=True,
    )


def run_backend(
    name: str,
    backend: Backend,
    only: set[str],
    shapes: list[str],
    thread_counts: list[int],
    arguments: argparse.Namespace,
    summaries: list[Summary],
) -> None:
    """Runs the variants in turn, one run of each per round, so that a machine whose load
    changes during the measurement (other processes) weighs on every variant alike."""
    variants = [variant for variant in backend.variants if not only or variant in only]
    for shape in shapes:
        for variant in variants:
            # A fresh JVM interprets its code at first: run each alternative unmeasured for a
            # while so that the figures compare compiled code with compiled code.
            measure(name, variant, shape, backend.factory(variant, shape), 2, arguments.warmup, 99)
        for threads in thread_counts:
            runs: dict[str, list[Measurement]] = {variant: [] for variant in variants}
            for seed in range(arguments.runs):
                for variant in variants:
                    factory = backend.factory(variant, shape)
                    runs[variant].append(
                        measure(name, variant, shape, factory, threads, arguments.seconds, seed)
                    )
            for variant in variants:
                summary = summarize(runs[variant])
                summaries.append(summary)
                print_row(summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="redis,hazelcast,ignite")
    parser.add_argument("--variants", default="", help="comma-separated; default: all")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--threads", default="1,4", help="comma-separated thread counts")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds run unmeasured before each figure"
    )
    parser.add_argument(
        "--redis-appendfsync",
        default="",
        choices=["", "always", "everysec"],
        help="run Redis with an append-only file fsynced so (its own server, port + 1)",
    )
    parser.add_argument("--output", default=str(REPO_ROOT / "reports" / "steps.json"))
    arguments = parser.parse_args()
    redis_port = REDIS_PORT + 1 if arguments.redis_appendfsync else REDIS_PORT
    known = backends(redis_port)
    chosen = [name.strip() for name in arguments.backends.split(",") if name.strip()]
    for name in chosen:
        if name not in known:
            parser.error(f"unknown backend {name}; known: {', '.join(known)}")
    only = {name.strip() for name in arguments.variants.split(",") if name.strip()}
    shapes = [shape.strip() for shape in arguments.shapes.split(",") if shape.strip()]
    thread_counts = [int(count) for count in arguments.threads.split(",")]

    summaries: list[Summary] = []
    for name in chosen:
        backend = known[name]
        print(f"== {name}", flush=True)
        environment = {
            "REDIS_PORT": str(redis_port),
            "REDIS_APPENDFSYNC": arguments.redis_appendfsync,
        }
        aof = arguments.redis_appendfsync
        label = f"redis-aof-{aof}" if name == "redis" and aof else name
        with server(backend.script, environment):
            backend.prepare()
            try:
                run_backend(label, backend, only, shapes, thread_counts, arguments, summaries)
            finally:
                backend.finish()
    output = Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": arguments.runs,
        "seconds": arguments.seconds,
        "results": [summary.as_dict() for summary in summaries],
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
