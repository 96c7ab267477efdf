"""What a grid backend provides: partitions that run participant steps, and a catalog store.

The memory backend is the embedded default; shared backends (Redis, Hazelcast,
Ignite) implement the same contract, each participant step as one atomic operation
of the shared store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from grid.catalog import CatalogStore
from grid.participant import FINAL_STATES, Event, NumericGuard, Reply, SketchApply, ValidatorLookup
from grid.versions import VersionStats


@dataclass(frozen=True)
class ParticipantHooks:
    """What participants consult from the catalog and the sketch library."""

    validators: ValidatorLookup
    guarded_field: NumericGuard
    sketch_apply: SketchApply


@dataclass(frozen=True)
class StatusView:
    """A transaction's status record, as kept by its status partition."""

    txn_id: bytes
    state: str
    participants: tuple[int, ...]
    lease_expires_ms: int
    updated_ms: int


@dataclass(frozen=True)
class StagedView:
    """A transaction prepared on a partition and not yet decided there."""

    txn_id: bytes
    state: str
    lease_expires_ms: int
    status_partition: int


@dataclass(frozen=True)
class MapState:
    """What a partition can say cheaply about one map without reading it.

    `mark` moves whenever the map's entries change here (equal marks: the same entries);
    `version` is the newest commit version that changed them. A reader at a version at or
    after `version` may use an image of the entries taken under the same mark.
    """

    mark: object
    version: int


@dataclass(frozen=True)
class MapSize:
    entries: int
    memory_bytes: int


@dataclass(frozen=True)
class SweepStatuses:
    """The status records a recovery sweep reads from one partition."""

    undecided: list[StatusView]
    # The decided records of the transactions asked about (still staged somewhere); their
    # undecided records are in `undecided`.
    staged: list[StatusView]
    # Decided records past the cutoff, oldest first, at most the limit.
    due: list[StatusView]


class PartitionStore(Protocol):
    """One partition: atomic participant steps and lock-free committed reads."""

    index: int

    def step(self, event: Event) -> Reply: ...

    def apply(self, event: Event) -> tuple[Reply, Callable[[], None]]:
        """`step`, but returns at once with a call that waits until the step is durable."""
        ...

    def commit_version(self) -> int:
        """The highest commit version applied in this partition."""
        ...

    def version_stats(self) -> VersionStats:
        """How many overwritten versions this partition keeps, and how many it dropped."""
        ...

    def get(self, map_name: str, key: str) -> bytes | None:
        """The committed entry (see grid.entry) of a key, or None."""
        ...

    def get_at(self, map_name: str, key: str, version: int) -> bytes | None:
        """The committed entry of a key as of a read version (ReadVersionTooOld when
        the states it needs were forgotten)."""
        ...

    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        """The committed entries of one map in this partition as of a read version."""
        ...

    def items(self, map_name: str) -> list[tuple[str, bytes]]:
        """The committed entries of one map in this partition, at one point in time."""
        ...

    def map_state(self, map_name: str) -> MapState:
        """The map's change mark and newest version here (see MapState)."""
        ...

    def map_size(self, map_name: str) -> MapSize:
        """How many entries the map holds here, and about how many bytes they take."""
        ...

    def status_records(self) -> list[StatusView]:
        """Every status record here, decided ones kept for retries included (costly on a busy
        partition: the recovery sweeper reads the three below instead)."""
        ...

    def undecided_statuses(self) -> list[StatusView]:
        """The status records still pending or pre-committed."""
        ...

    def status_record(self, txn_id: bytes) -> StatusView | None:
        """One transaction's status record, or None."""
        ...

    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[StatusView]:
        """Up to `limit` decided (committed or aborted) records last updated at or before
        `updated_by_ms`, oldest first (the memory backend: in the order decided, which a clock
        stepping back can only make later): those due to be forgotten. The cost is that of
        the records returned, not of every decided record kept."""
        ...

    def sweep_statuses(
        self, staged: Sequence[bytes], updated_by_ms: int, limit: int
    ) -> SweepStatuses:
        """What one recovery sweep reads here, in one call: the three reads above, the records
        of the `staged` transactions among them (a backend without indexes answers all three
        from one full read; see `sweep_statuses_by_index` and `sweep_statuses_of`)."""
        ...

    def staged_transactions(self) -> list[StagedView]: ...


class Backend(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def partitions(self) -> Sequence[PartitionStore]: ...

    @property
    def catalog_store(self) -> CatalogStore: ...

    def lookup_many(
        self,
        map_name: str,
        keys: Sequence[str],
        partitions: Sequence[int],
        version: int | None = None,
    ) -> list[bytes | None]:
        """The committed entries of many keys (None where absent), in their order, given each
        key's partition: what `get` answers per key, or `get_at` at ``version`` when one is
        given. A get-many: one store call per partition at most, never one per key, and a
        partition's keys read at one instant."""
        ...

    def open(self, hooks: ParticipantHooks) -> None: ...

    def close(self) -> None: ...


class SharedBackend(Backend, Protocol):
    """A backend several coordinators serve at once (``shared`` is True): it brings the one
    commit sequence and the one clock they all use (docs/architecture/commit-order.md).
    The memory backend has ``shared`` False and none of these."""

    shared: bool

    @property
    def sequence(self) -> Any:
        """The commit sequence in the store (coordinator.transactions.store_sequence
        .StoreSequence)."""
        ...

    def time_ms(self) -> int:
        """The store's clock, in milliseconds since the epoch."""
        ...


def undecided_of(records: list[StatusView]) -> list[StatusView]:
    """`undecided_statuses` from a full read, for a backend that keeps no index yet."""
    return [record for record in records if record.state not in FINAL_STATES]


def record_of(records: list[StatusView], txn_id: bytes) -> StatusView | None:
    """`status_record` from a full read, for a backend that keeps no index yet."""
    return next((record for record in records if record.txn_id == txn_id), None)


def decided_of(records: list[StatusView], updated_by_ms: int, limit: int) -> list[StatusView]:
    """`decided_statuses` from a full read, for a backend that keeps no index yet."""
    due = [
        record
        for record in records
        if record.state in FINAL_STATES and record.updated_ms <= updated_by_ms
    ]
    return sorted(due, key=lambda record: record.updated_ms)[:limit]


def sweep_statuses_by_index(
    partition: PartitionStore, staged: Sequence[bytes], updated_by_ms: int, limit: int
) -> SweepStatuses:
    """`sweep_statuses` through a backend's indexed reads."""
    undecided = partition.undecided_statuses()
    known = {record.txn_id for record in undecided}
    found = [partition.status_record(txn_id) for txn_id in staged if txn_id not in known]
    return SweepStatuses(
        undecided=undecided,
        staged=[record for record in found if record is not None and record.state in FINAL_STATES],
        due=partition.decided_statuses(updated_by_ms, limit),
    )


def sweep_statuses_of(
    records: list[StatusView], staged: Sequence[bytes], updated_by_ms: int, limit: int
) -> SweepStatuses:
    """`sweep_statuses` from one full read, for a backend that keeps no index yet."""
    asked = set(staged)
    return SweepStatuses(
        undecided=undecided_of(records),
        staged=[
            record for record in records if record.txn_id in asked and record.state in FINAL_STATES
        ],
        due=decided_of(records, updated_by_ms, limit),
    )


def is_shared(backend: Backend) -> bool:
    return bool(getattr(backend, "shared", False))
