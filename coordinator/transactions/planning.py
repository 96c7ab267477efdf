"""Turns a transaction's requested reads and writes into checked per-partition work.

Planning validates every write against its map's schema (filling defaults), checks
limits, and adds what referential integrity needs: a write that makes a value
reference a key adds a REFERENCE +1 on that key (which must exist, and cannot be
deleted while referenced), and a write that drops a reference adds a REFERENCE -1.
The old value of the written key is read to know its old references, and that read
joins the read set, so a concurrent change to it aborts the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from coordinator.limits import Limits
from grid import values
from grid.backend import PartitionStore
from grid.catalog import Catalog, MapDefinition, is_system_map
from grid.entry import value_of, version_of
from grid.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from grid.memory.records import Op
from grid.participant import Read, Write
from grid.partitioner import Partitioner

INCREMENTABLE_TYPES = ("int", "float")


@dataclass
class PartitionWork:
    reads: list[Read] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)


@dataclass
class Plan:
    work: dict[int, PartitionWork]
    # Position in the plan's writes of each requested write, for the reply's versions.
    requested: list[tuple[int, int]]

    @property
    def read_only(self) -> bool:
        return not any(work.writes for work in self.work.values())


class Planner:
    def __init__(
        self,
        catalog: Catalog,
        partitioner: Partitioner,
        partitions: Sequence[PartitionStore],
        limits: Limits,
    ) -> None:
        self._catalog = catalog
        self._partitioner = partitioner
        self._partitions = partitions
        self._limits = limits

    def check_key(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidArgument("key must be a non-empty string", field="key")
        if "\x00" in key:
            raise InvalidArgument("key must not contain NUL characters", field="key")
        size = len(key.encode())
        if size > self._limits.key_bytes_max:
            raise InvalidArgument(
                f"key of {size} bytes exceeds the limit of {self._limits.key_bytes_max} bytes",
                field="key",
            )

    def check_value_size(self, value: bytes) -> None:
        if len(value) > self._limits.value_bytes_max:
            raise InvalidArgument(
                f"value of {len(value)} bytes exceeds the limit of "
                f"{self._limits.value_bytes_max} bytes",
                field="value",
            )

    def checked_write(self, write: Write, definition: MapDefinition) -> Write:
        """The write with its value validated (and defaults filled) for its map."""
        self.check_key(write.key)
        self.check_value_size(write.value)
        op = write.op
        if definition.sketch is not None:
            if op not in (Op.SKETCH_ADD, Op.DELETE):
                raise InvalidArgument(
                    f"map '{definition.name}' holds sketches: add items to it, or delete keys",
                    field="map",
                )
            return write
        if op == Op.SKETCH_ADD:
            raise InvalidArgument(f"map '{definition.name}' is not a sketch map", field="map")
        if op == Op.PUT:
            document = values.decode(write.value)
            validator = self._catalog.validator(definition.name)
            if validator is None:
                values.check_document(write.value, document)
                return write
            # The schema's rules first: they name the field and rule at fault.
            checked = validator.validate(document, write.key)
            values.check_document(write.value, document)
            if checked is document:
                return write
            return Write(op, write.map, write.key, orjson.dumps(checked), write.condition)
        if op in (Op.INCREMENT, Op.APPEND):
            changes = values.decode(write.value, what="update")
            values.check_document(write.value, changes, what="update")
            if not isinstance(changes, dict) or not changes:
                raise InvalidArgument(
                    "an update must be a non-empty object of field to change", field="value"
                )
            if definition.schema is not None:
                self._check_update_fields(definition, op, changes)
            return write
        if op == Op.DELETE:
            return write
        raise InvalidArgument(f"unknown write kind {op!r}", field="kind")

    def _check_update_fields(
        self, definition: MapDefinition, op: Op, changes: dict[str, Any]
    ) -> None:
        assert definition.schema is not None
        for name in changes:
            spec = definition.schema.by_name.get(name)
            if spec is None:
                raise InvalidArgument(f"map '{definition.name}' has no field '{name}'", field=name)
            if spec.ref is not None:
                raise InvalidArgument(
                    f"field '{name}' references '{spec.ref}'; put the whole value to change it",
                    field=name,
                )
            if op == Op.INCREMENT and spec.type not in INCREMENTABLE_TYPES:
                raise InvalidArgument(
                    f"field '{name}' is {spec.type}; only int and float fields increment",
                    field=name,
                )
            if op == Op.APPEND and spec.type != "list":
                raise InvalidArgument(
                    f"field '{name}' is {spec.type}; only list fields take appends", field=name
                )

    def check_write_bytes(self, write_bytes: int) -> None:
        """Refuses a commit that writes more than `transaction_bytes_max` bytes of keys
        and values, before anything is validated or staged: its writes are held in
        memory several times over (request, staged state, log record, stored entry)."""
        if write_bytes > self._limits.transaction_bytes_max:
            raise ResourceExhausted(
                f"the commit writes {write_bytes} bytes of keys and values; the limit is "
                f"{self._limits.transaction_bytes_max} (transaction_bytes_max)",
                field="writes",
            )

    def plan(
        self,
        reads: Sequence[Read],
        writes: Sequence[Write],
        *,
        system: bool = False,
        checked: bool = False,
    ) -> Plan:
        """Checked per-partition work; only `system` callers (the coordinator itself)
        may write to system maps. `checked` says the caller already ran `checked_write`
        on every write (pipelines check each write as it is made), so it is not redone.

        The catalog is confirmed first (one small read on a shared store): a write is checked
        against every catalog change acknowledged before it, whichever coordinator made it,
        and writes checked earlier against an older catalog are checked again."""
        if self._catalog.confirm():
            checked = False
        if len(reads) + len(writes) > self._limits.transaction_keys_max:
            raise ResourceExhausted(
                f"transaction touches {len(reads) + len(writes)} keys; the limit is "
                f"{self._limits.transaction_keys_max}",
                field="writes",
            )
        self.check_write_bytes(sum(len(write.key) + len(write.value) for write in writes))
        work: dict[int, PartitionWork] = {}
        partition_of = self._partitioner.partition_of
        read_targets = {(read.map, read.key) for read in reads}
        for read in reads:
            self._catalog.get(read.map)
            self.check_key(read.key)
            work.setdefault(partition_of(read.key), PartitionWork()).reads.append(read)
        # Each map is looked up once per plan; most transactions write few maps.
        definitions: dict[str, MapDefinition] = {}
        referencing: set[str] = set()
        planned: list[Write] = []
        for write in writes:
            definition = definitions.get(write.map)
            if definition is None:
                definition = definitions[write.map] = self._catalog.get(write.map)
                if not system and is_system_map(write.map):
                    raise_system_map(write.map)
                if definition.schema is not None and definition.schema.references():
                    referencing.add(write.map)
            planned.append(write if checked else self.checked_write(write, definition))
        references: list[Write] = []
        requested: list[tuple[int, int]] = []
        # Keys this transaction puts: a reference to one of them needs no stored target.
        put_targets = (
            {(write.map, write.key) for write in planned if write.op == Op.PUT}
            if referencing
            else set()
        )
        partitions = self._partitioner.partitions_of([write.key for write in planned])
        for write, partition in zip(planned, partitions, strict=True):
            target = work.get(partition)
            if target is None:
                target = work[partition] = PartitionWork()
            requested.append((partition, len(target.writes)))
            target.writes.append(write)
            if write.map in referencing:
                references.extend(
                    self._reference_changes(
                        definitions[write.map], write, read_targets, work, put_targets
                    )
                )
        for reference in references:
            work.setdefault(partition_of(reference.key), PartitionWork()).writes.append(reference)
        return Plan(work=work, requested=requested)

    def _reference_changes(
        self,
        definition: MapDefinition,
        write: Write,
        read_targets: set[tuple[str, str]],
        work: dict[int, PartitionWork],
        put_targets: set[tuple[str, str]],
    ) -> list[Write]:
        """REFERENCE writes that keep reference counts true after `write`."""
        assert definition.schema is not None
        if write.op not in (Op.PUT, Op.DELETE):
            return []
        partition = self._partitioner.partition_of(write.key)
        stored = self._partitions[partition].get(write.map, write.key)
        old_document = None if stored is None else orjson.loads(value_of(stored))
        if (write.map, write.key) not in read_targets:
            version = 0 if stored is None else version_of(stored)
            work[partition].reads.append(Read(write.map, write.key, version))
            read_targets.add((write.map, write.key))
        new_document = orjson.loads(write.value) if write.op == Op.PUT else None
        changes: list[Write] = []
        for spec in definition.schema.references():
            assert spec.ref is not None
            old_target = _reference_of(old_document, spec.name)
            new_target = _reference_of(new_document, spec.name)
            if old_target == new_target:
                # An unchanged reference keeps its count, which keeps its target alive.
                continue
            if old_target is not None:
                changes.append(Write(Op.REFERENCE, spec.ref, old_target, b"-1"))
            if new_target is not None:
                self.check_key(new_target)
                self._check_reference_exists(spec.name, spec.ref, new_target, put_targets)
                changes.append(Write(Op.REFERENCE, spec.ref, new_target, b"1"))
        return changes

    def _check_reference_exists(
        self, field_name: str, target_map: str, target: str, put_targets: set[tuple[str, str]]
    ) -> None:
        """Refuses a reference to a missing key, naming the field that holds it.

        The participant checks again under the lock (a concurrent delete may come
        between); this earlier check is the one that can name the field."""
        if (target_map, target) in put_targets:
            return
        partition = self._partitioner.partition_of(target)
        if self._partitions[partition].get(target_map, target) is None:
            raise FailedPrecondition(
                f"field '{field_name}': referenced key '{target_map}/{target}' does not exist",
                field=field_name,
            )


def raise_system_map(map_name: str) -> None:
    raise InvalidArgument(
        f"map '{map_name}' belongs to the system: clients may read it, not write it",
        field="map",
    )


def _reference_of(document: Any, field_name: str) -> str | None:
    if not isinstance(document, dict):
        return None
    target = document.get(field_name)
    if target is None:
        return None
    return str(target)
