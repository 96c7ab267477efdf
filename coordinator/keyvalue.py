"""Key-value operations: committed reads, plain writes, batches and scans.

A plain write is a one-key transaction: it goes through the transaction manager, so
it respects locks of transactions in flight, schemas and references exactly as a
transaction does. A batch write applies each partition's share atomically, in one
log record per partition; all values are validated before anything is written, so
bad input writes nothing. (For all-or-nothing across partitions, use a transaction.)

Every answer (a put's version, a delete's "existed", a batch's versions) comes from the
commit itself, never from a read beside it, so it is true under concurrent writers, and
a write retried with its request id gets the first attempt's answer back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from coordinator.limits import Limits
from coordinator.transactions.manager import CommitResult, TransactionManager
from coordinator.transactions.planning import Planner, raise_system_map
from grid.backend import Backend, PartitionStore
from grid.catalog import Catalog, is_system_map
from grid.errors import Conflict, FailedPrecondition, InvalidArgument, ResourceExhausted
from grid.memory.records import Op
from grid.participant import ApplyOnePhase, Condition, Write
from grid.partitioner import Partitioner

Result = TypeVar("Result")


class KeyValue:
    def __init__(
        self,
        catalog: Catalog,
        partitioner: Partitioner,
        backend: Backend,
        planner: Planner,
        manager: TransactionManager,
        limits: Limits,
    ) -> None:
        self.catalog = catalog
        self.partitioner = partitioner
        self.backend = backend
        self.partitions: Sequence[PartitionStore] = backend.partitions
        self.planner = planner
        self.manager = manager
        self.limits = limits

    def read_version(self, requested: int = 0) -> int:
        """The version to read at: the latest visible one, or `requested` (checked)."""
        return self.manager.read_version(requested)

    def get(self, map_name: str, key: str, *, read_version: int = 0) -> bytes | None:
        """The committed entry of a key (value then version, see grid.entry), or None;
        as of `read_version` when one is given (see `read_version`)."""
        self.catalog.get(map_name)
        self.planner.check_key(key)
        store = self.partitions[self.partitioner.partition_of(key)]
        if read_version:
            return store.get_at(map_name, key, read_version)
        return store.get(map_name, key)

    def get_many(
        self,
        map_name: str,
        keys: Sequence[str],
        *,
        consistent: bool = False,
        read_version: int = 0,
        packed: bytes | None = None,
    ) -> list[bytes | None]:
        """The committed entry of each key (None where absent), in request order.

        `consistent` reads all of them at one read version (`read_version`, or the
        latest), so the batch never shows a transaction on some of its partitions only.
        """
        self.catalog.get(map_name)
        self._check_batch(len(keys))
        if keys and (
            not all(keys)
            # A key of n characters has at most 4n UTF-8 bytes: only then check exactly.
            or max(map(len, keys)) * 4 > self.limits.key_bytes_max
            or "\x00" in "".join(keys)
        ):
            for key in keys:
                self.planner.check_key(key)
        if packed is not None:
            partitions = self.partitioner.partitions_of_packed(packed)
        else:
            partitions = self.partitioner.partitions_of(keys)
        version = None
        if consistent or read_version:
            version = read_version or self.manager.read_version()
        return self._lookup(map_name, keys, partitions, version)

    def _lookup(
        self,
        map_name: str,
        keys: Sequence[str],
        partitions: Sequence[int],
        version: int | None,
    ) -> list[bytes | None]:
        return self.backend.lookup_many(map_name, keys, partitions, version)

    def put(
        self,
        map_name: str,
        key: str,
        value: bytes,
        *,
        request_id: bytes = b"",
        condition: Condition | None = None,
    ) -> int:
        write = Write(Op.PUT, map_name, key, value, condition)
        result = self.manager.commit(request_id or os.urandom(16), (), [write], plain=True)
        return _answered(result).versions[0]

    def delete(
        self,
        map_name: str,
        key: str,
        *,
        request_id: bytes = b"",
        condition: Condition | None = None,
    ) -> bool:
        write = Write(Op.DELETE, map_name, key, b"", condition)
        result = self.manager.commit(request_id or os.urandom(16), (), [write], plain=True)
        return 0 in _answered(result).removed

    def put_many(
        self,
        map_name: str,
        keys: Sequence[str],
        values: Sequence[bytes],
        *,
        request_id: bytes = b"",
    ) -> list[int]:
        if len(keys) != len(values):
            raise InvalidArgument(
                f"{len(keys)} keys but {len(values)} values; they must pair up", field="values"
            )
        self._check_batch(len(keys))
        self.planner.check_write_bytes(sum(map(len, keys)) + sum(map(len, values)))
        # Checked against the latest catalog, as `Planner.plan` checks every other write.
        self.catalog.confirm()
        definition = self.catalog.get(map_name)
        if is_system_map(map_name):
            raise_system_map(map_name)
        request_id = request_id or os.urandom(16)
        writes = [
            self.planner.checked_write(Write(Op.PUT, map_name, key, value), definition)
            for key, value in zip(keys, values, strict=True)
        ]
        if definition.schema is not None and definition.schema.references():
            # References span partitions: keep the batch one transaction.
            result = self.manager.commit(request_id, (), writes, plain=True)
            return list(_answered(result).versions)
        groups: dict[int, list[int]] = {}
        for position, partition in enumerate(self.partitioner.partitions_of(keys)):
            groups.setdefault(partition, []).append(position)
        versions = [0] * len(keys)
        # Each partition's share is its own one-phase commit, with its own idempotency
        # key derived from the batch's; all of them at one place in the commit order.
        shares = [
            (
                partition,
                ApplyOnePhase(
                    request_id + partition.to_bytes(2, "big"),
                    (),
                    tuple(writes[position] for position in positions),
                ),
            )
            for partition, positions in groups.items()
        ]
        replies = self._waiting_for_locks(lambda: self.manager.apply_shares(shares))
        for positions, reply in zip(groups.values(), replies, strict=True):
            for position, version in zip(positions, reply.versions, strict=True):
                versions[position] = version
        return versions

    def _waiting_for_locks(self, apply: Callable[[], Result]) -> Result:
        """Runs `apply`, retrying while a key is locked by a transaction in flight, for as
        long as a plain write waits (`plain_write_wait_ms`).

        A retry is safe: each share carries its request id, so a share that applied
        before another share met a lock answers from memory and is not applied twice.
        """
        waited_ms = 0.0
        backoff_ms = 1.0
        while True:
            try:
                return apply()
            except Conflict:
                if waited_ms >= self.manager.config.plain_write_wait_ms:
                    raise
            self.manager.clock.sleep_s(backoff_ms / 1000)
            waited_ms += backoff_ms
            backoff_ms = min(backoff_ms * 2, 20.0)

    def scan(
        self,
        map_name: str,
        *,
        prefix: str = "",
        limit: int = 0,
        chunk_entries: int = 0,
        read_version: int = 0,
    ) -> Iterator[list[tuple[str, bytes]]]:
        """Chunks of (key, entry), partition by partition: all as of `read_version`
        (checked by `read_version()`) when given, else each partition at the latest read
        version when its turn comes, so a long scan never outlives the window."""
        self.catalog.get(map_name)
        chunk_size = min(chunk_entries or 1000, self.limits.scan_chunk_entries_max)
        remaining = limit or -1
        chunk: list[tuple[str, bytes]] = []
        for partition in self.partitions:
            version = read_version or self.manager.read_version()
            for key, entry in partition.items_at(map_name, version):
                if prefix and not key.startswith(prefix):
                    continue
                chunk.append((key, entry))
                remaining -= 1
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
                if remaining == 0:
                    if chunk:
                        yield chunk
                    return
        if chunk:
            yield chunk

    def _check_batch(self, size: int) -> None:
        if size > self.limits.batch_entries_max:
            raise ResourceExhausted(
                f"batch of {size} entries exceeds the limit of {self.limits.batch_entries_max}",
                field="keys",
            )


def _answered(result: CommitResult) -> CommitResult:
    """The result, unless it is a retry whose first answer is no longer remembered.

    Then the write did happen, but its versions (or whether a delete removed a value)
    are lost: saying so beats a made-up answer.
    """
    if not result.answered:
        raise FailedPrecondition(
            "this request was applied by an earlier attempt, but its answer is no longer "
            "remembered (too many writes to its partitions since); read the key instead",
            field="request_id",
        )
    return result
