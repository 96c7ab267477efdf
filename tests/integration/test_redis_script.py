"""deploy/local/redis.sh (make redis-up) and the redis:// URLs a user points at what it starts:
the script refuses to call a running redis durable when it is not, and a plain redis:// URL of a
Redis Cluster node is refused at start naming the URL to use."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import REPO_ROOT

SCRIPT = REPO_ROOT / "deploy" / "local" / "redis.sh"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_cluster_port() -> int:
    """A free port with its cluster bus port (10,000 above) free too, so at most 55535."""
    for port in random.sample(range(20_000, 30_000), 200):
        try:
            for taken in (port, port + 10_000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", taken))
        except OSError:
            continue
        return port
    raise AssertionError("no free port pair for a cluster node")


def run(command: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The script's environment for a redis of this test's own (port, cache directory)."""
    environment = {"REDIS_PORT": str(free_port()), "SHOAL_CACHE_DIR": str(tmp_path)}
    try:
        yield environment
    finally:
        run("down", environment)


def test_asking_for_an_append_only_file_from_a_redis_already_up_without_one_is_refused(
    redis_port: dict[str, str],
) -> None:
    # README: `make redis-up`, then `REDIS_APPENDFSYNC=always deploy/local/redis.sh up` "starts
    # the durable set-up"; it used to answer "redis already up" and leave it without persistence.
    assert run("up", redis_port).returncode == 0
    refused = run("up", {**redis_port, "REDIS_APPENDFSYNC": "always"})
    assert refused.returncode == 1
    assert "already up with appendonly no, appendfsync everysec, not appendfsync always" in (
        refused.stderr
    )
    assert run("down", redis_port).returncode == 0
    durable = run("up", {**redis_port, "REDIS_APPENDFSYNC": "always"})
    assert durable.returncode == 0, durable.stderr
    again = run("up", {**redis_port, "REDIS_APPENDFSYNC": "always"})
    assert again.returncode == 0 and "already up" in again.stdout


def test_a_redis_url_of_a_cluster_node_is_refused_naming_the_cluster_url(
    redis_port: dict[str, str],
) -> None:
    # It used to start and fail its first step: "a Redis Cluster slot this call needs is still
    # migrating", as every key was MOVED elsewhere (or ran on a node that owns no slot).
    port = str(free_cluster_port())
    redis_port["REDIS_PORT"] = port  # the fixture's `down` stops this one
    started = run("up", {**redis_port, "REDIS_CLUSTER_NODE": "yes"})
    assert started.returncode == 0, started.stderr
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.server",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--backend",
            f"redis://127.0.0.1:{port}/orders",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines()[-1] == (
        f"shoal serve: redis://127.0.0.1:{port} is a node of a Redis Cluster: name the cluster "
        f"redis+cluster://127.0.0.1:{port}[/namespace]"
    )
    assert "Traceback" not in finished.stderr
