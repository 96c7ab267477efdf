"""The transaction of one micro-batch, as a pipeline's code uses it (the SDK's calls).

Every event runs in its own layer on top of the batch: its reads and writes join the
batch only when the event's code returns, so an event that fails leaves no trace. Writes
are checked against their map as they are made (a bad value fails that event, not the
batch) and coalesced as they join: increments of one key sum, appends concatenate, and
an unconditional put or delete replaces what the batch wrote to the key before. The
batch's effects are therefore validated as their net result, which is what commits.
Reads see the batch's own writes and record the version read, so the commit is
serializable like any other transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from coordinator.node import Node
from coordinator.security.permissions import pattern_matches
from grid import values
from grid.catalog import MapDefinition, is_system_map
from grid.entry import value_of, version_of
from grid.errors import InvalidArgument
from grid.memory.records import Op
from grid.participant import Condition, Read, Write
from shoal import _codec
from shoal.pipelines import Event

Target = tuple[str, str]


def _default(value: Any) -> Any:
    if isinstance(value, Event):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        return values.bytes_document(bytes(value))
    if isinstance(value, datetime):
        return values.timestamp_document(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-compatible")


def encode_value(value: Any) -> bytes:
    """A value's wire form (JSON, bytes and datetimes tagged as the SDK sends them)."""
    if type(value) is Event:
        value = value.value
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError as error:
        raise InvalidArgument(f"value cannot be stored: {error}", field="value") from None


class Pending:
    """One buffered write; increments, appends and sketch items stay decoded until the
    batch commits, so later ones can merge into them."""

    __slots__ = ("changes", "condition", "op", "value")

    def __init__(
        self,
        op: Op,
        value: bytes = b"",
        changes: Any = None,
        condition: Condition | None = None,
    ) -> None:
        self.op = op
        self.value = value
        self.changes = changes
        self.condition = condition

    def encoded(self) -> bytes:
        if self.changes is None:
            return self.value
        return orjson.dumps(self.changes)


def coalesce(pending: list[Pending]) -> list[Pending]:
    """A key's pending writes with the same effect in fewer: consecutive unconditional
    increments sum, appends concatenate, sketch items join, and an unconditional put or
    delete replaces everything before it (unless a condition before it must be checked)."""
    if len(pending) == 1:
        return pending
    merged: list[Pending] = []
    conditional = False
    for write in pending:
        op = write.op
        if write.condition is not None:
            conditional = True
        elif op is Op.PUT or op is Op.DELETE:
            if not conditional:
                merged = [write]
                continue
        elif merged and merged[-1].op is op and merged[-1].condition is None:
            last = merged[-1]
            changes: Any
            if op is Op.INCREMENT:
                changes = dict(last.changes)
                for name, amount in write.changes.items():
                    changes[name] = changes.get(name, 0) + amount
            elif op is Op.APPEND:
                changes = dict(last.changes)
                for name, items in write.changes.items():
                    changes[name] = [*changes.get(name, ()), *items]
            else:
                changes = [*last.changes, *write.changes]
            merged[-1] = Pending(op, b"", changes)
            continue
        merged.append(write)
    return merged


def _apply_pending(current: Any, pending: Iterable[Pending]) -> Any:
    """The value a key has after the given writes, starting from `current`."""
    for write in pending:
        op = write.op
        if op is Op.PUT:
            current = _codec.decode(write.value)
        elif op is Op.DELETE:
            current = None
        elif op is Op.INCREMENT or op is Op.APPEND:
            document = dict(current) if isinstance(current, dict) else {}
            for name, change in write.changes.items():
                if op is Op.INCREMENT:
                    document[name] = document.get(name, 0) + change
                else:
                    document[name] = [*(document.get(name) or []), *change]
            current = document
    return current


class BatchTransaction:
    """Reads and writes of a micro-batch, layered per event (see the module docstring).

    An event's writes and reads go straight into the batch's structures while a journal
    notes what they added; a failed event is undone from the journal. Writes coalesce
    once, when the batch is flushed for its commit.
    """

    def __init__(self, node: Node, writes: tuple[str, ...] = ()) -> None:
        # The map patterns the pipeline declared it writes; empty: any map.
        self._writes_allowed = writes
        self._catalog = node.catalog
        self._planner = node.planner
        self._stores = node.backend.partitions
        self._partition_of = node.partitioner.partition_of
        limits = node.limits
        # Keys of up to this many characters are within the byte limit, whatever they hold.
        self._key_chars_safe = limits.key_bytes_max // 4
        self._value_bytes_max = limits.value_bytes_max
        # The maps this batch writes, and whether their writes are checked by schema.
        self._maps: dict[str, tuple[MapDefinition, bool]] = {}
        self._writes: dict[Target, list[Pending]] = {}
        self._reads: dict[Target, tuple[int, bytes | None]] = {}
        self._conditional = 0
        # What the current event added: (key, its pending writes' length before).
        self._journal: list[tuple[Target, int]] = []
        self._journal_reads: list[Target] = []

    # Layers ------------------------------------------------------------------------

    def begin_event(self) -> None:
        """Starts an event's layer (end_event closes it)."""
        self._journal.clear()
        self._journal_reads.clear()

    def end_event(self, keep: bool) -> None:
        """Keeps the event's reads and writes in the batch, or undoes them."""
        if not keep:
            writes = self._writes
            for target, length in reversed(self._journal):
                pending = writes[target]
                for write in pending[length:]:
                    if write.condition is not None:
                        self._conditional -= 1
                if length:
                    del pending[length:]
                else:
                    del writes[target]
            for target in self._journal_reads:
                self._reads.pop(target, None)
        self._journal.clear()
        self._journal_reads.clear()

    @property
    def size(self) -> int:
        """Keys the batch's commit will carry (reads plus coalesced writes, at most)."""
        return len(self._writes) + self._conditional + len(self._reads)

    def reads(self) -> list[Read]:
        return [Read(target[0], target[1], version) for target, (version, _) in self._reads.items()]

    def writes(self) -> list[Write]:
        return [
            Write(write.op, target[0], target[1], write.encoded(), write.condition)
            for target, pending in self._writes.items()
            for write in coalesce(pending)
        ]

    def _add(self, target: Target, write: Pending) -> None:
        pending = self._writes.get(target)
        if pending is None:
            self._writes[target] = [write]
            self._journal.append((target, 0))
        else:
            self._journal.append((target, len(pending)))
            pending.append(write)
        if write.condition is not None:
            self._conditional += 1

    # Reads -------------------------------------------------------------------------

    def _stored(self, target: Target) -> tuple[int, bytes | None]:
        """The committed version and value of a key, recorded as read by this event."""
        known = self._reads.get(target)
        if known is not None:
            return known
        entry = self._stores[self._partition_of(target[1])].get(target[0], target[1])
        read = (0, None) if entry is None else (version_of(entry), value_of(entry))
        self._reads[target] = read
        self._journal_reads.append(target)
        return read

    def get(self, map_name: str, key: str) -> Any:
        """The value as this batch sees it (its own writes included), or None."""
        self._catalog.get(map_name)
        self._check_key(key)
        target = (map_name, key)
        pending = self._writes.get(target, [])
        # After a put or a delete the value is known without a read.
        for position in range(len(pending) - 1, -1, -1):
            if pending[position].op is Op.PUT or pending[position].op is Op.DELETE:
                return _apply_pending(None, pending[position:])
        _, stored = self._stored(target)
        current = None if stored is None else _codec.decode(stored)
        return _apply_pending(current, pending)

    def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]:
        found = {}
        for key in keys:
            value = self.get(map_name, key)
            if value is not None:
                found[key] = value
        return found

    def exists(self, map_name: str, key: str) -> bool:
        return self.get(map_name, key) is not None

    # Writes ------------------------------------------------------------------------

    def _map(self, map_name: str) -> tuple[MapDefinition, bool]:
        """A written map's definition, and whether its writes are checked by schema."""
        known = self._maps.get(map_name)
        if known is not None:
            return known
        definition = self._catalog.get(map_name)
        if is_system_map(map_name):
            raise InvalidArgument(
                f"map '{map_name}' belongs to the system; pipelines cannot write it", field="map"
            )
        allowed = self._writes_allowed
        if allowed and not any(pattern_matches(pattern, map_name) for pattern in allowed):
            raise InvalidArgument(
                f"map '{map_name}' is not among the maps this pipeline declares it writes "
                f"(writes={list(allowed)})",
                field="map",
            )
        known = self._maps[map_name] = (
            definition,
            definition.schema is not None or definition.sketch is not None,
        )
        return known

    def _check_key(self, key: str) -> None:
        # The common key, a short str, is checked here; anything else by the planner.
        if type(key) is not str or not key or len(key) > self._key_chars_safe or "\x00" in key:
            self._planner.check_key(key)

    def put(
        self,
        map_name: str,
        key: str,
        value: Any,
        *,
        if_version: int | None = None,
        if_absent: bool = False,
        if_exists: bool = False,
    ) -> None:
        definition, by_schema = self._map(map_name)
        self._check_key(key)
        encoded = encode_value(value)
        if len(encoded) > self._value_bytes_max:
            self._planner.check_value_size(encoded)
        if if_version is None and not if_absent and not if_exists:
            condition = None
        else:
            condition = _condition(if_version, if_absent, if_exists)
        if by_schema:
            # Checked now so that a bad value fails its event, not the whole batch;
            # the checked form carries the schema's defaults.
            encoded = self._planner.checked_write(
                Write(Op.PUT, map_name, key, encoded), definition
            ).value
        self._add((map_name, key), Pending(Op.PUT, encoded, None, condition))

    def delete(
        self, map_name: str, key: str, *, if_version: int | None = None, if_exists: bool = False
    ) -> None:
        self._map(map_name)
        self._check_key(key)
        condition = _condition(if_version, False, if_exists)
        self._add((map_name, key), Pending(Op.DELETE, b"", None, condition))

    def increment(
        self, map_name: str, key: str, field: str | dict[str, Any], amount: int | float = 1
    ) -> None:
        """Adds to numeric fields without reading them."""
        definition, by_schema = self._map(map_name)
        self._check_key(key)
        if isinstance(field, str):
            changes: dict[str, Any] = {field: amount}
        else:
            changes = dict(field)
            if not changes:
                raise InvalidArgument("an increment names at least one field", field="field")
        for name, change in changes.items():
            if type(change) is not int and type(change) is not float:
                raise InvalidArgument(
                    f"increment of field '{name}' must be a number, got {type(change).__name__}",
                    field=name,
                )
        if by_schema:
            self._planner.checked_write(
                Write(Op.INCREMENT, map_name, key, orjson.dumps(changes)), definition
            )
        self._add((map_name, key), Pending(Op.INCREMENT, b"", changes))

    def append(self, map_name: str, key: str, field: str, items: Iterable[Any]) -> None:
        """Appends items to a list field without reading it."""
        definition, by_schema = self._map(map_name)
        self._check_key(key)
        changes = {field: orjson.loads(encode_value(list(items)))}
        if by_schema:
            self._planner.checked_write(
                Write(Op.APPEND, map_name, key, orjson.dumps(changes)), definition
            )
        self._add((map_name, key), Pending(Op.APPEND, b"", changes))

    def sketch_add(self, map_name: str, key: str, items: Any) -> None:
        """Adds one item, or a list of items, to the sketch at the key."""
        definition, _ = self._map(map_name)
        self._check_key(key)
        if definition.sketch is None:
            raise InvalidArgument(f"map '{map_name}' is not a sketch map", field="map")
        listed = orjson.loads(encode_value(items if isinstance(items, list) else [items]))
        self._add((map_name, key), Pending(Op.SKETCH_ADD, b"", listed))


def _condition(if_version: int | None, if_absent: bool, if_exists: bool) -> Condition | None:
    given = (if_version is not None) + bool(if_absent) + bool(if_exists)
    if given > 1:
        raise InvalidArgument(
            "give at most one of if_version, if_absent, if_exists", field="condition"
        )
    if if_version is not None:
        if isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 1:
            raise InvalidArgument("if_version must be a version (> 0)", field="condition")
        return Condition("if_version", if_version)
    if if_absent:
        return Condition("if_absent")
    if if_exists:
        return Condition("if_exists")
    return None
