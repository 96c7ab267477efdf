"""One partition kept in Ignite: each participant step is one pessimistic REPEATABLE_READ
transaction of the coordinator's thin client, in which grid/ignite/steps.py reads the
partition's records, decides and writes; committed reads need no transaction.

pyignite's Client is not thread-safe, so each thread has its own (grid/ignite/backend.py). A
transaction that times out or deadlocks (Ignite ends it with an error) rolls back and the step
runs again; each step is idempotent, so a retry after a lost reply is harmless too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pyignite.datatypes.transactions import TransactionConcurrency, TransactionIsolation
from pyignite.exceptions import CacheError

from grid.backend import (
    MapSize,
    MapState,
    ParticipantHooks,
    StagedView,
    StatusView,
    SweepStatuses,
)
from grid.entry import pack, version_of
from grid.errors import FailedPrecondition, ReadVersionTooOld, Unavailable
from grid.ignite.lost import guarded, unavailable_when_lost
from grid.ignite.records import (
    RECORDS_CACHE,
    Caches,
    PartitionRecords,
    entries_cache_name,
    partition_prefix,
)
from grid.ignite.scans import MapScans
from grid.ignite.statuses import StatusReader
from grid.ignite.steps import IgniteSteps
from grid.protocol import Event, Reply
from grid.versions import VersionStats

# Attempts of a step whose transaction Ignite ended (a timeout, a deadlock found), before the
# step fails as unavailable.
ATTEMPTS_MAX = 5


def _no_sketches(map_name: str, current: bytes | None, items: bytes) -> bytes:
    raise FailedPrecondition(f"map '{map_name}' is not a sketch map here", field="map")


class IgnitePartition:
    """A ``grid.backend.PartitionStore`` whose records live in Ignite caches."""

    def __init__(
        self,
        client_for_thread: Callable[[], Any],
        caches: Caches,
        scan_caches: Caches,
        namespace: str,
        index: int,
        tx_timeout_ms: int,
    ) -> None:
        self.index = index
        self._client = client_for_thread
        self._caches = caches
        self._scan_caches = scan_caches
        self._namespace = namespace
        self._tx_timeout_ms = tx_timeout_ms
        self._prefix = partition_prefix(namespace, index)
        # Status records and index slots this partition's sweep reads read (a count for tests:
        # a sweep must not read decided records kept and not yet due).
        self.status_records_read = 0
        # Set by IgniteBackend: one scan of a map's cache for every partition's items_at.
        self.scans: MapScans | None = None
        # Set by IgniteBackend.open: what steps with a Python hook consult.
        self.hooks = ParticipantHooks(
            validators=lambda map_name: None,
            guarded_field=lambda map_name, field_name: False,
            sketch_apply=_no_sketches,
        )

    def step(self, event: Event) -> Reply:
        with unavailable_when_lost(f"a step of partition {self.index}"):
            return self._step(event)

    def _step(self, event: Event) -> Reply:
        client = self._client()
        for attempt in range(ATTEMPTS_MAX):
            try:
                with client.tx_start(
                    TransactionConcurrency.PESSIMISTIC,
                    TransactionIsolation.REPEATABLE_READ,
                    timeout=self._tx_timeout_ms,
                ) as transaction:
                    records = PartitionRecords(
                        self._caches, self._scan_caches, self._namespace, self.index
                    )
                    reply = IgniteSteps(records, self.hooks).run(event)
                    records.flush()
                    transaction.commit()
                    return reply
            except CacheError as error:
                if attempt == ATTEMPTS_MAX - 1:
                    raise Unavailable(
                        f"partition {self.index}: Ignite refused the step: {error}"
                    ) from error
        raise AssertionError("unreachable")

    def apply(self, event: Event) -> tuple[Reply, Callable[[], None]]:
        # The transaction committed: as durable as the cluster makes a commit.
        return self.step(event), lambda: None

    # Reads --------------------------------------------------------------------------

    def _records(self) -> Any:
        return self._caches(RECORDS_CACHE)

    def _get_json(self, name: str) -> Any:
        raw = self._records().get(self._prefix + name)
        return None if raw is None else orjson.loads(raw)

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self._get_json("m") or {"version": 0, "floor": 0, "maps": {}}
        return meta

    @guarded
    def commit_version(self) -> int:
        return int(self._meta()["version"])

    @guarded
    def map_state(self, map_name: str) -> MapState:
        meta = self._meta()
        changes = meta.get("changes", {}).get(map_name, 0)
        return MapState(int(changes), int(meta["maps"].get(map_name, 0)))

    @guarded
    def map_size(self, map_name: str) -> MapSize:
        """Entries and the bytes of their keys and values (a scan: Ignite keeps no count per
        partition of ours)."""
        items = self.items(map_name)
        return MapSize(len(items), sum(len(key) + len(entry) for key, entry in items))

    @guarded
    def version_stats(self) -> VersionStats:
        return VersionStats(kept=len(self._get_json("hx") or []))

    def _entries(self, map_name: str) -> Any:
        return self._caches(entries_cache_name(map_name))

    @guarded
    def get(self, map_name: str, key: str) -> bytes | None:
        raw = self._entries(map_name).get(self._prefix + key)
        return None if raw is None else bytes(raw)

    @staticmethod
    def _is_current(map_name: str, entry: bytes | None, version: int, meta: dict[str, Any]) -> bool:
        """Whether the latest entry (None: absent) is the key's state at ``version`` too."""
        if entry is not None:
            return version_of(entry) <= version
        return int(meta["maps"].get(map_name, 0)) <= version

    def _kept(self, map_name: str, keys: Sequence[str]) -> dict[str, list[Any]]:
        """The kept states of keys (each [end, begin, value hex]), in one read."""
        if not keys:
            return {}
        names = [f"{self._prefix}h|{map_name}|{key}" for key in keys]
        found = self._records().get_all(names)
        return {
            key: orjson.loads(found[name]) if found.get(name) is not None else []
            for key, name in zip(keys, names, strict=True)
        }

    @staticmethod
    def _state_in(states: list[Any], version: int) -> bytes | None:
        """The state at ``version`` among a key's kept states: the first to end after it."""
        later = sorted(state for state in states if state[0] > version)
        if not later:
            return None
        _, begin, value = later[0]
        # A state starts at its own version; before it the key was absent.
        return pack(bytes.fromhex(value), begin) if begin <= version else None

    def _states_at(
        self, map_name: str, keys: Sequence[str], version: int, meta: dict[str, Any]
    ) -> list[bytes | None]:
        """The keys' states at ``version``, inside a transaction holding the meta record: their
        entries in one read, then the kept states of those changed since, in one more."""
        stored = self._entries(map_name).get_all([self._prefix + key for key in keys])
        entries = {
            key: None
            if stored.get(self._prefix + key) is None
            else bytes(stored[self._prefix + key])
            for key in keys
        }
        older = [
            key for key in entries if not self._is_current(map_name, entries[key], version, meta)
        ]
        if older and version < int(meta["floor"]):
            raise ReadVersionTooOld(version, int(meta["floor"]))
        kept = self._kept(map_name, older)
        return [self._state_in(kept[key], version) if key in kept else entries[key] for key in keys]

    @guarded
    def get_at(self, map_name: str, key: str, version: int) -> bytes | None:
        # The meta record first: a commit changes entries before its meta, inside one
        # transaction, so both are read as one state only through a transaction.
        return self.get_many_at(map_name, [key], version)[0]

    @guarded
    def get_many_at(self, map_name: str, keys: Sequence[str], version: int) -> list[bytes | None]:
        """The keys' states at a read version, read as one state of the partition."""
        found: list[bytes | None] = self._read_consistently(
            lambda meta: self._states_at(map_name, keys, version, meta)
        )
        return found

    @guarded
    def items(self, map_name: str) -> list[tuple[str, bytes]]:
        mine = self._prefix
        # On a connection of its own: inside _read_consistently this connection has a
        # transaction open, whose lock of the meta record keeps the partition's steps out.
        cache = self._scan_caches(entries_cache_name(map_name))
        with cache.scan(page_size=1000) as cursor:
            return sorted(
                (key[len(mine) :], bytes(value))
                for key, value in cursor
                if isinstance(key, str) and key.startswith(mine)
            )

    @guarded
    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        # Before the transaction: the scan reads the read version, which must not be read (and
        # so locked) inside it; any scan that started after ``version`` was visible will do.
        if self.scans is not None:
            current = self.scans.entries(map_name, version, self.index)
        else:
            current = dict(self.items(map_name))

        def read(meta: dict[str, Any]) -> list[tuple[str, bytes]]:
            keys = sorted({*current, *(self._get_json(f"hk|{map_name}") or [])})
            older = [
                key
                for key in keys
                if not self._is_current(map_name, current.get(key), version, meta)
            ]
            if older and version < int(meta["floor"]):
                raise ReadVersionTooOld(version, int(meta["floor"]))
            kept = self._kept(map_name, older)
            found = []
            for key in keys:
                entry = self._state_in(kept[key], version) if key in kept else current.get(key)
                if entry is not None:
                    found.append((key, entry))
            return found

        found: list[tuple[str, bytes]] = self._read_consistently(read)
        return found

    def _read_consistently(self, read: Callable[[dict[str, Any]], Any]) -> Any:
        """Runs a read in a pessimistic transaction that holds the partition's meta record,
        so no step of the partition runs in between."""
        client = self._client()
        with unavailable_when_lost(f"a read of partition {self.index}"):
            for attempt in range(ATTEMPTS_MAX):
                try:
                    with client.tx_start(
                        TransactionConcurrency.PESSIMISTIC,
                        TransactionIsolation.REPEATABLE_READ,
                        timeout=self._tx_timeout_ms,
                    ) as transaction:
                        meta = self._meta()
                        found = read(meta)
                        transaction.commit()
                        return found
                except CacheError as error:
                    # As for a step: a lock wait past the transaction's timeout (a freshly
                    # started node setting up its caches) is tried again, then UNAVAILABLE.
                    if attempt == ATTEMPTS_MAX - 1:
                        raise Unavailable(
                            f"partition {self.index}: Ignite refused the read: {error}"
                        ) from error
        raise AssertionError("unreachable")

    def _raw_records(self, names: list[str]) -> dict[str, Any]:
        found = self._records().get_all([self._prefix + name for name in names])
        return {name: found.get(self._prefix + name) for name in names}

    @guarded
    def sweep_statuses(
        self, staged: Sequence[bytes], updated_by_ms: int, limit: int
    ) -> SweepStatuses:
        """Through the status indexes (grid/ignite/statuses.py), in plain reads: the decided
        records kept for retries and not yet due are never read."""
        reader = StatusReader(self._raw_records)
        found = reader.sweep(staged, updated_by_ms, limit)
        # What the contract test counts.
        self.status_records_read += reader.reads
        return found

    def status_records(self) -> list[StatusView]:
        """Every record: the undecided ones and the whole decided queue."""
        read = self.sweep_statuses((), 2**62, 2**62)
        return sorted([*read.undecided, *read.due], key=lambda view: view.txn_id)

    def undecided_statuses(self) -> list[StatusView]:
        return self.sweep_statuses((), 0, 0).undecided

    def status_record(self, txn_id: bytes) -> StatusView | None:
        read = self.sweep_statuses((txn_id,), 0, 0)
        found = [view for view in read.undecided if view.txn_id == txn_id] + read.staged
        return found[0] if found else None

    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[StatusView]:
        return self.sweep_statuses((), updated_by_ms, limit).due

    @guarded
    def staged_transactions(self) -> list[StagedView]:
        views = []
        txns: list[str] = self._get_json("s") or []
        # One get_all for every staged record, not a read per transaction.
        found = self._raw_records([f"x|{txn}" for txn in txns]) if txns else {}
        for txn in txns:
            raw = found[f"x|{txn}"]
            if raw is None:
                continue
            staged = orjson.loads(raw)
            views.append(
                StagedView(
                    txn_id=bytes.fromhex(txn),
                    state=staged["state"],
                    lease_expires_ms=int(staged["lease"]),
                    status_partition=int(staged["status_partition"]),
                )
            )
        return views
