"""The Redis backend: a namespace of partitions in one Redis or one Redis Cluster (every key of a
partition carries the partition's hash tag, so a partition is one slot), shared by every
coordinator that opens it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from grid.backend import ParticipantHooks
from grid.entry import pack
from grid.errors import FailedPrecondition, InvalidArgument, Unavailable
from grid.redis.catalog_store import RedisCatalogStore
from grid.redis.layout import PartitionLayout
from grid.redis.library import StepsLibrary
from grid.redis.partition import RedisPartition
from grid.redis.replicas import ReplicaWait, cluster_has_replicas
from grid.redis.retrying import retried
from grid.redis.sequence import RedisCommitSequence

CLUSTER_SCHEME = "redis+cluster://"


def connect(url: str) -> Any:
    """A client for ``redis://host:port`` (one server) or ``redis+cluster://h:p,h:p`` (a Redis
    Cluster, found from any of the given nodes). Both run the same steps: every key of a step
    carries its partition's hash tag, so each step goes to the one node that owns the slot."""
    if url.startswith(CLUSTER_SCHEME):
        # redis-py's ClusterNode has no annotations; called through Any to keep mypy strict.
        make_node: Any = ClusterNode
        nodes = []
        for address in url[len(CLUSTER_SCHEME) :].strip("/").split(","):
            host, _, port = address.rpartition(":")
            nodes.append(make_node(host, int(port)))
        try:
            return RedisCluster(startup_nodes=nodes)
        except redis.exceptions.RedisClusterException as error:
            raise Unavailable(f"the Redis Cluster cannot be reached ({error})") from None
    return redis.Redis.from_url(url)


@retried
def is_cluster_node(client: Any) -> bool:
    """Whether a plain ``redis://`` client reached a node of a Redis Cluster: its steps would
    each be redirected (MOVED) and never run, so the URL is refused at start."""
    return bool(client.info("cluster").get("cluster_enabled"))


@dataclass(frozen=True)
class RedisBackendConfig:
    # redis://host:port, or redis+cluster://host:port,host:port for a Redis Cluster.
    url: str
    # Every key starts with it: several grids (a sandbox, a test) share one Redis apart.
    namespace: str
    partitions: int
    # Lease of a commit number (by Redis's clock) before another coordinator may presume its
    # holder dead.
    lease_ms: int = 10_000


class RedisBackend:
    """A ``grid.backend.Backend`` whose partitions and catalog live in Redis."""

    def __init__(self, config: RedisBackendConfig) -> None:
        self.config = config
        self._client: Any = connect(config.url)
        if not config.url.startswith(CLUSTER_SCHEME) and is_cluster_node(self._client):
            self._client.close()
            address = config.url.partition("://")[2]
            raise InvalidArgument(
                f"{config.url} is a node of a Redis Cluster: name the cluster "
                f"{CLUSTER_SCHEME}{address}[/namespace]",
                field="backend",
            )
        # The steps of grid/redis/steps.lua, loaded where missing (grid/redis/library.py).
        steps = StepsLibrary(self._client)
        self._steps = steps
        # A Redis Cluster with replicas: every change waits for one replica before it is
        # acknowledged, so a failover cannot lose it (grid/redis/replicas.py).
        self.replica_wait = ReplicaWait(
            self._client, 1 if cluster_has_replicas(self._client) else 0
        )
        self._partitions = [
            RedisPartition(
                self._client, PartitionLayout(config.namespace, index), steps, self.replica_wait
            )
            for index in range(config.partitions)
        ]
        self._catalog_store = RedisCatalogStore(self._client, config.namespace, self.replica_wait)
        self._sequence = RedisCommitSequence(
            self._client, config.namespace, lease_ms=config.lease_ms, replicas=self.replica_wait
        )

    # Several coordinators share this backend: see grid.backend.SharedBackend.
    shared = True

    @property
    def sequence(self) -> RedisCommitSequence:
        return self._sequence

    @retried
    def time_ms(self) -> int:
        """Redis's clock (``TIME``): the one clock every coordinator's leases are read by."""
        seconds, microseconds = self._client.time()
        return int(seconds) * 1000 + int(microseconds) // 1000

    @retried
    def lookup_many(
        self,
        map_name: str,
        keys: Sequence[str],
        partitions: Sequence[int],
        version: int | None = None,
    ) -> list[bytes | None]:
        """Committed entries of many keys, one atomic read per partition, all pipelined in one
        round trip; as of a read version when one is given (keys changed after it are then
        read from their kept states)."""
        by_partition: dict[int, list[int]] = {}
        for position, partition in enumerate(partitions):
            by_partition.setdefault(partition, []).append(position)
        order = sorted(by_partition)
        replies = self._read_many(map_name, keys, order, by_partition)
        found: list[bytes | None] = [None] * len(keys)
        for partition, reply in zip(order, replies, strict=True):
            newest = int(reply[0])
            for index, position in enumerate(by_partition[partition]):
                value, key_version = reply[1 + 2 * index], int(reply[2 + 2 * index])
                entry = None if value is None else pack(value, key_version)
                if (
                    version is not None
                    and newest > version
                    and (entry is None or key_version > version)
                ):
                    # Changed after the read version (or maybe deleted since): its kept state.
                    entry = self._partitions[partition].get_at(map_name, keys[position], version)
                found[position] = entry
        return found

    def _read_many(
        self,
        map_name: str,
        keys: Sequence[str],
        order: list[int],
        by_partition: dict[int, list[int]],
    ) -> list[list[Any]]:
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for partition in order:
                layout = self._partitions[partition].layout
                declared = [layout.meta, *layout.map_keys(map_name)]
                arguments = [layout.prefix, "read_many", map_name]
                arguments += [keys[position] for position in by_partition[partition]]
                self._steps.pipe_call(pipe, declared, arguments)
            try:
                replies: list[list[Any]] = pipe.execute()
                return replies
            except redis.exceptions.ResponseError as error:
                # A server without the steps (fresh, restarted without its data): load them.
                if attempt or not self._steps.missing(error):
                    raise
                self._steps.reload()
        raise AssertionError("unreachable")

    @property
    def name(self) -> str:
        return "redis-cluster" if self.config.url.startswith(CLUSTER_SCHEME) else "redis"

    @property
    def partitions(self) -> Sequence[RedisPartition]:
        return self._partitions

    @property
    def catalog_store(self) -> RedisCatalogStore:
        return self._catalog_store

    def open(self, hooks: ParticipantHooks) -> None:
        # Steps with a Python hook (increments, appends, sketch adds) consult them.
        for partition in self._partitions:
            partition.hooks = hooks
        self._client.ping()
        # The partition count is the namespace's, fixed by the first coordinator: a key's
        # partition must be the same for every coordinator.
        key = f"{{{self.config.namespace}:catalog}}:partitions"
        self._client.set(key, self.config.partitions, nx=True)
        self.replica_wait.after_write(key)
        fixed = int(self._client.get(key))
        if fixed != self.config.partitions:
            raise FailedPrecondition(
                f"namespace '{self.config.namespace}' has {fixed} partitions, not "
                f"{self.config.partitions} (--partitions must match the coordinators already "
                "serving it)",
                field="partitions",
            )
        for partition in self._partitions:
            # Records written before the sweeper's status indexes existed get indexed once.
            partition.index_statuses()

    def close(self) -> None:
        self._client.close()
