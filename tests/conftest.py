"""Fixtures shared by every tier: servers started for real, or one given by flag."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.external_servers import (
    ensure_hazelcast,
    ensure_ignite,
    ensure_kafka,
    ensure_redis,
    ensure_redis_cluster,
    hazelcast_running,
    ignite_running,
    kafka_running,
    redis_cluster_running,
    stop_hazelcast,
    stop_ignite,
    stop_kafka,
    stop_redis,
    stop_redis_cluster,
)
from tests.support.server_process import ServerProcess

_map_counter = itertools.count()


def _cache_bytecode() -> None:
    """Lets the session and every Python process it starts (servers, the CLI, benchmarks) keep
    compiled bytecode when the environment says not to (PYTHONDONTWRITEBYTECODE=1, as on this
    project's shared machines): without it each of the suite's hundreds of processes compiles
    every module it imports, half of a server's start. The cache goes inside the venv
    (PYTHONPYCACHEPREFIX), so the source tree stays as clean as the setting wanted."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.prefix == sys.base_prefix:
        return
    prefix = os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(sys.prefix) / "pycache"))
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False


_cache_bytecode()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shoal-target",
        default=None,
        help="use a running coordinator (host:port) instead of starting one",
    )
    parser.addoption(
        "--queries",
        type=int,
        default=300,
        help="statements the SQL differential tester runs (a few hundred in make test)",
    )
    parser.addoption(
        "--sql-seed",
        type=int,
        default=17,
        help="seed of the SQL differential tester (its failures print the seed)",
    )


@pytest.fixture(scope="session")
def shoal_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A coordinator shared by a session's tests; each test uses its own maps."""
    given = request.config.getoption("--shoal-target")
    if given:
        yield given
        return
    server = ServerProcess(tmp_path_factory.mktemp("shoal") / "data").start()
    try:
        yield server.target
    finally:
        server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A coordinator of the test's own, for tests that stop, kill or restart it."""
    server = ServerProcess(tmp_path / "data")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The Kafka broker of the pipeline tests: deploy/local/kafka.sh starts it unless one
    answers already (or SHOAL_TEST_KAFKA names one); a broker this session started is
    stopped at its end."""
    started_here = not os.environ.get("SHOAL_TEST_KAFKA") and not kafka_running()
    bootstrap = ensure_kafka()
    try:
        yield bootstrap
    finally:
        if started_here:
            stop_kafka()


# The redis of the conformance tier: a port of its own, so it never meets a developer's redis.
CONFORMANCE_REDIS_PORT = 6393


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throw-away redis-server (deploy/local/redis.sh, no persistence) for backend tests, or
    SHOAL_TEST_REDIS; one this session started is stopped at its end."""
    started_here = not os.environ.get("SHOAL_TEST_REDIS")
    url = ensure_redis(CONFORMANCE_REDIS_PORT)
    try:
        yield url
    finally:
        if started_here:
            stop_redis(CONFORMANCE_REDIS_PORT)


# The first of the three ports of the conformance tier's Redis Cluster.
CONFORMANCE_REDIS_CLUSTER_PORT = 7300


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A 3-master Redis Cluster on loopback (deploy/local/redis-cluster.sh); one this session
    started is stopped at its end, one that answered already is left to whoever started it."""
    started_here = not redis_cluster_running(CONFORMANCE_REDIS_CLUSTER_PORT)
    url = ensure_redis_cluster(CONFORMANCE_REDIS_CLUSTER_PORT)
    try:
        yield url
    finally:
        if started_here:
            stop_redis_cluster(CONFORMANCE_REDIS_CLUSTER_PORT)


@pytest.fixture(scope="session")
def hazelcast_address() -> Iterator[str]:
    """A Hazelcast member (cluster ``shoal-dev``): deploy/local/hazelcast.sh starts it unless one
    answers already (or SHOAL_TEST_HAZELCAST names one); one this session started is stopped at
    its end, so a JVM never outlives the tests that needed it."""
    started_here = not os.environ.get("SHOAL_TEST_HAZELCAST") and not hazelcast_running()
    address = ensure_hazelcast()
    try:
        yield address
    finally:
        if started_here:
            stop_hazelcast()


@pytest.fixture(scope="session")
def ignite_address() -> Iterator[str]:
    """An Ignite 2.x node's thin-client address, started and stopped like ``hazelcast_address``
    (deploy/local/ignite.sh, SHOAL_TEST_IGNITE)."""
    started_here = not os.environ.get("SHOAL_TEST_IGNITE") and not ignite_running()
    address = ensure_ignite()
    try:
        yield address
    finally:
        if started_here:
            stop_ignite()


@pytest.fixture
def map_name(request: pytest.FixtureRequest) -> str:
    """A map name unique to the test."""
    base = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]
    return f"t{next(_map_counter)}_{base}"
