"""The ``tx`` a procedure receives: the SDK's transaction calls, answered in the coordinator.

It is the client-side transaction without the network: every read is at one read
version, taken when the attempt starts, straight from the owning partition (as
``Get`` with a read version answers it); writes are buffered and seen by later reads;
the commit sends every key read with its version and every write to the transaction
manager, the one path every commit takes. So a procedure is serializable exactly as a
client's ``transact`` is, and a key read that changed since the read version makes the
first write fail at once (``Conflict``), which the runner retries, rather than a commit
that is sure to abort.

Each call crosses from the procedure's code into the coordinator's and back through the
call's `Run`, which is what lets the time limit interrupt only the procedure's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from coordinator.limits import Limits
from coordinator.pipelines.transaction import encode_value
from coordinator.procedures.guard import Run
from coordinator.transactions.planning import Planner, raise_system_map
from grid.backend import PartitionStore
from grid.catalog import Catalog, is_system_map
from grid.entry import VERSION_BYTES
from grid.errors import Conflict, FailedPrecondition, InvalidArgument
from grid.memory.records import Op
from grid.participant import Condition, Read, Write
from shoal import _codec

Target = tuple[str, str]


@dataclass(frozen=True)
class GridAccess:
    """The narrow things a procedure's transaction needs of the node."""

    catalog: Catalog
    planner: Planner
    partitions: Sequence[PartitionStore]
    partition_of: Callable[[str], int]
    limits: Limits


class _Overlay:
    """The transaction's own effect on one key: a put or delete replaces what was read
    (its value encoded, decoded only when read back), increments and appends apply over
    it."""

    __slots__ = ("encoded", "replaced", "updates")

    def __init__(self) -> None:
        self.replaced = False
        self.encoded: bytes | None = None
        self.updates: list[tuple[Op, dict[str, Any]]] = []


def _apply_updates(value: Any, updates: list[tuple[Op, dict[str, Any]]]) -> Any:
    if not updates:
        return value
    document = dict(value) if isinstance(value, dict) else {}
    for op, changes in updates:
        for name, change in changes.items():
            if op is Op.INCREMENT:
                document[name] = document.get(name, 0) + change
            else:
                document[name] = [*(document.get(name) or []), *change]
    return document


def _condition(if_version: int | None, if_absent: bool, if_exists: bool) -> Condition | None:
    given = (if_version is not None) + bool(if_absent) + bool(if_exists)
    if given == 0:
        return None
    if given > 1:
        raise InvalidArgument(
            "give at most one of if_version, if_absent, if_exists", field="condition"
        )
    if if_version is not None:
        if isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 1:
            raise InvalidArgument("if_version must be a version (> 0)", field="condition")
        return Condition("if_version", if_version)
    return Condition("if_absent" if if_absent else "if_exists")


class ProcedureTransaction:
    """One attempt of a procedure call (see the module docstring)."""

    def __init__(self, grid: GridAccess, read_version: int, run: Run) -> None:
        self._grid = grid
        self._read_version = read_version
        self._run = run
        # Key read -> (version read, decoded value); version 0 when absent.
        self._reads: dict[Target, tuple[int, Any]] = {}
        self._overlays: dict[Target, _Overlay] = {}
        self._writes: list[Write] = []
        # Why the commit would abort: a key read changed after the read version.
        self._doomed: str | None = None
        # Set when the attempt is over: a `tx` kept past its call must not read or write
        # as if it still counted (its writes would be dropped without a word).
        self._ended = False

    def end(self) -> None:
        self._ended = True

    def _check_open(self) -> None:
        if self._ended:
            raise FailedPrecondition(
                "this tx belongs to a procedure call that has ended: use the tx passed to "
                "the current call",
                field="tx",
            )

    @property
    def read_version(self) -> int:
        return self._read_version

    # What the runner takes to commit ---------------------------------------------------

    def reads(self) -> list[Read]:
        return [Read(target[0], target[1], read[0]) for target, read in self._reads.items()]

    def writes(self) -> list[Write]:
        return self._writes

    # Reads -----------------------------------------------------------------------------

    def get(self, map_name: str, key: str) -> Any:
        """The value as this transaction sees it (its own writes included), or None."""
        run = self._run
        run.leave_procedure()
        try:
            return self._get(map_name, key)
        finally:
            run.enter_procedure()

    def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]:
        """The keys that exist, with their values as this transaction sees them."""
        run = self._run
        run.leave_procedure()
        try:
            found = {}
            for key in keys:
                value = self._get(map_name, key)
                if value is not None:
                    found[key] = value
            return found
        finally:
            run.enter_procedure()

    def exists(self, map_name: str, key: str) -> bool:
        return self.get(map_name, key) is not None

    def _get(self, map_name: str, key: str) -> Any:
        self._check_open()
        target = (map_name, key)
        overlay = self._overlays.get(target)
        if overlay is not None and overlay.replaced:
            base = None if overlay.encoded is None else _codec.decode(overlay.encoded)
            return _apply_updates(base, overlay.updates)
        read = self._reads.get(target)
        if read is None:
            read = self._read(map_name, key)
        return _apply_updates(read[1], overlay.updates) if overlay is not None else read[1]

    def _read(self, map_name: str, key: str) -> tuple[int, Any]:
        grid = self._grid
        definition = grid.catalog.get(map_name)
        if definition.sketch is not None:
            raise InvalidArgument(
                f"map '{map_name}' is a sketch map: query it with the sketch calls, "
                "not from a procedure",
                field="map",
            )
        grid.planner.check_key(key)
        store = grid.partitions[grid.partition_of(key)]
        entry = store.get_at(map_name, key, self._read_version)
        if self._doomed is None:
            latest = store.get(map_name, key)
            if latest is not entry and latest != entry:
                self._doomed = f"'{map_name}/{key}' changed after this transaction's read version"
        if entry is None:
            read: tuple[int, Any] = (0, None)
        else:
            read = (
                int.from_bytes(entry[-VERSION_BYTES:], "little"),
                _codec.decode(entry[:-VERSION_BYTES]),
            )
        self._reads[(map_name, key)] = read
        return read

    # Writes ----------------------------------------------------------------------------

    def _writable(self, map_name: str, key: str) -> None:
        self._check_open()
        grid = self._grid
        grid.catalog.get(map_name)
        if is_system_map(map_name):
            raise_system_map(map_name)
        grid.planner.check_key(key)
        if self._doomed is not None:
            raise Conflict(self._doomed, field="read_version")

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
        run = self._run
        run.leave_procedure()
        try:
            self._writable(map_name, key)
            encoded = encode_value(value)
            if len(encoded) > self._grid.limits.value_bytes_max:
                self._grid.planner.check_value_size(encoded)
            condition = _condition(if_version, if_absent, if_exists)
            self._writes.append(Write(Op.PUT, map_name, key, encoded, condition))
            overlay = self._overlays.get((map_name, key))
            if overlay is None:
                overlay = self._overlays[(map_name, key)] = _Overlay()
            overlay.replaced = True
            overlay.encoded = encoded
            overlay.updates = []
        finally:
            run.enter_procedure()

    def delete(
        self, map_name: str, key: str, *, if_version: int | None = None, if_exists: bool = False
    ) -> None:
        run = self._run
        run.leave_procedure()
        try:
            self._writable(map_name, key)
            condition = _condition(if_version, False, if_exists)
            self._writes.append(Write(Op.DELETE, map_name, key, b"", condition))
            overlay = self._overlays.get((map_name, key))
            if overlay is None:
                overlay = self._overlays[(map_name, key)] = _Overlay()
            overlay.replaced = True
            overlay.encoded = None
            overlay.updates = []
        finally:
            run.enter_procedure()

    def increment(
        self, map_name: str, key: str, field: str | dict[str, Any], amount: int | float = 1
    ) -> None:
        """Adds to numeric fields without reading them: concurrent increments never conflict."""
        changes: dict[str, Any] = {field: amount} if isinstance(field, str) else dict(field)
        if not changes:
            raise InvalidArgument("an increment names at least one field", field="field")
        for name, change in changes.items():
            if type(change) is not int and type(change) is not float:
                raise InvalidArgument(
                    f"increment of field '{name}' must be a number, got {type(change).__name__}",
                    field=name,
                )
        self._update(Op.INCREMENT, map_name, key, changes)

    def append(self, map_name: str, key: str, field: str, items: Iterable[Any]) -> None:
        """Appends items to a list field without reading it."""
        self._update(Op.APPEND, map_name, key, {field: list(items)})

    def _update(self, op: Op, map_name: str, key: str, changes: dict[str, Any]) -> None:
        run = self._run
        run.leave_procedure()
        try:
            self._writable(map_name, key)
            encoded = encode_value(changes)
            self._writes.append(Write(op, map_name, key, encoded))
            overlay = self._overlays.get((map_name, key))
            if overlay is None:
                overlay = self._overlays[(map_name, key)] = _Overlay()
            # What the server will apply: the decoded form of what was encoded.
            overlay.updates.append((op, _codec.decode(encoded)))
        finally:
            run.enter_procedure()

    def sketch_add(self, map_name: str, key: str, items: Any) -> None:
        """Adds one item, or a list of items, to the sketch at the key."""
        run = self._run
        run.leave_procedure()
        try:
            self._writable(map_name, key)
            if self._grid.catalog.get(map_name).sketch is None:
                raise InvalidArgument(f"map '{map_name}' is not a sketch map", field="map")
            listed = items if isinstance(items, list) else [items]
            self._writes.append(Write(Op.SKETCH_ADD, map_name, key, encode_value(listed)))
        finally:
            run.enter_procedure()
