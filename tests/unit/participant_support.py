"""Helpers for driving a grid.participant.Participant in unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from grid.entry import value_of, version_of
from grid.memory.records import Op, Record, decode_record, encode_record
from grid.participant import (
    Action,
    ApplyOnePhase,
    Condition,
    Event,
    Failed,
    Participant,
    Persist,
    Prepare,
    Read,
    Reply,
    Send,
    Write,
)


def put(
    key: str, value: Any = None, *, map_name: str = "m", condition: Condition | None = None
) -> Write:
    document = {"v": key} if value is None else value
    return Write(Op.PUT, map_name, key, orjson.dumps(document), condition)


def delete(key: str, *, map_name: str = "m", condition: Condition | None = None) -> Write:
    return Write(Op.DELETE, map_name, key, b"", condition)


def increment(key: str, changes: dict[str, Any], *, map_name: str = "c") -> Write:
    return Write(Op.INCREMENT, map_name, key, orjson.dumps(changes))


def append(key: str, changes: dict[str, Any], *, map_name: str = "l") -> Write:
    return Write(Op.APPEND, map_name, key, orjson.dumps(changes))


def reference(key: str, change: int, *, map_name: str = "people") -> Write:
    return Write(Op.REFERENCE, map_name, key, str(change).encode())


def read(key: str, version: int, *, map_name: str = "m") -> Read:
    return Read(map_name, key, version)


def apply(*writes: Write, reads: tuple[Read, ...] = (), request_id: bytes = b"") -> ApplyOnePhase:
    return ApplyOnePhase(request_id, reads, tuple(writes))


def prepare(
    txn_id: bytes,
    *writes: Write,
    reads: tuple[Read, ...] = (),
    durable: bool = True,
    lease_expires_ms: int = 1_000,
    status_partition: int = 3,
) -> Prepare:
    return Prepare(txn_id, reads, tuple(writes), lease_expires_ms, status_partition, durable)


@dataclass
class Step:
    """What one event did: the records it asked to persist and its reply."""

    records: list[Record]
    reply: Reply


def split(actions: list[Action]) -> Step:
    records = [action.record for action in actions if isinstance(action, Persist)]
    replies = [action.reply for action in actions if isinstance(action, Send)]
    assert len(replies) == 1, f"expected exactly one reply, got {actions}"
    assert isinstance(actions[-1], Send), "records are persisted before the reply is sent"
    return Step(records, replies[0])


@dataclass
class Harness:
    """A participant whose persisted records are kept, as the log would keep them."""

    participant: Participant = field(default_factory=lambda: Participant(0))
    log: list[bytes] = field(default_factory=list)

    def step(self, event: Event) -> Step:
        result = split(self.participant.handle(event))
        self.log.extend(encode_record(record) for record in result.records)
        return result

    def reply(self, event: Event) -> Reply:
        return self.step(event).reply

    def error(self, event: Event) -> Exception:
        result = self.step(event)
        assert isinstance(result.reply, Failed), f"expected a failure, got {result.reply}"
        assert result.records == []
        return result.reply.error

    def value(self, key: str, map_name: str = "m") -> Any:
        entry = self.participant.get(map_name, key)
        return None if entry is None else orjson.loads(value_of(entry))

    def version(self, key: str, map_name: str = "m") -> int:
        entry = self.participant.get(map_name, key)
        return 0 if entry is None else version_of(entry)

    def replayed(self, **options: Any) -> Participant:
        fresh = Participant(0, **options)
        for payload in self.log:
            fresh.replay(decode_record(payload))
        return fresh


def state_of(participant: Participant) -> dict[str, Any]:
    """Everything a participant keeps that recovery must reproduce."""
    return {
        "lsn": participant.lsn,
        "entries": {
            name: dict(segment.entries)
            for name, segment in participant.segments.items()
            if segment.entries
        },
        "locks": {
            target: {txn: mode for txn, mode in holders.items() if _durable(participant, txn)}
            for target, holders in participant.locks.items()
            if any(_durable(participant, txn) for txn in holders)
        },
        "staged": {
            txn_id: (
                staged.writes,
                staged.locked,
                staged.lease_expires_ms,
                staged.status_partition,
                staged.state,
            )
            for txn_id, staged in participant.staged.items()
            if staged.durable
        },
        "statuses": dict(participant.statuses),
        # The sweeper's indexes, rebuilt by replay and by a checkpoint's restore alike.
        "undecided": set(participant.undecided),
        "decided_order": dict(participant.decided_order),
        "refcounts": dict(participant.refcounts),
        "outcomes": dict(participant.outcomes),
    }


def _durable(participant: Participant, txn_id: bytes) -> bool:
    staged = participant.staged.get(txn_id)
    return staged is None or staged.durable
