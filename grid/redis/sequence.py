"""The commit sequence in Redis: one order of commits for every coordinator of a namespace.

As ``coordinator.transactions.sequence.CommitSequence`` does in one process, a commit takes the
next number and holds it while it applies on its partitions; the read version is the newest
number below every number still held, so a read at it sees each commit on all of its partitions
or on none. Here the numbers live under one hash tag (``{<namespace>:seq}``, one Redis Cluster
slot): ``last`` (the last number handed out), ``flight`` (a sorted set of the numbers held),
``leases``, ``owners`` and ``numbers`` (hashes: number -> lease expiry in the store's
milliseconds, number -> who holds it, holder -> number). A holder (a transaction's id) holds at
most one number: whoever takes a number for a transaction already holding one gets that number,
so the coordinator committing a transaction and a recovery sweeper finishing it on another
coordinator commit it at one version on every partition. Each operation is one Lua script, so
coordinators never race on them, and a lease is read from Redis's clock (``TIME``), never from
a coordinator's: a holder that died is found by ``expired()`` once its lease passed by that
clock, whatever the coordinators' clocks say, and the recovery sweeper decides its transaction
before it ``release``s the number
(docs/architecture/commit-order.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from grid.redis.replicas import ReplicaWait
from grid.redis.retrying import retried

TAKE = """
local number = tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '0')
local deadline
if number > 0 then
  deadline = tonumber(redis.call('HGET', KEYS[3], number) or '0')
else
  number = redis.call('INCR', KEYS[1])
  local now = redis.call('TIME')
  deadline = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
  redis.call('ZADD', KEYS[2], number, number)
  redis.call('HSET', KEYS[3], number, deadline)
  redis.call('HSET', KEYS[4], number, ARGV[2])
  redis.call('HSET', KEYS[5], ARGV[2], number)
end
-- The numbers below it still held: no lower number is handed out later, so the commit
-- waits for these alone (at most ARGV[3] of them listed; more are reported as a count).
local lower = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. number, 'LIMIT', 0, ARGV[3])
local count = #lower
if count >= tonumber(ARGV[3]) then count = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. number) end
return {number, deadline, count, lower}
"""
# How many held numbers below a new one TAKE lists; past it the commit asks the store.
LOWER_LISTED_MAX = 256
RELEASE = """
local owner = redis.call('HGET', KEYS[4], ARGV[1])
if owner and redis.call('HGET', KEYS[5], owner) == ARGV[1] then
  redis.call('HDEL', KEYS[5], owner)
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""
RENEW = """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) == false then return 0 end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[3], ARGV[1], now_ms + tonumber(ARGV[2]))
return 1
"""
READ_VERSION = """
local first = redis.call('ZRANGE', KEYS[2], 0, 0)
if #first == 0 then return tonumber(redis.call('GET', KEYS[1]) or '0') end
return tonumber(first[1]) - 1
"""
EXPIRED = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local found = {}
for _, number in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)) do
  local lease = tonumber(redis.call('HGET', KEYS[3], number) or '0')
  if lease + tonumber(ARGV[2]) <= now_ms then
    found[#found + 1] = number
    found[#found + 1] = redis.call('HGET', KEYS[4], number) or ''
  end
end
return found
"""


class RedisCommitSequence:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        lease_ms: int = 10_000,
        replicas: ReplicaWait | None = None,
    ) -> None:
        self.lease_ms = lease_ms
        # A number handed out is on a replica first: a failover must not hand it out again.
        self._replicas = replicas or ReplicaWait(client, 0)
        tag = f"{{{namespace}:seq}}"
        self._keys = [
            f"{tag}:last",
            f"{tag}:flight",
            f"{tag}:leases",
            f"{tag}:owners",
            f"{tag}:numbers",
        ]
        self._client = client
        self._cluster = isinstance(cast(Any, client), RedisCluster)
        self._take = client.register_script(TAKE)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._read_version = client.register_script(READ_VERSION)
        self._expired = client.register_script(EXPIRED)

    def _run(self, script: Any, *arguments: Any) -> Any:
        return script(keys=self._keys, args=list(arguments), client=self._client)

    def take(self, owner: str) -> int:
        """The next number, held (in flight) by ``owner`` until released or its lease ends; the
        number ``owner`` holds already, when it holds one."""
        return self.take_with_deadline(owner)[0]

    def take_with_deadline(self, owner: str) -> tuple[int, int]:
        """``take``, with the number's lease expiry by Redis's clock: a one-phase step carries
        it and refuses after it, since ``expired`` may then report the number."""
        number, deadline, _ = self.take_with_lower(owner)
        return number, deadline

    @retried
    def take_with_lower(self, owner: str) -> tuple[int, int, list[int] | None]:
        """``take_with_deadline``, with the numbers below it still held when it was taken
        (None when more than ``LOWER_LISTED_MAX`` are): numbers only grow, so these are all
        the commits it must wait for, and the caller waits for its own process's holders
        without asking the store again."""
        number, deadline, count, lower = self._run(
            self._take, self.lease_ms, owner, LOWER_LISTED_MAX
        )
        self._replicas.after_write(self._keys[0])
        listed = [int(each) for each in lower]
        return int(number), int(deadline), listed if len(listed) == int(count) else None

    @retried
    def release(self, number: int) -> None:
        """The commit holding ``number`` is applied everywhere (or decided against)."""
        self._run(self._release, number)

    def release_command(self, number: int) -> list[Any] | None:
        """The release of ``number`` as a command to send right behind another on the same
        connection (``RedisPartition.apply_then``), or None where that cannot keep the order:
        on a Redis Cluster the sequence and a partition are different nodes, and with replicas
        a write is acknowledged only after its replica has it."""
        if self._cluster or self._replicas.replicas:
            return None
        return ["EVALSHA", self._release.sha, len(self._keys), *self._keys, number]

    @retried
    def renew(self, number: int) -> bool:
        """Extends the lease of a number still held; False when it is no longer held."""
        return bool(self._run(self._renew, number, self.lease_ms))

    @contextmanager
    def commit(self, owner: str) -> Iterator[int]:
        """Holds the next number while the caller applies its commit with it."""
        number = self.take(owner)
        try:
            yield number
        finally:
            # A commit that failed leaves a gap: numbers need not be dense.
            self.release(number)

    @retried
    def read_version(self) -> int:
        """The newest version whose commits are all applied: a consistent point to read at."""
        return int(self._run(self._read_version))

    @retried
    def expired(self, scan_max: int = 1000, margin_ms: int = 0) -> list[tuple[int, str]]:
        """Numbers (and owners) among the oldest ``scan_max`` held whose lease passed by the
        store's clock ``margin_ms`` ago: their coordinators are presumed gone. The margin
        covers the clocks of a Redis Cluster's other nodes, which refuse a step after the
        number's deadline by their own clock."""
        found = self._run(self._expired, scan_max, margin_ms)
        pairs = []
        for position in range(0, len(found), 2):
            owner = found[position + 1]
            pairs.append(
                (int(found[position]), owner.decode() if isinstance(owner, bytes) else owner)
            )
        return pairs
