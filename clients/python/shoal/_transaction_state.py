"""What a transaction has read and buffered, shared by the sync and asyncio transactions.

The SDK keeps the whole transaction: each key read is remembered with its version,
each write is buffered, and commit sends both in one call. Reads see the
transaction's own writes, including increments and appends applied to the value read.

Every read is at the transaction's read version, which the server picks with the
first read and answers; later reads send it back. The reads therefore see one
consistent state of the grid, a prefix of the commit order: a transaction that only
reads is serializable as it is, needs no commit call, and never aborts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoal import _codec, _requests
from shoal._errors import ConflictError, InvalidArgumentError, ResourceExhaustedError
from shoal.v1 import transactions_pb2

Target = tuple[str, str]
PUT = transactions_pb2.WriteOp.PUT
DELETE = transactions_pb2.WriteOp.DELETE
INCREMENT = transactions_pb2.WriteOp.INCREMENT
APPEND = transactions_pb2.WriteOp.APPEND
SKETCH_ADD = transactions_pb2.WriteOp.SKETCH_ADD
# A transaction smaller than this is far below any sensible server limit, so the client
# asks the server for its limit (once) only when a transaction grows past it.
SIZE_CHECKED_FROM = 1000


@dataclass
class _Overlay:
    """The transaction's own effect on one key, as far as the client can know it."""

    # Set by a put or a delete: the whole value is known (None after a delete).
    replaced: bool = False
    value: Any = None
    # Increments and appends since the last put/delete, applied over the stored value.
    updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def _apply_updates(value: Any, updates: list[tuple[int, dict[str, Any]]]) -> Any:
    if not updates:
        return value
    document = dict(value) if isinstance(value, dict) else {}
    for kind, changes in updates:
        for name, change in changes.items():
            if kind == INCREMENT:
                document[name] = document.get(name, 0) + change
            else:
                document[name] = [*(document.get(name) or []), *change]
    return document


class TransactionState:
    """`keys_max` gives the server's transaction_keys_max (0 when it has none): the
    transaction is refused when it passes it, at the read or write that does, rather than
    at commit after every read was made."""

    def __init__(self, keys_max: Callable[[], int] | None = None) -> None:
        self._keys_max = keys_max
        self.txn_id = _requests.new_id()
        self.read_versions: dict[Target, int] = {}
        self.read_values: dict[Target, Any] = {}
        self.writes: list[transactions_pb2.WriteOp] = []
        self.overlays: dict[Target, _Overlay] = {}
        self.finished = False
        # The version all reads are made at; 0 until the first read answers it.
        self.read_version = 0
        # Why the transaction cannot commit if it writes: a key it read changed after
        # its read version (the commit would abort), so a write fails at once.
        self.doomed: str | None = None
        # Whether the transaction scanned a map: then it may not write (see note_scan).
        self.scanned = False

    def note_read_version(self, version: int) -> None:
        if not self.read_version:
            self.read_version = version

    @property
    def needs_commit_call(self) -> bool:
        """Only a transaction that writes: one that only read saw one read version."""
        return bool(self.writes)

    def check_open(self) -> None:
        if self.finished:
            raise InvalidArgumentError(
                "the transaction is finished; start a new one", field="transaction"
            )

    def note_scan(self) -> None:
        """A scan sees the map at the read version, but its range is not validated at
        commit (a key inserted since would go unseen), so only read-only transactions
        may scan: scanning and writing in one transaction are refused."""
        self.check_open()
        if self.writes:
            raise InvalidArgumentError(
                "a transaction that writes cannot scan: a scan's range is not validated at "
                "commit; read the keys with get or get_many instead",
                field="scan",
            )
        self.scanned = True

    def check_not_scanned(self) -> None:
        if self.scanned:
            raise InvalidArgumentError(
                "a transaction that scanned cannot write: a scan's range is not validated "
                "at commit; read the keys with get or get_many instead",
                field="scan",
            )

    def note_changed(self, where: str) -> None:
        """A read found its key changed after the read version: fail now if writing."""
        if self.doomed is None:
            self.doomed = f"{where} changed after this transaction's read version"
        self.check_writable()

    def check_writable(self) -> None:
        """Fails fast a transaction whose commit is sure to abort."""
        if self.doomed is not None and self.writes:
            raise ConflictError(self.doomed, field="read_version")

    @property
    def size(self) -> int:
        """Keys read and writes made: what the server counts against its limit."""
        return len(self.read_versions) + len(self.writes)

    def check_size(self) -> None:
        size = self.size
        if size <= SIZE_CHECKED_FROM or self._keys_max is None:
            return
        keys_max = self._keys_max()
        if keys_max and size > keys_max:
            self.finished = True
            raise ResourceExhaustedError(
                f"the transaction reads and writes {size} keys; the server's limit is "
                f"{keys_max} (transaction_keys_max)",
                field="transaction",
            )

    def local(self, target: Target) -> tuple[bool, Any]:
        """(True, value) when the value is known without asking the server."""
        overlay = self.overlays.get(target)
        if overlay is not None and overlay.replaced:
            return True, _apply_updates(overlay.value, overlay.updates)
        if target in self.read_values:
            updates = overlay.updates if overlay is not None else []
            return True, _apply_updates(self.read_values[target], updates)
        return False, None

    def record_read(self, target: Target, value: Any, version: int) -> Any:
        """Remembers a server read and returns what the transaction sees for the key."""
        self.read_versions[target] = version
        self.read_values[target] = value
        self.check_size()
        return self.local(target)[1]

    def record_batch(self, map_name: str, keys: list[str], reply: Any) -> None:
        """Remembers a consistent batch read (a GetManyResponse with versions)."""
        self.note_read_version(reply.read_version)
        if reply.changed:
            self.note_changed(f"a key of '{map_name}' read in a batch")
        decoded = _codec.decode_array(reply.values_json) if reply.found_indexes else []
        found = dict(
            zip(reply.found_indexes, zip(decoded, reply.versions, strict=True), strict=True)
        )
        for index, key in enumerate(keys):
            value, version = found.get(index, (None, 0))
            self.record_read((map_name, key), value, version)

    def visible(self, map_name: str, keys: list[str]) -> dict[str, Any]:
        """The keys that exist as the transaction sees them, with their values."""
        result = {}
        for key in keys:
            value = self.local((map_name, key))[1]
            if value is not None:
                result[key] = value
        return result

    def put(self, target: Target, value: Any, condition: Any = None) -> None:
        self.check_open()
        self.check_not_scanned()
        encoded = _codec.encode(value)
        self.writes.append(
            _requests.build(
                transactions_pb2.WriteOp,
                map=target[0],
                key=_requests.check_key(target[1]),
                kind=PUT,
                value=encoded,
                condition=condition,
            )
        )
        # Keep what the server will store: the decoded form of what was sent.
        self.overlays[target] = _Overlay(replaced=True, value=_codec.decode(encoded))
        self.check_size()
        self.check_writable()

    def delete(self, target: Target, condition: Any = None) -> None:
        self.check_open()
        self.check_not_scanned()
        self.writes.append(
            _requests.build(
                transactions_pb2.WriteOp,
                map=target[0],
                key=_requests.check_key(target[1]),
                kind=DELETE,
                condition=condition,
            )
        )
        self.overlays[target] = _Overlay(replaced=True, value=None)
        self.check_size()
        self.check_writable()

    def update(self, target: Target, kind: Any, changes: dict[str, Any]) -> None:
        self.check_open()
        self.check_not_scanned()
        self.writes.append(
            _requests.build(
                transactions_pb2.WriteOp,
                map=target[0],
                key=_requests.check_key(target[1]),
                kind=kind,
                value=_codec.encode(changes),
            )
        )
        self.overlays.setdefault(target, _Overlay()).updates.append((kind, changes))
        self.check_size()
        self.check_writable()

    def sketch_add(self, target: Target, items: list[Any]) -> None:
        self.check_open()
        self.check_not_scanned()
        self.writes.append(
            _requests.build(
                transactions_pb2.WriteOp,
                map=target[0],
                key=_requests.check_key(target[1]),
                kind=SKETCH_ADD,
                value=_codec.encode(items),
            )
        )
        self.check_size()
        self.check_writable()

    def commit_request(self) -> transactions_pb2.CommitRequest:
        return _requests.build(
            transactions_pb2.CommitRequest,
            txn_id=self.txn_id,
            reads=[
                _requests.build(transactions_pb2.ReadEntry, map=m, key=k, version=version)
                for (m, k), version in self.read_versions.items()
            ],
            writes=self.writes,
        )


def increment_changes(field_or_changes: str | dict[str, Any], amount: Any) -> dict[str, Any]:
    changes = (
        {field_or_changes: amount} if isinstance(field_or_changes, str) else dict(field_or_changes)
    )
    for name, change in changes.items():
        if isinstance(change, bool) or not isinstance(change, int | float):
            raise InvalidArgumentError(
                f"increment of field '{name}' must be a number, got {type(change).__name__}",
                field=name,
            )
    return changes
