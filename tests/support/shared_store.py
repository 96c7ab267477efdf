"""Several `shoal serve` coordinators on one shared backend, for the multi-coordinator tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.support.server_process import ServerProcess


def fresh_namespace(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _client(url: str) -> redis.Redis | RedisCluster:
    if url.startswith("redis+cluster://"):
        nodes = []
        for address in url.removeprefix("redis+cluster://").split(","):
            host, _, port = address.rpartition(":")
            nodes.append(ClusterNode(host, int(port)))
        return RedisCluster(startup_nodes=nodes)
    return redis.Redis.from_url(url)


def drop_namespace(url: str, namespace: str) -> None:
    """Deletes every key of a namespace (on Redis each starts with `{<namespace>:`; Hazelcast
    and Ignite have their own)."""
    if url.startswith("hazelcast://"):
        from grid.hazelcast import backend as hazelcast

        client = hazelcast.connect(url)
        try:
            hazelcast.drop_namespace(client, namespace)
        finally:
            client.shutdown()
        return
    if url.startswith("ignite://"):
        from grid.ignite import backend as ignite

        client = ignite.connect(url)
        try:
            ignite.drop_namespace(client, namespace)
        finally:
            client.close()
        return
    client = _client(url)
    try:
        if isinstance(client, RedisCluster):
            for node in client.get_primaries():
                for key in client.scan_iter(match=f"{{{namespace}:*", target_nodes=node):
                    client.delete(key)
        else:
            keys = list(client.scan_iter(match=f"{{{namespace}:*"))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
    finally:
        client.close()


@contextmanager
def dropped_namespace(url: str, prefix: str = "shared-") -> Iterator[str]:
    """A fresh namespace of the store at `url`, every record of it dropped at the end (the
    backend tests' namespace fixture on any store)."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_namespace(url, name)


@contextmanager
def coordinators(
    tmp_path: Path,
    store_url: str,
    count: int,
    *,
    extra_args: list[str] | None = None,
    environments: list[dict[str, str]] | None = None,
) -> Iterator[list[ServerProcess]]:
    """`count` coordinators serving one fresh namespace of `store_url`; stopped (and the
    namespace dropped) at the end."""
    namespace = fresh_namespace()
    backend = f"{store_url}/{namespace}"
    servers: list[ServerProcess] = []
    try:
        for index in range(count):
            servers.append(
                ServerProcess(
                    tmp_path / f"coordinator-{index}",
                    ["--backend", backend, "--partitions", "8", *(extra_args or [])],
                    environment=(environments or [{}] * count)[index],
                ).start()
            )
        yield servers
    finally:
        for server in servers:
            server.kill()
        drop_namespace(store_url, namespace)


def wait_for_map(servers: list[ServerProcess], map_name: str, key: str) -> None:
    """Returns once every coordinator serves `map_name` (a get of `key` answers): a map created
    through one reaches the others within a second, not at once."""
    from shoal import Client, ShoalError

    for server in servers:
        client = Client(server.target)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    client.get(map_name, key)
                    break
                except ShoalError:
                    assert time.monotonic() < deadline, (
                        f"'{map_name}' never reached {server.target}"
                    )
                    time.sleep(0.1)
        finally:
            client.close()
