"""One partition kept in Hazelcast: its whole state is one entry, and each participant step is
one entry processor on it (dev.shoal.hazelcast.PartitionProcessor, the Java twin of
grid/redis/steps.lua, taking the same arguments and giving the same replies).

Hazelcast runs one operation of a partition at a time on the partition's thread, so a step is
atomic and every coordinator sees the same partition; with the map's in-memory format OBJECT
the member changes the state in place (deploy/local/hazelcast.sh configures ``shoal.*.partitions``
so). Increments, appends and sketch adds read the records they name, resolve in Python and
compare-and-apply (grid/hazelcast/hooked.py), exactly as on Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from grid.backend import (
    MapSize,
    MapState,
    ParticipantHooks,
    StagedView,
    StatusView,
    SweepStatuses,
)
from grid.entry import pack
from grid.errors import FailedPrecondition, ReadVersionTooOld
from grid.hazelcast.hooked import HazelcastHookedSteps
from grid.hazelcast.lost import unavailable_when_lost
from grid.hazelcast.processors import PartitionRead, PartitionStep
from grid.protocol import (
    Abort,
    Ack,
    ApplyOnePhase,
    CasStatus,
    Commit,
    CreateStatus,
    DropMap,
    Event,
    ForgetStatus,
    ForgetVersions,
    PreCommit,
    Prepare,
    ReadOutcome,
    ReadStatus,
    Reply,
    Vote,
)
from grid.redis.hooked import needs_hooks

# The arguments and replies are grid/redis/steps.lua's, so they are built and read by the same
# functions as the Redis backend's.
from grid.redis.partition import (
    UnsupportedByBackend,
    _reads,
    _text,
    _writes,
    applied_answer,
    commit_answer,
    dropped,
    hooked_answer,
    outcome_of,
    status_of,
    vote_of,
)
from grid.versions import VersionStats


def _no_sketches(map_name: str, current: bytes | None, items: bytes) -> bytes:
    raise FailedPrecondition(f"map '{map_name}' is not a sketch map here", field="map")


def _entries(found: list[Any], start: int) -> list[tuple[str, bytes]]:
    """(key, entry) from a reader's [key, value, version, ...] reply, sorted by key."""
    return sorted(
        (found[position], pack(bytes(found[position + 1]), found[position + 2]))
        for position in range(start, len(found), 3)
    )


class HazelcastPartition:
    """A ``grid.backend.PartitionStore`` whose state is one entry of a Hazelcast map."""

    def __init__(self, partitions_map: Any, index: int) -> None:
        """``partitions_map``: the namespace's partitions map (the client's non-blocking proxy:
        a get-many sends every partition's read before it awaits any)."""
        self.index = index
        self._map_async = partitions_map
        self._map = partitions_map.blocking()
        self._key = f"p{index}"
        # Status records the member looked at for this partition's sweep reads (a count for
        # tests: a sweep must not look at decided records kept and not yet due).
        self.status_records_read = 0
        self._hooked = HazelcastHookedSteps(self._call, self.get, self._read)
        # Set by HazelcastBackend.open: what steps with a Python hook consult.
        self.hooks = ParticipantHooks(
            validators=lambda map_name: None,
            guarded_field=lambda map_name, field_name: False,
            sketch_apply=_no_sketches,
        )

    def _call(self, step: str, *arguments: Any) -> list[Any]:
        with unavailable_when_lost(f"step {step} of partition {self.index}"):
            reply: list[Any] = self._map.execute_on_key(self._key, PartitionStep(step, arguments))
        return reply

    def _read(self, read: str, *arguments: Any) -> list[Any]:
        with unavailable_when_lost(f"a read of partition {self.index}"):
            reply: list[Any] = self._map.execute_on_key(self._key, PartitionRead(read, arguments))
        return reply

    def step(self, event: Event) -> Reply:
        if isinstance(event, ApplyOnePhase) and needs_hooks(event.writes):
            return hooked_answer(self._hooked.apply(event, self.hooks))
        if isinstance(event, ApplyOnePhase):
            arguments = [event.request_id.hex(), event.version, event.horizon, event.deadline_ms]
            return applied_answer(
                self._call("apply", *arguments, *_reads(event.reads), *_writes(event.writes))
            )
        if isinstance(event, Prepare) and needs_hooks(event.writes):
            return self._hooked.prepare(event, self.hooks)
        if isinstance(event, Prepare):
            try:
                writes = _writes(event.writes)
            except UnsupportedByBackend as unsupported:
                return Vote(False, str(unsupported), unsupported)
            reply = self._call(
                "prepare",
                event.txn_id.hex(),
                event.lease_expires_ms,
                event.status_partition,
                "1" if event.durable else "0",
                *_reads(event.reads),
                *writes,
            )
            return vote_of(reply)
        if isinstance(event, PreCommit):
            return Ack(known=bool(self._call("pre_commit", event.txn_id.hex())[1]))
        if isinstance(event, Commit):
            reply = self._call("commit", event.txn_id.hex(), event.version, event.horizon)
            if _text(reply[0]) == "hooked":
                reply = self._hooked.commit(event, self.hooks)
            return commit_answer(reply)
        if isinstance(event, Abort):
            return Ack(known=bool(self._call("abort", event.txn_id.hex())[1]))
        if isinstance(event, CreateStatus):
            participants = orjson.dumps(list(event.participants))
            return status_of(
                self._call(
                    "create_status",
                    event.txn_id.hex(),
                    participants,
                    event.lease_expires_ms,
                    event.now_ms,
                )
            )
        if isinstance(event, CasStatus):
            return status_of(
                self._call(
                    "cas_status",
                    event.txn_id.hex(),
                    event.expected,
                    event.new,
                    event.now_ms,
                    event.lease_expires_ms,
                )
            )
        if isinstance(event, ReadStatus):
            return status_of(self._read("status", event.txn_id.hex()))
        if isinstance(event, ReadOutcome):
            return outcome_of(self._read("outcome", event.request_id.hex()))
        if isinstance(event, ForgetStatus):
            return Ack(known=bool(self._call("forget_status", event.txn_id.hex())[1]))
        if isinstance(event, DropMap):
            return dropped(self._call("drop_map", event.map))
        if isinstance(event, ForgetVersions):
            return Ack(known=bool(self._call("forget_versions", event.horizon)[1]))
        raise TypeError(f"unknown participant event {type(event).__name__}")

    def apply(self, event: Event) -> tuple[Reply, Callable[[], None]]:
        # The step is as durable as the cluster makes a write (its backups) when it returns.
        return self.step(event), lambda: None

    def commit_version(self) -> int:
        return int(self._read("meta")[0])

    def map_state(self, map_name: str) -> MapState:
        changes, newest = self._read("map_state", map_name)
        return MapState(int(changes), int(newest))

    def map_size(self, map_name: str) -> MapSize:
        entries, used = self._read("map_size", map_name)
        return MapSize(int(entries), int(used))

    def version_stats(self) -> VersionStats:
        return VersionStats(kept=int(self._read("meta")[1]))

    def get(self, map_name: str, key: str) -> bytes | None:
        found = self._read("get", map_name, key)
        return pack(bytes(found[0]), found[1]) if found else None

    def lookup_sent(self, map_name: str, keys: Sequence[str], version: int | None) -> Any:
        """Sends a read of many keys (at a read version, or the latest) as one entry processor
        and returns its future; ``lookup_answer`` reads the reply."""
        read = PartitionRead("lookup", (map_name, version or 0, *keys))
        return self._map_async.execute_on_key(self._key, read)

    def lookup_answer(self, sent: Any, version: int | None) -> list[bytes | None]:
        """The entries (None where absent) a ``lookup_sent`` read found, in its keys' order."""
        with unavailable_when_lost(f"a read of partition {self.index}"):
            found: list[Any] = sent.result()
        if found[0] == "too_old":
            raise ReadVersionTooOld(version or 0, int(found[1]))
        # Version 0: absent (every stored entry has a version of at least 1).
        return [
            pack(bytes(found[position]), found[position + 1]) if found[position + 1] else None
            for position in range(1, len(found), 2)
        ]

    def get_at(self, map_name: str, key: str, version: int) -> bytes | None:
        found = self._read("get_at", map_name, key, version)
        if found[0] == "too_old":
            raise ReadVersionTooOld(version, int(found[1]))
        return pack(bytes(found[1]), found[2]) if len(found) > 1 else None

    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        found = self._read("items_at", map_name, version)
        if found[0] == "too_old":
            raise ReadVersionTooOld(version, int(found[1]))
        return _entries(found, 1)

    def items(self, map_name: str) -> list[tuple[str, bytes]]:
        return _entries(self._read("items", map_name), 0)

    def status_records(self) -> list[StatusView]:
        found = self._read("status_records")
        return _status_views(found, 0, len(found) // 5)

    # Through the member's status indexes (PartitionState.undecidedStatuses, decidedStatuses):
    # a sweep never looks at the decided records kept for retries that are not yet due.
    def undecided_statuses(self) -> list[StatusView]:
        return self.sweep_statuses((), 0, 0).undecided

    def status_record(self, txn_id: bytes) -> StatusView | None:
        read = self.sweep_statuses((txn_id,), 0, 0)
        found = [view for view in read.undecided if view.txn_id == txn_id] + read.staged
        return found[0] if found else None

    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[StatusView]:
        return self.sweep_statuses((), updated_by_ms, limit).due

    def sweep_statuses(
        self, staged: Sequence[bytes], updated_by_ms: int, limit: int
    ) -> SweepStatuses:
        found = self._read(
            "sweep_statuses", updated_by_ms, limit, *(txn_id.hex() for txn_id in staged)
        )
        # How many records the member looked at: what the contract test counts.
        self.status_records_read += int(found[0])
        lists: list[list[StatusView]] = []
        position = 1
        for _ in range(3):
            count = int(found[position])
            position += 1
            lists.append(_status_views(found, position, count))
            position += 5 * count
        return SweepStatuses(undecided=lists[0], staged=lists[1], due=lists[2])

    def staged_transactions(self) -> list[StagedView]:
        found = self._read("staged")
        return [
            StagedView(
                txn_id=bytes.fromhex(found[position]),
                state=found[position + 1],
                lease_expires_ms=int(found[position + 2]),
                status_partition=int(found[position + 3]),
            )
            for position in range(0, len(found), 4)
        ]


def _status_views(found: list[Any], start: int, count: int) -> list[StatusView]:
    """``count`` status records from a reply, five fields each from ``start``."""
    return [
        StatusView(
            txn_id=bytes.fromhex(found[position]),
            state=found[position + 1],
            participants=tuple(orjson.loads(found[position + 2]) or ()),
            lease_expires_ms=int(found[position + 3]),
            updated_ms=int(found[position + 4]),
        )
        for position in range(start, start + 5 * count, 5)
    ]
