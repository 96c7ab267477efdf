"""The Redis backend: a namespace of partitions in one Redis (Redis Cluster ready: every key of
a partition carries the partition's hash tag), shared by every coordinator that opens it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from grid.backend import ParticipantHooks
from grid.redis.catalog_store import RedisCatalogStore
from grid.redis.layout import PartitionLayout
from grid.redis.partition import STEPS_SOURCE, RedisPartition


@dataclass(frozen=True)
class RedisBackendConfig:
    url: str
    # Every key starts with it: several grids (a sandbox, a test) share one Redis apart.
    namespace: str
    partitions: int


class RedisBackend:
    """A ``grid.backend.Backend`` whose partitions and catalog live in Redis."""

    def __init__(self, config: RedisBackendConfig) -> None:
        self.config = config
        self._client: redis.Redis = redis.Redis.from_url(config.url)
        # redis-py sends EVALSHA and loads the script again after NOSCRIPT (a restart).
        script = self._client.register_script(STEPS_SOURCE)
        self._partitions = [
            RedisPartition(self._client, PartitionLayout(config.namespace, index), script)
            for index in range(config.partitions)
        ]
        self._catalog_store = RedisCatalogStore(self._client, config.namespace)

    @property
    def name(self) -> str:
        return "redis"

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

    def close(self) -> None:
        self._client.close()
