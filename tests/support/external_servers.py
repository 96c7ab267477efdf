"""Start, stop and locate the real Kafka, Redis, Hazelcast and Ignite servers tests run against.

The servers themselves are managed by ``deploy/local/kafka.sh``, ``redis.sh``, ``hazelcast.sh``
and ``ignite.sh`` (fetched, cached and started on 127.0.0.1); these helpers call those scripts
so that pytest fixtures and a developer's shell share one server of each kind.

Environment:

* ``SHOAL_TEST_KAFKA=host:port`` - use that broker; nothing is started or restarted.
* ``SHOAL_TEST_REDIS=host:port`` (or ``redis://...``) - use that redis; nothing is started.
* ``SHOAL_TEST_HAZELCAST=host:port`` - use that Hazelcast member (cluster ``shoal-dev``).
* ``SHOAL_TEST_IGNITE=host:port`` - use that Ignite node's thin-client port.
* ``KAFKA_PORT``, ``SHOAL_CACHE_DIR``, ... - passed through to the scripts unchanged.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = [
    "HAZELCAST_CLUSTER_NAME",
    "HAZELCAST_SCRIPT",
    "IGNITE_SCRIPT",
    "KAFKA_SCRIPT",
    "REDIS_SCRIPT",
    "REPO_ROOT",
    "ExternalServerError",
    "UnmanagedServerError",
    "ensure_hazelcast",
    "ensure_ignite",
    "ensure_kafka",
    "ensure_redis",
    "ensure_redis_cluster",
    "hazelcast_running",
    "ignite_running",
    "kafka_running",
    "redis_cluster_running",
    "restart_kafka",
    "run_redis_cluster_script",
    "run_redis_script",
    "stop_hazelcast",
    "stop_ignite",
    "stop_kafka",
    "stop_redis",
    "stop_redis_cluster",
]

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT: Final[Path] = REPO_ROOT / "deploy" / "local" / "kafka.sh"
REDIS_SCRIPT: Final[Path] = REPO_ROOT / "deploy" / "local" / "redis.sh"
REDIS_CLUSTER_SCRIPT: Final[Path] = REPO_ROOT / "deploy" / "local" / "redis-cluster.sh"
HAZELCAST_SCRIPT: Final[Path] = REPO_ROOT / "deploy" / "local" / "hazelcast.sh"
IGNITE_SCRIPT: Final[Path] = REPO_ROOT / "deploy" / "local" / "ignite.sh"

KAFKA_ENV: Final[str] = "SHOAL_TEST_KAFKA"
REDIS_ENV: Final[str] = "SHOAL_TEST_REDIS"
DEFAULT_KAFKA_PORT: Final[int] = 9092
DEFAULT_REDIS_PORT: Final[int] = 6379
HAZELCAST_ENV: Final[str] = "SHOAL_TEST_HAZELCAST"
IGNITE_ENV: Final[str] = "SHOAL_TEST_IGNITE"
DEFAULT_HAZELCAST_PORT: Final[int] = 5701
DEFAULT_IGNITE_PORT: Final[int] = 10800
# The cluster name deploy/local/hazelcast.sh gives its member; clients must present it.
HAZELCAST_CLUSTER_NAME: Final[str] = "shoal-dev"

# The first `kafka.sh up` on a clean machine downloads ~45 MB of jars with Maven.
KAFKA_UP_TIMEOUT_S: Final[float] = 600.0
KAFKA_DOWN_TIMEOUT_S: Final[float] = 120.0
# redis.sh may run apt-get when redis-server is missing.
REDIS_UP_TIMEOUT_S: Final[float] = 300.0
REDIS_DOWN_TIMEOUT_S: Final[float] = 60.0
# The first hazelcast.sh / ignite.sh up downloads 21 / 27 MB of jars with Maven; a JVM member on
# a busy 2-core machine then takes 5-30 s to serve.
MEMBER_UP_TIMEOUT_S: Final[float] = 600.0
MEMBER_DOWN_TIMEOUT_S: Final[float] = 90.0


class ExternalServerError(RuntimeError):
    """A deploy/local script failed, timed out or could not be run."""


class UnmanagedServerError(ExternalServerError):
    """The server was given through the environment, so these helpers must not manage it."""


def _display(script: Path, args: tuple[str, ...]) -> str:
    return " ".join([str(script.relative_to(REPO_ROOT)), *args])


def _run_script(
    script: Path,
    *args: str,
    timeout_s: float,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Runs a deploy/local script and returns its stdout; raises ExternalServerError on failure."""
    command = _display(script, args)
    if not script.is_file():
        raise ExternalServerError(f"{command}: script not found at {script}")
    env = dict(os.environ)
    if extra_env:
        env.update(extra_env)
    try:
        completed = subprocess.run(
            ["bash", str(script), *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        raise ExternalServerError(
            f"`{command}` failed with exit code {exc.returncode}\n"
            f"--- stdout ---\n{exc.stdout or ''}--- stderr ---\n{exc.stderr or ''}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ExternalServerError(f"`{command}` did not finish within {timeout_s:.0f}s") from exc
    except OSError as exc:
        raise ExternalServerError(f"`{command}` could not be run: {exc}") from exc
    return completed.stdout


def _host_port(value: str, env_name: str) -> tuple[str, int]:
    """Parses ``host:port`` (a ``scheme://`` prefix and a ``/path`` suffix are allowed)."""
    text = value.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].rsplit("@", 1)[-1]
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ExternalServerError(f"{env_name}={value!r} is not of the form host:port")
    return host, int(port)


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ExternalServerError(f"{name}={raw!r} is not a port number")
    return int(raw)


def _external(env_name: str) -> str | None:
    value = os.environ.get(env_name, "").strip()
    return value or None


def ensure_kafka() -> str:
    """Makes sure a Kafka broker is up and returns its bootstrap address, ``127.0.0.1:9092``.

    With ``SHOAL_TEST_KAFKA=host:port`` that broker is used as it is. Otherwise
    ``deploy/local/kafka.sh up`` starts (and on first use downloads) the local broker; it is a
    no-op when the broker is already healthy. ``KAFKA_PORT`` moves the local broker.
    """
    external = _external(KAFKA_ENV)
    if external is not None:
        host, port = _host_port(external, KAFKA_ENV)
        return f"{host}:{port}"
    port = _env_port("KAFKA_PORT", DEFAULT_KAFKA_PORT)
    _run_script(
        KAFKA_SCRIPT, "up", timeout_s=KAFKA_UP_TIMEOUT_S, extra_env={"KAFKA_PORT": str(port)}
    )
    return f"127.0.0.1:{port}"


def kafka_running() -> bool:
    """Whether a broker answers on the local Kafka port (``kafka.sh status``)."""
    if _external(KAFKA_ENV) is not None:
        return True
    try:
        _run_script(KAFKA_SCRIPT, "status", timeout_s=60)
    except ExternalServerError:
        return False
    return True


def restart_kafka() -> None:
    """Stops and restarts the local broker, keeping its data (``kafka.sh restart``)."""
    if _external(KAFKA_ENV) is not None:
        raise UnmanagedServerError(f"{KAFKA_ENV} is set: the external broker cannot be restarted")
    _run_script(KAFKA_SCRIPT, "restart", timeout_s=KAFKA_DOWN_TIMEOUT_S + KAFKA_UP_TIMEOUT_S)


def stop_kafka() -> None:
    """Stops the local broker, keeping its data (``kafka.sh down``)."""
    if _external(KAFKA_ENV) is not None:
        raise UnmanagedServerError(f"{KAFKA_ENV} is set: the external broker cannot be stopped")
    _run_script(KAFKA_SCRIPT, "down", timeout_s=KAFKA_DOWN_TIMEOUT_S)


def ensure_redis(port: int = DEFAULT_REDIS_PORT) -> str:
    """Makes sure a redis answers on 127.0.0.1:``port`` and returns its URL.

    The URL has the form ``redis://127.0.0.1:6379`` (what ``redis.asyncio.from_url`` takes).
    With ``SHOAL_TEST_REDIS=host:port`` that redis is used as it is, whatever ``port`` says.
    Otherwise ``deploy/local/redis.sh up`` starts a redis-server without persistence; a redis
    that already answers on the port is used as it is.
    """
    external = _external(REDIS_ENV)
    if external is not None:
        host, ext_port = _host_port(external, REDIS_ENV)
        return f"redis://{host}:{ext_port}"
    _run_script(
        REDIS_SCRIPT, "up", timeout_s=REDIS_UP_TIMEOUT_S, extra_env={"REDIS_PORT": str(port)}
    )
    return f"redis://127.0.0.1:{port}"


def stop_redis(port: int = DEFAULT_REDIS_PORT) -> None:
    """Stops the redis-server that ``ensure_redis(port)`` started (``redis.sh down``).

    A redis on that port that the script did not start is left running.
    """
    if _external(REDIS_ENV) is not None:
        raise UnmanagedServerError(f"{REDIS_ENV} is set: the external redis cannot be stopped")
    _run_script(
        REDIS_SCRIPT, "down", timeout_s=REDIS_DOWN_TIMEOUT_S, extra_env={"REDIS_PORT": str(port)}
    )


def _ensure_member(script: Path, env_name: str, port_variable: str, default_port: int) -> str:
    external = _external(env_name)
    if external is not None:
        host, port = _host_port(external, env_name)
        return f"{host}:{port}"
    port = _env_port(port_variable, default_port)
    _run_script(script, "up", timeout_s=MEMBER_UP_TIMEOUT_S, extra_env={port_variable: str(port)})
    return f"127.0.0.1:{port}"


def _member_running(script: Path, env_name: str) -> bool:
    if _external(env_name) is not None:
        return True
    try:
        _run_script(script, "status", timeout_s=60)
    except ExternalServerError:
        return False
    return True


def _stop_member(script: Path, env_name: str, what: str) -> None:
    if _external(env_name) is not None:
        raise UnmanagedServerError(f"{env_name} is set: the external {what} cannot be stopped")
    _run_script(script, "down", timeout_s=MEMBER_DOWN_TIMEOUT_S)


def ensure_hazelcast() -> str:
    """Makes sure a Hazelcast member of cluster ``shoal-dev`` is up; returns ``host:port``.

    With ``SHOAL_TEST_HAZELCAST=host:port`` that member is used as it is. Otherwise
    ``deploy/local/hazelcast.sh up`` starts (and on first use downloads) the local member.
    """
    return _ensure_member(HAZELCAST_SCRIPT, HAZELCAST_ENV, "HAZELCAST_PORT", DEFAULT_HAZELCAST_PORT)


def hazelcast_running() -> bool:
    """Whether a member answers on the local Hazelcast port (``hazelcast.sh status``)."""
    return _member_running(HAZELCAST_SCRIPT, HAZELCAST_ENV)


def stop_hazelcast() -> None:
    """Stops the local member (``hazelcast.sh down``); its data is gone."""
    _stop_member(HAZELCAST_SCRIPT, HAZELCAST_ENV, "Hazelcast member")


def ensure_ignite() -> str:
    """Makes sure an Ignite 2.x node answers thin clients; returns ``host:port``.

    With ``SHOAL_TEST_IGNITE=host:port`` that node is used as it is. Otherwise
    ``deploy/local/ignite.sh up`` starts (and on first use downloads) the local node, whose
    caches named ``shoal*`` are TRANSACTIONAL.
    """
    return _ensure_member(IGNITE_SCRIPT, IGNITE_ENV, "IGNITE_PORT", DEFAULT_IGNITE_PORT)


def ignite_running() -> bool:
    """Whether a node answers on the local Ignite thin-client port (``ignite.sh status``)."""
    return _member_running(IGNITE_SCRIPT, IGNITE_ENV)


def stop_ignite() -> None:
    """Stops the local node (``ignite.sh down``); its data is gone."""
    _stop_member(IGNITE_SCRIPT, IGNITE_ENV, "Ignite node")


def ensure_redis_cluster(first_port: int) -> str:
    """Makes sure a 3-master Redis Cluster answers on 127.0.0.1:``first_port`` (and the next
    two ports) and returns its URL, ``redis+cluster://127.0.0.1:<p>,...``
    (``deploy/local/redis-cluster.sh up``)."""
    _run_script(
        REDIS_CLUSTER_SCRIPT,
        "up",
        timeout_s=REDIS_UP_TIMEOUT_S,
        extra_env={"REDIS_CLUSTER_PORT": str(first_port)},
    )
    nodes = ",".join(f"127.0.0.1:{first_port + offset}" for offset in range(3))
    return f"redis+cluster://{nodes}"


def redis_cluster_running(first_port: int) -> bool:
    """Whether a formed cluster answers on 127.0.0.1:``first_port`` (``redis-cluster.sh
    status``)."""
    try:
        _run_script(
            REDIS_CLUSTER_SCRIPT,
            "status",
            timeout_s=60,
            extra_env={"REDIS_CLUSTER_PORT": str(first_port)},
        )
    except ExternalServerError:
        return False
    return True


def stop_redis_cluster(first_port: int) -> None:
    """Stops the cluster ``ensure_redis_cluster(first_port)`` started."""
    _run_script(
        REDIS_CLUSTER_SCRIPT,
        "down",
        timeout_s=REDIS_DOWN_TIMEOUT_S,
        extra_env={"REDIS_CLUSTER_PORT": str(first_port)},
    )


def run_redis_cluster_script(action: str, first_port: int, environment: Mapping[str, str]) -> str:
    """``deploy/local/redis-cluster.sh <action>`` for a cluster of a test's own (its first port,
    its ``SHOAL_CACHE_DIR``, ``REDIS_CLUSTER_REPLICAS``...), for tests that fail it over."""
    return _run_script(
        REDIS_CLUSTER_SCRIPT,
        action,
        timeout_s=REDIS_UP_TIMEOUT_S,
        extra_env={"REDIS_CLUSTER_PORT": str(first_port), **environment},
    )


def run_redis_script(action: str, port: int, environment: Mapping[str, str]) -> str:
    """``deploy/local/redis.sh <action>`` for a redis-server of a test's own (its port, its
    ``SHOAL_CACHE_DIR``, ``REDIS_APPENDFSYNC``...), for tests that crash and restart it."""
    return _run_script(
        REDIS_SCRIPT,
        action,
        timeout_s=REDIS_UP_TIMEOUT_S,
        extra_env={"REDIS_PORT": str(port), **environment},
    )
