"""The partition participant: a pure state machine for one partition's data and locks.

``Participant.handle(event)`` returns actions (records to persist, then one reply)
and never does I/O: the backend shell writes the records to the partition's log
before it sends the reply, and replays the same records on recovery. Every event is
one atomic step, so a shared store can run each as one script or one transaction.

Isolation: a transaction's writes are staged at prepare under locks: S for keys it
read, X for keys it overwrites, I for commutative updates, R for references to a
key (which keep it from being deleted). S shares with S and R; I with I and R; R
with S, I and R; X with nothing. Locks are taken without waiting: a conflict votes no and the
transaction aborts. Read versions are validated while the locks are held, and the
locks are kept until the decision, so the commit order is a serial order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from grid.entry import VERSION_BYTES, value_of, version_of
from grid.errors import Conflict, FailedPrecondition, GridError, InvalidArgument
from grid.field_updates import apply_field_update, increments_in_flight
from grid.locks import (
    COMMUTATIVE,
    COMMUTATIVE_OPS,
    COMPATIBLE,
    EXCLUSIVE,
    REFERENCING,
    SHARED,
    NumericGuard,
    combine_modes,
    lock_modes,
)
from grid.memory.records import Entry, Op, Record, RecordKind
from grid.memory.segment import Segment
from grid.protocol import (
    ABORTED,
    COMMITTED,
    FINAL_STATES,
    PENDING,
    PRE_COMMITTED,
    STATUS_ORDER,
    Abort,
    Ack,
    Action,
    Applied,
    ApplyOnePhase,
    CasStatus,
    Commit,
    Condition,
    CreateStatus,
    DropMap,
    Event,
    Failed,
    ForgetStatus,
    ForgetVersions,
    Persist,
    PreCommit,
    Prepare,
    Read,
    ReadOutcome,
    ReadStatus,
    Reply,
    Send,
    StatusReply,
    Vote,
    Write,
)
from grid.schema import Validator
from grid.versions import VERSIONS_BYTES_MAX_DEFAULT, Versions

# Names of the protocol and the locks, re-exported: callers import them from here.
__all__ = [
    "ABORTED",
    "COMMITTED",
    "COMMUTATIVE",
    "COMMUTATIVE_OPS",
    "COMPATIBLE",
    "EXCLUSIVE",
    "FINAL_STATES",
    "OUTCOMES_MAX_DEFAULT",
    "PENDING",
    "PRE_COMMITTED",
    "REFERENCING",
    "SHARED",
    "STATUS_ORDER",
    "Abort",
    "Ack",
    "Action",
    "Applied",
    "ApplyOnePhase",
    "CasStatus",
    "Commit",
    "Condition",
    "CreateStatus",
    "DropMap",
    "Event",
    "Failed",
    "ForgetStatus",
    "ForgetVersions",
    "NumericGuard",
    "Participant",
    "Persist",
    "PreCommit",
    "Prepare",
    "Read",
    "ReadOutcome",
    "ReadStatus",
    "Reply",
    "Send",
    "SketchApply",
    "StagedTransaction",
    "StatusRecord",
    "StatusReply",
    "ValidatorLookup",
    "Vote",
    "Write",
    "combine_modes",
    "write_entry",
]

OUTCOMES_MAX_DEFAULT = 4096

# State --------------------------------------------------------------------------


@dataclass
class StagedTransaction:
    txn_id: bytes
    writes: tuple[Write, ...]
    locked: dict[tuple[str, str], str]
    lease_expires_ms: int
    status_partition: int
    state: str = "prepared"
    durable: bool = True


@dataclass
class StatusRecord:
    state: str
    participants: tuple[int, ...]
    lease_expires_ms: int
    updated_ms: int


ValidatorLookup = Callable[[str], Validator | None]
SketchApply = Callable[[str, bytes | None, bytes], bytes]


def _no_validator(map_name: str) -> Validator | None:
    return None


def _no_sketches(map_name: str, current: bytes | None, items: bytes) -> bytes:
    raise InvalidArgument(f"map '{map_name}' is not a sketch map", field="map")


def _no_guard(map_name: str, field_name: str) -> bool:
    return False


class Participant:
    """One partition's entries, locks, staged transactions and status records."""

    def __init__(
        self,
        partition: int,
        *,
        validators: ValidatorLookup = _no_validator,
        sketch_apply: SketchApply = _no_sketches,
        guarded_field: NumericGuard = _no_guard,
        outcomes_max: int = OUTCOMES_MAX_DEFAULT,
        versions_bytes_max: int = VERSIONS_BYTES_MAX_DEFAULT,
    ) -> None:
        self.partition = partition
        # Overwritten states kept for reads at older versions (see grid.versions).
        self.versions = Versions(versions_bytes_max)
        self.lsn = 0
        # The highest commit version applied here (see coordinator.transactions.sequence).
        self.version = 0
        self.segments: dict[str, Segment] = {}
        # Holders of each locked key: transaction id to lock mode.
        self.locks: dict[tuple[str, str], dict[bytes, str]] = {}
        # How many values reference each key (through schema fields with `ref`).
        self.refcounts: dict[tuple[str, str], int] = {}
        self.staged: dict[bytes, StagedTransaction] = {}
        self.statuses: dict[bytes, StatusRecord] = {}
        # Indexes over `statuses`, so the recovery sweeper reads only what may need it: the
        # undecided records, and the decided ones in the order they were decided (each with
        # its updated time), whose oldest are the first to outlive the retention period.
        self.undecided: set[bytes] = set()
        self.decided_order: OrderedDict[bytes, int] = OrderedDict()
        # Answers of recent one-phase commits by request id, and of recent three-phase
        # commits by transaction id, so a retry after a lost reply gets the first answer
        # (and a one-phase retry never applies twice).
        self.outcomes: OrderedDict[bytes, Applied] = OrderedDict()
        self.outcomes_max = outcomes_max
        # Transactions decided here lately, so a prepare that arrives late (duplicated or
        # reordered by the network) cannot stage a decided transaction again.
        self.decided: OrderedDict[bytes, str] = OrderedDict()
        self._validators = validators
        self._sketch_apply = sketch_apply
        self._guarded_field = guarded_field
        self._handlers: dict[type, Callable[[Any], list[Action]]] = {
            ApplyOnePhase: self._apply_one_phase,
            Prepare: self._prepare,
            PreCommit: self._pre_commit,
            Commit: self._commit,
            Abort: self._abort,
            CreateStatus: self._create_status,
            CasStatus: self._cas_status,
            ReadStatus: self._read_status,
            ReadOutcome: self._read_outcome,
            ForgetStatus: self._forget_status,
            DropMap: self._drop_map,
            ForgetVersions: self._forget_versions,
        }

    # Reads (not events: they change nothing and need no log) ---------------------

    def get(self, map_name: str, key: str) -> bytes | None:
        segment = self.segments.get(map_name)
        if segment is None:
            return None
        return segment.entries.get(key)

    def read_at(self, map_name: str, key: str, version: int) -> bytes | None:
        """The committed entry of a key as of a version (lock-free, like `get`)."""
        return self.versions.read(self.segments.get(map_name), key, version)

    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        """One map's entries as of a version; the caller keeps commits out meanwhile."""
        segment = self.segments.get(map_name)
        if segment is None:
            return []
        if segment.version <= version:
            return list(segment.entries.items())
        read = self.versions.read
        items = []
        for key, entry in segment.entries.items():
            if version_of(entry) > version:
                found = read(segment, key, version)
                if found is not None:
                    items.append((key, found))
            else:
                items.append((key, entry))
        for key in segment.history:
            if key not in segment.entries:
                # Deleted after the version: it existed then.
                found = read(segment, key, version)
                if found is not None:
                    items.append((key, found))
        return items

    def segment(self, map_name: str) -> Segment:
        segment = self.segments.get(map_name)
        if segment is None:
            segment = self.segments[map_name] = Segment(map_name)
        return segment

    # Events ----------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        try:
            return self._handlers[type(event)](event)
        except GridError as error:
            return [Send(Failed(error))]

    def _read_status(self, event: ReadStatus) -> list[Action]:
        return [Send(self._status_reply(event.txn_id))]

    def _read_outcome(self, event: ReadOutcome) -> list[Action]:
        previous = self.outcomes.get(event.request_id)
        if previous is None:
            return [Send(Ack(known=False))]
        return [Send(Applied(previous.versions, True, previous.removed))]

    def _next_lsn(self) -> int:
        self.lsn += 1
        return self.lsn

    def _apply_one_phase(self, event: ApplyOnePhase) -> list[Action]:
        if event.request_id:
            previous = self.outcomes.get(event.request_id)
            if previous is not None:
                return [Send(Applied(previous.versions, True, previous.removed))]
        for read in event.reads:
            self._check_read(read, None)
        wanted = lock_modes(event.reads, event.writes, self._guarded_field)
        for target, mode in wanted.items():
            self._check_lock_free(target, mode, None)
        lsn = self.lsn + 1
        version = event.version or lsn
        entries, answer = self._resolve(event.writes, version)
        self.lsn = lsn
        self._install(entries, version)
        self.versions.forget(event.horizon)
        # A version other than the log position is logged, so replay installs the same.
        meta: dict[str, Any] = {"version": version} if event.version else {}
        if event.request_id:
            meta["request"] = event.request_id.hex()
            self._remember(event.request_id, answer)
        record = Record(RecordKind.APPLIED, lsn, meta, entries)
        return [Persist(record), Send(answer)]

    def _prepare(self, event: Prepare) -> list[Action]:
        if event.txn_id in self.staged:
            # A duplicated prepare: the first one already voted yes.
            return [Send(Vote(True))]
        decided = self.decided.get(event.txn_id)
        if decided is not None:
            return [Send(Vote(False, f"the transaction was already {decided} here"))]
        wanted = lock_modes(event.reads, event.writes, self._guarded_field)
        try:
            for target, mode in wanted.items():
                self._check_lock_free(target, mode, event.txn_id)
            for read in event.reads:
                self._check_read(read, event.txn_id)
            # Resolving checks conditions, types and schemas against current state;
            # the locks keep that state until the decision.
            self._resolve(event.writes, self.lsn + 1, dry_run=True)
        except (Conflict, FailedPrecondition, InvalidArgument) as error:
            return [Send(Vote(False, str(error), error))]
        for target, mode in wanted.items():
            self._acquire(target, mode, event.txn_id)
        self.staged[event.txn_id] = StagedTransaction(
            txn_id=event.txn_id,
            writes=event.writes,
            locked=wanted,
            lease_expires_ms=event.lease_expires_ms,
            status_partition=event.status_partition,
            durable=event.durable,
        )
        if not event.durable:
            return [Send(Vote(True))]
        lsn = self._next_lsn()
        record = Record(
            RecordKind.PREPARED,
            lsn,
            {
                "txn": event.txn_id.hex(),
                "lease": event.lease_expires_ms,
                "status_partition": event.status_partition,
                "locks": [[m, k, mode] for (m, k), mode in wanted.items()],
                "conditions": _conditions_meta(event.writes),
            },
            [write_entry(write) for write in event.writes],
        )
        return [Persist(record), Send(Vote(True))]

    def _pre_commit(self, event: PreCommit) -> list[Action]:
        staged = self.staged.get(event.txn_id)
        if staged is None:
            return [Send(Ack(known=False))]
        if staged.state == PRE_COMMITTED:
            return [Send(Ack())]
        staged.state = PRE_COMMITTED
        record = Record(RecordKind.PRE_COMMITTED, self._next_lsn(), {"txn": event.txn_id.hex()})
        return [Persist(record), Send(Ack())]

    def _commit(self, event: Commit) -> list[Action]:
        staged = self.staged.pop(event.txn_id, None)
        if staged is None:
            # Already committed (a duplicate or a recovery sweep after the coordinator).
            return [Send(Ack(known=False))]
        self._release(staged)
        self._decide(event.txn_id, COMMITTED)
        if not staged.durable:
            return [Send(Ack())]
        lsn = self.lsn + 1
        version = event.version or lsn
        entries, answer = self._resolve(staged.writes, version, check=False)
        self.lsn = lsn
        self._install(entries, version)
        # Kept so a commit retried after a lost reply can still answer with versions.
        self._remember(event.txn_id, answer)
        self.versions.forget(event.horizon)
        meta: dict[str, Any] = {"txn": event.txn_id.hex()}
        if event.version:
            meta["version"] = version
        record = Record(RecordKind.COMMITTED, lsn, meta, entries)
        return [Persist(record), Send(answer)]

    def _abort(self, event: Abort) -> list[Action]:
        staged = self.staged.pop(event.txn_id, None)
        if staged is None:
            # An abort that overtook its prepare: remember it, so the prepare votes no.
            if event.txn_id not in self.decided:
                self._decide(event.txn_id, ABORTED)
            return [Send(Ack(known=False))]
        self._release(staged)
        self._decide(event.txn_id, ABORTED)
        if not staged.durable:
            return [Send(Ack())]
        record = Record(RecordKind.ABORTED, self._next_lsn(), {"txn": event.txn_id.hex()})
        return [Persist(record), Send(Ack())]

    def _create_status(self, event: CreateStatus) -> list[Action]:
        existing = self.statuses.get(event.txn_id)
        if existing is not None:
            return [Send(self._status_reply(event.txn_id))]
        self.statuses[event.txn_id] = StatusRecord(
            PENDING, event.participants, event.lease_expires_ms, event.now_ms
        )
        self._index_status(event.txn_id)
        record = self._status_record(event.txn_id)
        return [Persist(record), Send(self._status_reply(event.txn_id, swapped=True))]

    def _cas_status(self, event: CasStatus) -> list[Action]:
        status = self.statuses.get(event.txn_id)
        if status is None or status.state != event.expected:
            return [Send(self._status_reply(event.txn_id))]
        status.state = event.new
        status.updated_ms = event.now_ms
        if event.lease_expires_ms:
            status.lease_expires_ms = event.lease_expires_ms
        self._index_status(event.txn_id)
        record = self._status_record(event.txn_id)
        return [Persist(record), Send(self._status_reply(event.txn_id, swapped=True))]

    def _forget_status(self, event: ForgetStatus) -> list[Action]:
        status = self.statuses.get(event.txn_id)
        if status is None or status.state not in FINAL_STATES:
            return [Send(Ack(known=status is not None))]
        del self.statuses[event.txn_id]
        self._index_status(event.txn_id)
        record = Record(
            RecordKind.STATUS, self._next_lsn(), {"txn": event.txn_id.hex(), "forget": True}
        )
        return [Persist(record), Send(Ack())]

    def _drop_map(self, event: DropMap) -> list[Action]:
        for (map_name, _), holders in self.locks.items():
            if map_name == event.map and holders:
                raise FailedPrecondition(
                    f"map '{event.map}' has keys locked by transactions in flight", field="map"
                )
        dropped = self.segments.pop(event.map, None)
        if dropped is not None:
            self.versions.drop_segment(dropped)
        record = Record(RecordKind.MAP_DROPPED, self._next_lsn(), {"map": event.map})
        return [Persist(record), Send(Ack())]

    def _forget_versions(self, event: ForgetVersions) -> list[Action]:
        self.versions.forget(event.horizon)
        return [Send(Ack())]

    # Helpers ---------------------------------------------------------------------

    def _status_record(self, txn_id: bytes) -> Record:
        status = self.statuses[txn_id]
        return Record(
            RecordKind.STATUS,
            self._next_lsn(),
            {
                "txn": txn_id.hex(),
                "state": status.state,
                "participants": list(status.participants),
                "lease": status.lease_expires_ms,
                "updated": status.updated_ms,
            },
        )

    def _index_status(self, txn_id: bytes) -> None:
        """Brings the status indexes in line with the record of `txn_id` (after any change)."""
        status = self.statuses.get(txn_id)
        self.decided_order.pop(txn_id, None)
        if status is None:
            self.undecided.discard(txn_id)
        elif status.state in FINAL_STATES:
            self.undecided.discard(txn_id)
            self.decided_order[txn_id] = status.updated_ms
        else:
            self.undecided.add(txn_id)

    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[bytes]:
        """Up to `limit` decided records updated at or before `updated_by_ms`, oldest decided
        first. It stops at the first one updated later: a clock stepping back can only delay
        a record's turn, never bring it early."""
        found: list[bytes] = []
        for txn_id, updated_ms in self.decided_order.items():
            if updated_ms > updated_by_ms or len(found) >= limit:
                break
            found.append(txn_id)
        return found

    def _status_reply(self, txn_id: bytes, *, swapped: bool = False) -> StatusReply:
        status = self.statuses.get(txn_id)
        if status is None:
            return StatusReply(None)
        return StatusReply(
            status.state, status.participants, status.lease_expires_ms, swapped=swapped
        )

    def _decide(self, txn_id: bytes, outcome: str) -> None:
        self.decided[txn_id] = outcome
        while len(self.decided) > self.outcomes_max:
            self.decided.popitem(last=False)

    def _remember(self, request_id: bytes, answer: Applied) -> None:
        self.outcomes[request_id] = answer
        while len(self.outcomes) > self.outcomes_max:
            self.outcomes.popitem(last=False)

    def _check_read(self, read: Read, txn_id: bytes | None) -> None:
        entry = self.get(read.map, read.key)
        current = 0 if entry is None else version_of(entry)
        if current != read.version:
            raise Conflict(
                f"'{read.map}/{read.key}' changed since it was read "
                f"(read version {read.version}, now {current})",
                field="key",
                target=(read.map, read.key),
            )

    def _check_lock_free(self, target: tuple[str, str], mode: str, txn_id: bytes | None) -> None:
        holders = self.locks.get(target)
        if not holders:
            return
        compatible = COMPATIBLE[mode]
        for holder, held in holders.items():
            if holder != txn_id and held not in compatible:
                raise Conflict(
                    f"'{target[0]}/{target[1]}' is locked by a transaction in flight",
                    field="key",
                    target=target,
                )

    def _acquire(self, target: tuple[str, str], mode: str, txn_id: bytes) -> None:
        holders = self.locks.get(target)
        if holders is None:
            self.locks[target] = {txn_id: mode}
        else:
            holders[txn_id] = mode

    def _release(self, staged: StagedTransaction) -> None:
        for target in staged.locked:
            holders = self.locks.get(target)
            if holders is None:
                continue
            holders.pop(staged.txn_id, None)
            if not holders:
                del self.locks[target]

    def _resolve(
        self, writes: Iterable[Write], version: int, *, dry_run: bool = False, check: bool = True
    ) -> tuple[list[Entry], Applied]:
        """The final PUT/DELETE entries the writes make, checking conditions and schemas,
        and the answer: each write's version and which deletes removed a value.

        Writes to one key apply in order, each seeing the ones before it. A commit
        resolves with `check` off: prepare checked everything, and the locks held
        since then admit only changes (commutative updates) that keep it true.
        """
        pending: dict[tuple[str, str], bytes | None] = {}
        references: dict[tuple[str, str], int] = {}
        entries: list[Entry] = []
        versions: list[int] = []
        removed: list[int] = []
        put = Op.PUT
        for position, write in enumerate(writes):
            target = (write.map, write.key)
            if write.op == put and write.condition is None:
                # An unconditional put needs nothing of the key's current state: the
                # common case of a batch, kept short.
                pending[target] = write.value
                versions.append(version)
                if not dry_run:
                    entries.append(Entry(put, write.map, write.key, write.value))
                continue
            if target in pending:
                current_value = pending[target]
                current_version = version if current_value is not None else 0
            else:
                stored = self.get(write.map, write.key)
                current_value = None if stored is None else value_of(stored)
                current_version = 0 if stored is None else version_of(stored)
            if check and write.condition is not None:
                check_condition(write, current_version)
            op = write.op
            if op == Op.PUT:
                new_value: bytes | None = write.value
            elif op == Op.DELETE:
                new_value = None
                if current_value is not None:
                    removed.append(position)
                count = self.refcounts.get(target, 0) + references.get(target, 0)
                if check and count > 0 and current_value is not None:
                    raise FailedPrecondition(
                        f"'{write.map}/{write.key}' is referenced by {count} value(s); "
                        "change or delete them first",
                        field="key",
                        target=(write.map, write.key),
                    )
            elif op == Op.REFERENCE:
                change = int(write.value)
                if check and change > 0 and current_value is None:
                    raise FailedPrecondition(
                        f"referenced key '{write.map}/{write.key}' does not exist",
                        field="key",
                        target=(write.map, write.key),
                    )
                references[target] = references.get(target, 0) + change
                versions.append(current_version)
                if not dry_run:
                    entries.append(write_entry(write))
                continue
            elif op == Op.SKETCH_ADD:
                new_value = self._sketch_apply(write.map, current_value, write.value)
            else:
                in_flight = (
                    self._increments_in_flight(target) if check and op == Op.INCREMENT else None
                )
                new_value = apply_field_update(write, current_value, in_flight=in_flight)
                validator = self._validators(write.map) if check else None
                if validator is not None:
                    validator.validate(orjson.loads(new_value), write.key)
            pending[target] = new_value
            versions.append(0 if new_value is None else version)
            if not dry_run:
                if new_value is None:
                    entries.append(Entry(Op.DELETE, write.map, write.key))
                else:
                    entries.append(Entry(Op.PUT, write.map, write.key, new_value))
        return entries, Applied(tuple(versions), removed=tuple(removed))

    def _increments_in_flight(self, target: tuple[str, str]) -> dict[str, tuple[int, int]]:
        """The increments of the key by transactions prepared here (they hold its lock)."""
        holders = self.locks.get(target)
        if not holders:
            return {}
        writes = [
            write
            for txn_id in holders
            if (staged := self.staged.get(txn_id)) is not None
            for write in staged.writes
            if (write.map, write.key) == target
        ]
        return increments_in_flight(writes)

    def _install(self, entries: list[Entry], version: int, *, keep: bool = True) -> None:
        """Installs a commit's entries at its version, keeping what they overwrite.

        `keep` is off in recovery: no read can be at a version from before a restart,
        so nothing older than the last version is kept (the floor says so).
        """
        # Every entry of a record gets the commit's version (see grid.entry.pack).
        self.version = max(self.version, version)
        suffix = version.to_bytes(VERSION_BYTES, "little")
        segments = self.segments
        versions = self.versions
        if not keep:
            versions.floor = self.version
        for entry in entries:
            if entry.op == Op.PUT:
                segment = segments.get(entry.map)
                if segment is None:
                    segment = self.segment(entry.map)
                # In this order for lock-free readers: the segment's version, the old
                # state, and only then the new entry (see grid.versions).
                segment.version = version
                old = segment.entries.get(entry.key)
                if old is not None and keep:
                    versions.overwritten(segment, entry.key, old, version)
                segment.put(entry.key, entry.value + suffix)
            elif entry.op == Op.DELETE:
                segment = self.segment(entry.map)
                segment.version = version
                old = segment.entries.get(entry.key)
                if old is not None and keep:
                    versions.overwritten(segment, entry.key, old, version)
                segment.delete(entry.key)
            elif entry.op == Op.REFERENCE:
                target = (entry.map, entry.key)
                count = self.refcounts.get(target, 0) + int(entry.value)
                if count > 0:
                    self.refcounts[target] = count
                else:
                    self.refcounts.pop(target, None)

    # Recovery --------------------------------------------------------------------

    def replay(self, record: Record) -> None:
        """Re-applies one logged record during recovery; records arrive in log order."""
        # A checkpoint reflects every record up to its LSN, status records included; a
        # log it replaced may be left behind by a crash, and must change nothing.
        if record.lsn <= self.lsn:
            return
        kind = record.kind
        if kind in (RecordKind.APPLIED, RecordKind.COMMITTED):
            if kind == RecordKind.APPLIED and "request" in record.meta:
                self._remember(bytes.fromhex(record.meta["request"]), self._applied_answer(record))
            elif kind == RecordKind.COMMITTED:
                self._remember(bytes.fromhex(record.meta["txn"]), self._applied_answer(record))
            self._install(record.entries, record.meta.get("version", record.lsn), keep=False)
            if kind == RecordKind.COMMITTED:
                txn_id = bytes.fromhex(record.meta["txn"])
                staged = self.staged.pop(txn_id, None)
                if staged is not None:
                    self._release(staged)
                self._decide(txn_id, COMMITTED)
        elif kind == RecordKind.PREPARED:
            txn_id = bytes.fromhex(record.meta["txn"])
            locked = {(m, k): mode for m, k, mode in record.meta["locks"]}
            conditions = {int(i): Condition(c, v) for i, c, v in record.meta["conditions"]}
            writes = tuple(
                Write(entry.op, entry.map, entry.key, entry.value, conditions.get(position))
                for position, entry in enumerate(record.entries)
            )
            staged = StagedTransaction(
                txn_id, writes, locked, record.meta["lease"], record.meta["status_partition"]
            )
            self.staged[txn_id] = staged
            for target, mode in locked.items():
                self._acquire(target, mode, txn_id)
        elif kind == RecordKind.PRE_COMMITTED:
            staged_txn = self.staged.get(bytes.fromhex(record.meta["txn"]))
            if staged_txn is not None:
                staged_txn.state = PRE_COMMITTED
        elif kind == RecordKind.ABORTED:
            txn_id = bytes.fromhex(record.meta["txn"])
            aborted = self.staged.pop(txn_id, None)
            if aborted is not None:
                self._release(aborted)
            self._decide(txn_id, ABORTED)
        elif kind == RecordKind.STATUS:
            txn_id = bytes.fromhex(record.meta["txn"])
            if record.meta.get("forget"):
                self.statuses.pop(txn_id, None)
            else:
                self.statuses[txn_id] = StatusRecord(
                    record.meta["state"],
                    tuple(record.meta["participants"]),
                    record.meta["lease"],
                    record.meta["updated"],
                )
            self._index_status(txn_id)
        elif kind == RecordKind.MAP_DROPPED:
            dropped = self.segments.pop(record.meta["map"], None)
            if dropped is not None:
                self.versions.drop_segment(dropped)
        self.lsn = max(self.lsn, record.lsn)

    def _applied_answer(self, record: Record) -> Applied:
        """The answer the first attempt gave for a logged write record, before it installs.

        As in `_resolve` (one entry per write, in order): a PUT reports the record's
        version and a DELETE 0, and removed a value if the key held one at that point of
        the batch; a REFERENCE reports the version its key had at that point.
        """
        record_version = record.meta.get("version", record.lsn)
        written: dict[tuple[str, str], int] = {}
        versions: list[int] = []
        removed: list[int] = []
        for position, entry in enumerate(record.entries):
            target = (entry.map, entry.key)
            before = written.get(target)
            if before is None:
                stored = self.get(entry.map, entry.key)
                before = 0 if stored is None else version_of(stored)
            if entry.op == Op.REFERENCE:
                version = before
            else:
                if entry.op == Op.DELETE and before:
                    removed.append(position)
                version = 0 if entry.op == Op.DELETE else record_version
                written[target] = version
            versions.append(version)
        return Applied(tuple(versions), removed=tuple(removed))

    def state_meta(self) -> dict[str, Any]:
        """Everything but the entries, for a checkpoint."""
        return {
            "partition": self.partition,
            "lsn": self.lsn,
            "version": self.version,
            "staged": [
                {
                    "txn": staged.txn_id.hex(),
                    "lease": staged.lease_expires_ms,
                    "status_partition": staged.status_partition,
                    "state": staged.state,
                    "locks": [[m, k, mode] for (m, k), mode in staged.locked.items()],
                    "conditions": _conditions_meta(staged.writes),
                    "writes": [[int(w.op), w.map, w.key, w.value.hex()] for w in staged.writes],
                }
                for staged in self.staged.values()
                if staged.durable
            ],
            "statuses": [
                [txn.hex(), s.state, list(s.participants), s.lease_expires_ms, s.updated_ms]
                for txn, s in self.statuses.items()
            ],
            "outcomes": [
                [request.hex(), list(answer.versions), list(answer.removed)]
                for request, answer in self.outcomes.items()
            ],
            "refcounts": [[m, k, count] for (m, k), count in self.refcounts.items()],
            "decided": [[txn.hex(), outcome] for txn, outcome in self.decided.items()],
        }

    def restore_meta(self, meta: dict[str, Any]) -> None:
        self.lsn = meta["lsn"]
        # Before commit versions, an entry's version was its record's log position.
        self.version = max(self.version, meta.get("version", meta["lsn"]))
        self.versions.floor = self.version
        for item in meta["staged"]:
            txn_id = bytes.fromhex(item["txn"])
            conditions = {int(i): Condition(c, v) for i, c, v in item["conditions"]}
            writes = tuple(
                Write(Op(op), m, k, bytes.fromhex(v), conditions.get(position))
                for position, (op, m, k, v) in enumerate(item["writes"])
            )
            locked = {(m, k): mode for m, k, mode in item["locks"]}
            self.staged[txn_id] = StagedTransaction(
                txn_id, writes, locked, item["lease"], item["status_partition"], item["state"]
            )
            for target, mode in locked.items():
                self._acquire(target, mode, txn_id)
        for txn, state, participants, lease, updated in meta["statuses"]:
            self.statuses[bytes.fromhex(txn)] = StatusRecord(
                state, tuple(participants), lease, updated
            )
        # The checkpoint keeps records in creation order: decided ones are indexed by time.
        by_updated = sorted(self.statuses.items(), key=lambda item: item[1].updated_ms)
        for txn_id, _ in by_updated:
            self._index_status(txn_id)
        for request, versions, *removed in meta["outcomes"]:
            # Checkpoints written before answers kept removed deletes hold two items.
            self.outcomes[bytes.fromhex(request)] = Applied(
                tuple(versions), removed=tuple(removed[0]) if removed else ()
            )
        for map_name, key, count in meta.get("refcounts", []):
            self.refcounts[(map_name, key)] = count
        for txn, outcome in meta.get("decided", []):
            self.decided[bytes.fromhex(txn)] = outcome


def write_entry(write: Write) -> Entry:
    return Entry(write.op, write.map, write.key, write.value)


def _conditions_meta(writes: Iterable[Write]) -> list[list[Any]]:
    return [
        [position, write.condition.kind, write.condition.version]
        for position, write in enumerate(writes)
        if write.condition is not None
    ]


def check_condition(write: Write, current_version: int) -> None:
    """Raises FailedPrecondition when the write's condition does not hold at the key's
    current version (0: absent); every backend checks conditions with this one rule."""
    condition = write.condition
    if condition is None:
        return
    # The error's field names the part of the input at fault (the key); the message
    # names the map and key.
    target = (write.map, write.key)
    where = f"{write.map}/{write.key}"
    if condition.kind == "if_absent" and current_version != 0:
        raise FailedPrecondition(
            f"'{where}' exists (condition if_absent)", field="key", target=target
        )
    if condition.kind == "if_exists" and current_version == 0:
        raise FailedPrecondition(
            f"'{where}' does not exist (condition if_exists)", field="key", target=target
        )
    if condition.kind == "if_version" and current_version != condition.version:
        raise FailedPrecondition(
            f"'{where}' is at version {current_version}, not {condition.version} "
            "(condition if_version)",
            field="key",
            target=target,
        )
