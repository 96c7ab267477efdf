"""One coordinator node: the backend, catalog and managers wired together.

The node owns everything the gRPC services call; it has no gRPC in it, so tests and
the benchmark can drive it in-process.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from coordinator.backends import open_backend
from coordinator.clock import Clock, StoreClock, SystemClock
from coordinator.config import ServerConfig
from coordinator.keyvalue import KeyValue
from coordinator.limits import Limits
from coordinator.metrics import Registry
from coordinator.sketches import SketchMaps
from coordinator.sql.engine import SqlConfig, SqlEngine
from coordinator.sql.snapshot import Snapshots
from coordinator.sql.statements import Statements
from coordinator.transactions.faults import FaultPoints
from coordinator.transactions.manager import TransactionConfig, TransactionManager
from coordinator.transactions.planning import Planner
from coordinator.transactions.recovery import RecoverySweeper
from coordinator.transactions.sequence import CommitOrder
from coordinator.transactions.store_sequence import StoreCommitSequence
from coordinator.transactions.story import Stories
from grid.backend import ParticipantHooks, SharedBackend, is_shared
from grid.catalog import Catalog, MapDefinition
from grid.entry import value_of
from grid.errors import InvalidArgument
from grid.memory.records import Op
from grid.participant import ApplyOnePhase, DropMap, Write
from grid.partitioner import Partitioner
from grid.schema import parse_schema

log = logging.getLogger(__name__)


@dataclass
class MapStats:
    entries: int = 0
    memory_bytes: int = 0


@dataclass
class Node:
    config: ServerConfig
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    faults: FaultPoints = field(default_factory=FaultPoints)
    metrics: Registry = field(default_factory=Registry)

    def __post_init__(self) -> None:
        config = self.config
        self.node_id = config.node_id or f"node-{os.getpid()}"
        self.started_s = time.monotonic()
        self.limits: Limits = config.limits
        self.partitioner = Partitioner(config.partitions)
        self.backend = open_backend(config)
        self.shared = is_shared(self.backend)
        self.catalog = Catalog(self.backend.catalog_store)
        self.backend.open(
            ParticipantHooks(
                validators=self.catalog.validator,
                guarded_field=self.catalog.is_guarded,
                sketch_apply=self._sketch_apply,
            )
        )
        # Another coordinator's catalog change reaches this one through the store's watcher.
        watch = getattr(self.backend.catalog_store, "watch", None)
        self._catalog_watcher = None if watch is None else watch(self._catalog_changed)
        # On a shared store every coordinator reads leases by the store's clock and takes
        # commit numbers from the store (docs/architecture/commit-order.md, recovery.md).
        lease_clock: Clock = self.clock
        sequence: CommitOrder | None = None
        if self.shared:
            shared = cast(SharedBackend, self.backend)
            lease_clock = StoreClock(shared.time_ms)
            sequence = StoreCommitSequence(
                shared.sequence, self.clock, window_ms=config.mvcc_window_ms
            )
        self.stories = Stories(self.clock)
        self.planner = Planner(self.catalog, self.partitioner, self.backend.partitions, self.limits)
        self.transactions = TransactionManager(
            self.backend.partitions,
            self.planner,
            clock=lease_clock,
            config=TransactionConfig(
                lease_ms=config.txn_lease_ms,
                sweep_interval_ms=config.txn_sweep_interval_ms,
                status_retention_ms=config.txn_status_retention_ms,
                mvcc_window_ms=config.mvcc_window_ms,
            ),
            faults=self.faults,
            stories=self.stories,
            metrics=self.metrics,
            sequence=sequence,
            concurrent_phases=self.shared,
        )
        # Before the recovery sweep: committing a recovered transaction may add to sketches.
        self.sketches = SketchMaps(self)
        self.sweeper = RecoverySweeper(self.transactions)
        # On memory this node is the only one using its data directory, so every
        # transaction left undecided by a previous run has lost its coordinator. On a shared
        # store others may be driving theirs right now: only expired leases say abandoned.
        self.sweeper.sweep(everything=not self.shared)
        self.keyvalue = KeyValue(
            self.catalog,
            self.partitioner,
            self.backend,
            self.planner,
            self.transactions,
            self.limits,
        )
        self.statements = Statements(
            self.transactions,
            lambda name, schema, if_not_exists: self.create_map(
                name, schema, if_not_exists=if_not_exists
            ),
            lambda name, if_exists: self.drop_map(name, if_exists=if_exists),
            self.limits.transaction_keys_max,
        )
        self.sql = SqlEngine(
            self.catalog,
            self.keyvalue,
            Snapshots(self.backend.partitions, self.transactions),
            SqlConfig(
                timeout_ms=config.sql_timeout_ms,
                scan_rows_max=config.sql_scan_rows_max,
                result_bytes_max=config.sql_result_bytes_max,
                batch_rows=config.sql_batch_rows,
                memory_bytes_max=config.sql_memory_bytes_max,
                batch_bytes_max=config.limits.message_bytes_max,
            ),
            self.statements.run,
        )
        self.statements.engine = self.sql

    def _sketch_apply(self, map_name: str, current: bytes | None, items: bytes) -> bytes:
        return self.sketches.applier(map_name, current, items)

    def start_background(self) -> None:
        self.sweeper.start()

    def _catalog_changed(self, version: int) -> None:
        try:
            self.catalog.refresh()
        except Exception:
            # The watcher polls again within half a second; a failed reload is retried then.
            log.exception("reloading the catalog (version %d) failed", version)

    def close(self) -> None:
        self.sweeper.stop()
        self.transactions.close()
        if self._catalog_watcher is not None:
            self._catalog_watcher.close()
        self.backend.close()

    # Maps ------------------------------------------------------------------------

    def create_map(
        self,
        name: str,
        schema_json: bytes = b"",
        *,
        if_not_exists: bool = False,
        sketch: dict[str, Any] | None = None,
    ) -> MapDefinition:
        schema = None
        if schema_json:
            try:
                described = orjson.loads(schema_json)
            except orjson.JSONDecodeError as error:
                raise InvalidArgument(
                    f"schema is not valid JSON: {error}", field="schema"
                ) from None
            if described is not None:
                schema = parse_schema(described, fields_max=self.config.limits.schema_fields_max)
        definition, _ = self.catalog.create(
            name, schema, now_ms=self.clock.now_ms(), sketch=sketch, if_not_exists=if_not_exists
        )
        return definition

    def drop_map(self, name: str, *, if_exists: bool = False) -> bool:
        if if_exists and self.catalog.find(name) is None:
            return False
        # Refuse before touching data (a referenced map stays whole); a crash between
        # dropping the entries and the definition leaves an empty map, never stale data.
        definition = self.catalog.check_droppable(name)
        held = self._references_held(definition)
        for partition in self.backend.partitions:
            partition.step(DropMap(name))
        # Released after the values are gone: a crash in between leaves counts too high
        # (a target that cannot be deleted), never too low (a dangling reference).
        self._release_references(held)
        self.catalog.drop(name)
        return True

    def _references_held(self, definition: MapDefinition) -> Counter[tuple[str, str]]:
        held: Counter[tuple[str, str]] = Counter()
        if definition.schema is None or not definition.schema.references():
            return held
        fields = [(spec.name, spec.ref) for spec in definition.schema.references()]
        for partition in self.backend.partitions:
            for _, entry in partition.items(definition.name):
                document = orjson.loads(value_of(entry))
                for field_name, target_map in fields:
                    target = document.get(field_name)
                    if target is not None and target_map is not None:
                        held[(target_map, str(target))] += 1
        return held

    def _release_references(self, held: Counter[tuple[str, str]]) -> None:
        by_partition: dict[int, list[Write]] = {}
        for (target_map, key), count in held.items():
            by_partition.setdefault(self.partitioner.partition_of(key), []).append(
                Write(Op.REFERENCE, target_map, key, str(-count).encode())
            )
        self.transactions.apply_shares(
            [
                (partition, ApplyOnePhase(os.urandom(16), (), tuple(writes)))
                for partition, writes in by_partition.items()
            ]
        )

    def alter_schema(self, name: str, schema_json: bytes) -> MapDefinition:
        try:
            described = orjson.loads(schema_json)
        except orjson.JSONDecodeError as error:
            raise InvalidArgument(f"schema is not valid JSON: {error}", field="schema") from None
        schema = parse_schema(described, fields_max=self.config.limits.schema_fields_max)
        self.catalog.get(name)
        return self.catalog.alter_schema(name, schema, stored_entries=self.map_stats(name).entries)

    def map_stats(self, name: str) -> MapStats:
        stats = MapStats()
        for partition in self.backend.partitions:
            size = partition.map_size(name)
            stats.entries += size.entries
            stats.memory_bytes += size.memory_bytes
        return stats

    def entry_count(self) -> int:
        return sum(self.map_stats(name).entries for name in self.catalog.names())

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started_s) * 1000)
