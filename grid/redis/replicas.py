"""Waiting for a replica after a write, so that a failover cannot lose what was acknowledged.

Redis replicates asynchronously: a master that acknowledged a step and died before sending it
on takes the step with it when its replica is promoted. So on a Redis Cluster with replicas
every step that changes the store (docs/architecture/recovery.md) is followed,
before its answer, by ``WAIT 1 <timeout>`` on the master of the step's slot; a replica that does
not confirm in time makes the step answer UNAVAILABLE (the step may then be there or not, as
any step whose answer was lost; the client's retry by request id finds out).

``WAIT`` counts the writes of the connection it is sent on, and redis-py may send the step on
any connection of its pool. So ``WAIT`` goes in one pipeline behind a ``SET`` of a marker key of
the same slot: Redis replicates in one order, so a replica that has the marker has everything
its master ran before it, the step included. While a slot migrates, the marker may already be on
the slot's target: an ``ASK`` sends the marker and ``WAIT`` there (a step that ran on the source
then counts on the source's own replication; a failover during a resharding is not tested).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from grid.errors import Unavailable

log = logging.getLogger(__name__)

# How long a master waits for its replica's confirmation before the step answers UNAVAILABLE;
# below redis-py's socket timeout (5 s), which would otherwise cut the WAIT short.
WAIT_TIMEOUT_MS = 2000
# How long a marker keeps being sent again while the slot moves (MOVED/ASK during a reshard or
# a failover) before the step answers UNAVAILABLE.
REDIRECTS_S = 3.0


def cluster_has_replicas(client: Any) -> bool:
    """Whether a Redis Cluster has replicas (a plain Redis client: False). Read from CLUSTER
    NODES, which lists a replica from the start (CLUSTER SLOTS omits one until it has synced
    or while it is down)."""
    if not hasattr(client, "get_replicas"):
        return False
    nodes: dict[str, dict[str, Any]] = client.cluster_nodes()
    return any("slave" in node["flags"].split(",") for node in nodes.values())


class ReplicaWait:
    """``after_write(key)``: returns once ``replicas`` replicas of the master holding ``key``'s
    slot have every write it ran so far; a no-op when ``replicas`` is 0."""

    def __init__(self, client: Any, replicas: int, timeout_ms: int = WAIT_TIMEOUT_MS) -> None:
        self._client = client
        self.replicas = replicas
        self._timeout_ms = timeout_ms

    def after_write(self, key: str) -> None:
        if not self.replicas:
            return
        marker = _marker(key)
        deadline = time.monotonic() + REDIRECTS_S
        node = None
        while True:
            try:
                confirmed = self._wait(marker, node)
                break
            except redis.exceptions.MovedError:
                # The slot moved after the step: the next master has the step (a failover
                # promoted the replica that had it, a reshard migrated it), wait on that one.
                if time.monotonic() > deadline:
                    raise Unavailable("the Redis Cluster slot keeps moving; retry") from None
                node = None
                self._client.nodes_manager.initialize()
                time.sleep(0.05)
            except redis.exceptions.AskError as ask:
                # The slot is migrating and the marker already moved: wait on the node it
                # moved to (ASKING before the SET).
                if time.monotonic() > deadline:
                    raise Unavailable("the Redis Cluster slot keeps moving; retry") from None
                node = self._client.get_node(host=ask.host, port=ask.port)
        if confirmed < self.replicas:
            log.warning("no replica confirmed a write to %s within %d ms", marker, self._timeout_ms)
            raise Unavailable(
                f"no replica of the Redis master confirmed the write within "
                f"{self._timeout_ms} ms (a failover could lose it); retry"
            )

    def _wait(self, marker: str, asked: Any) -> int:
        node = asked or self._client.get_node_from_key(marker)
        pipe = self._client.get_redis_connection(node).pipeline(transaction=False)
        if asked is not None:
            pipe.execute_command("ASKING")
        pipe.set(marker, 1)
        pipe.execute_command("WAIT", self.replicas, self._timeout_ms)
        *_, confirmed = pipe.execute()
        return int(confirmed)


def _marker(key: str) -> str:
    """A key in the same slot as ``key`` (its hash tag, or the key itself when it has none)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    tag = key[start : end + 1] if start >= 0 and end > start + 1 else "{" + key + "}"
    return f"{tag}:replicated"
