"""deploy/local/redis.sh (make redis-up) refuses to call a running redis durable when it is not."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import REPO_ROOT

SCRIPT = REPO_ROOT / "deploy" / "local" / "redis.sh"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
