"""Which grid backend a coordinator runs on: `--backend` parsed, and the backend opened.

    memory                                   the embedded grid in this process (the default)
    redis://host:port[/namespace]            one Redis server shared by every coordinator
    redis+cluster://host:port,host:port[/ns] a Redis Cluster, found from any of its nodes
    hazelcast://host:port[,...]/cluster[/ns] a Hazelcast 5 cluster by its name (Shoal's jar on
                                             its members: deploy/local/hazelcast.sh)
    ignite://host:port[,...][/namespace]     an Apache Ignite 2.x cluster's thin-client port

A shared backend's namespace (default `shoal`) prefixes every key, so several grids share one
store apart; every coordinator started with the same URL serves the same grid.

Adding a backend is one entry of OPENERS: its URL scheme, and a function that checks the rest
of the URL (raising ValueError with the reason) and one that opens it from the server
configuration; see `_redis` below for the shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coordinator.config import ServerConfig
from grid.backend import Backend

DEFAULT_NAMESPACE = "shoal"
USAGE = (
    "memory, redis://host:port[/namespace], redis+cluster://host:port,host:port[/namespace], "
    "hazelcast://host:port/cluster-name[/namespace] or ignite://host:port[/namespace]"
)


@dataclass(frozen=True)
class BackendUrl:
    scheme: str
    # host:port, comma-separated for a cluster; empty for memory.
    addresses: tuple[str, ...]
    namespace: str
    # The Hazelcast cluster's name (its members refuse clients that present another).
    cluster: str = ""


def _addresses(location: str) -> tuple[str, ...]:
    addresses = tuple(part.strip() for part in location.split(",") if part.strip())
    if not addresses:
        raise ValueError("no host:port given")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{address!r} is not host:port")
    return addresses


def parse_backend(url: str) -> BackendUrl:
    """The backend a URL names; ValueError saying what is wrong with it."""
    if url == "memory":
        return BackendUrl("memory", (), "")
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"{url!r} is neither 'memory' nor a URL")
    if scheme not in OPENERS:
        raise ValueError(f"unknown backend scheme {scheme!r}")
    location, _, path = rest.partition("/")
    cluster = ""
    if scheme == "hazelcast":
        cluster, _, path = path.strip("/").partition("/")
        if not cluster:
            raise ValueError("hazelcast:// needs the cluster's name: hazelcast://host:port/name")
    namespace = path.strip("/") or DEFAULT_NAMESPACE
    if not all(char.isalnum() or char in "_-." for char in namespace):
        raise ValueError(f"namespace {namespace!r} may hold letters, digits, '_', '-', '.'")
    addresses = _addresses(location)
    if scheme == "redis" and len(addresses) != 1:
        raise ValueError("redis:// takes one host:port (redis+cluster:// takes several)")
    return BackendUrl(scheme, addresses, namespace, cluster)


def redacted(url: str) -> str:
    """The backend URL fit to log or show: anything up to the last `@` of its location
    (a password, `redis://:secret@host:6379`) as `***`. Everything before the last `@`
    goes, so no shape of password (one holding `,` or `/`) survives."""
    scheme, separator, rest = url.partition("://")
    at = rest.rfind("@")
    if not separator or at < 0:
        return url
    return f"{scheme}://***@{rest[at + 1 :]}"


def check_backend(url: str) -> None:
    """Raises ValueError naming what is wrong with a `--backend` value."""
    parse_backend(url)


def _memory(config: ServerConfig, url: BackendUrl) -> Backend:
    from grid.memory.backend import MemoryBackend, MemoryBackendConfig
    from grid.memory.wal import FsyncPolicy

    return MemoryBackend(
        MemoryBackendConfig(
            data_dir=config.data_dir,
            partitions=config.partitions,
            fsync=FsyncPolicy(config.fsync),
            fsync_interval_ms=config.fsync_interval_ms,
            checkpoint_wal_bytes=config.checkpoint_wal_bytes,
            # A window of 0 keeps no versions: every read is of the latest state.
            versions_bytes_max=(
                config.mvcc_window_bytes_max // config.partitions if config.mvcc_window_ms else 0
            ),
        )
    )


def _redis(config: ServerConfig, url: BackendUrl) -> Backend:
    from grid.redis.backend import RedisBackend, RedisBackendConfig

    return RedisBackend(
        RedisBackendConfig(
            url=f"{url.scheme}://{','.join(url.addresses)}",
            namespace=url.namespace,
            partitions=config.partitions,
            lease_ms=config.txn_lease_ms,
        )
    )


def _hazelcast(config: ServerConfig, url: BackendUrl) -> Backend:
    from grid.hazelcast.backend import HazelcastBackend, HazelcastBackendConfig

    return HazelcastBackend(
        HazelcastBackendConfig(
            url=f"hazelcast://{','.join(url.addresses)}/{url.cluster}",
            namespace=url.namespace,
            partitions=config.partitions,
            lease_ms=config.txn_lease_ms,
        )
    )


def _ignite(config: ServerConfig, url: BackendUrl) -> Backend:
    from grid.ignite.backend import IgniteBackend, IgniteBackendConfig

    return IgniteBackend(
        IgniteBackendConfig(
            url=f"ignite://{','.join(url.addresses)}",
            namespace=url.namespace,
            partitions=config.partitions,
            lease_ms=config.txn_lease_ms,
        )
    )


# URL scheme -> opener. The imports are inside the openers: a coordinator on memory needs no
# store client installed.
OPENERS: dict[str, Callable[[ServerConfig, BackendUrl], Backend]] = {
    "memory": _memory,
    "redis": _redis,
    "redis+cluster": _redis,
    "hazelcast": _hazelcast,
    "ignite": _ignite,
}


def open_backend(config: ServerConfig) -> Backend:
    """The backend `config.backend` names, not yet opened (see Backend.open)."""
    url = parse_backend(config.backend)
    return OPENERS[url.scheme](config, url)
