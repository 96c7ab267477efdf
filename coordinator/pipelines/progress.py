"""A Kafka partition's progress as the grid holds it: its state, and a batch's bookkeeping.

`PartitionState` is what a consumer knows of a partition it owns: the next offset, the
version of the offsets record (the condition of its next write), the dedup window and
the dead-letter outbox. `load_state` reads it from the grid on every assignment;
`bookkeeping_writes` are the writes that record a batch's progress in the batch's own
transaction: the offsets record (conditional), the dedup segment and the segments that
expire, the outbox entries of rejected events and the deletion of published ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from coordinator.pipelines.batching import TopicPartitionKey
from coordinator.pipelines.deadletter import DEAD_LETTERS_MAP, DeadLetter, outbox_key
from coordinator.pipelines.dedup import DedupWindow
from coordinator.pipelines.ledger import (
    APPLIED,
    DUPLICATE,
    EXPIRE_PER_BATCH,
    REJECTED,
    LedgerEntry,
    LedgerPosition,
    encode_outcomes,
    ledger_writes,
)
from coordinator.pipelines.offsets import (
    DEDUP_MAP,
    OFFSETS_MAP,
    OffsetsRecord,
    dedup_segment_key,
    offsets_key,
)
from grid.entry import value_of, version_of
from grid.memory.records import Op
from grid.participant import Condition, Write
from shoal.pipelines import PipelineSpec

log = logging.getLogger(__name__)

# A partition whose batch was fenced takes no records until the loop syncs it again.
BLOCKED = -1


@dataclass
class PartitionState:
    """What the applier knows of one Kafka partition's committed state in the grid."""

    topic: str
    partition: int
    epoch: int
    # The next offset to apply; None when nothing was ever committed for the partition.
    next_offset: int | None
    # Version of the offsets record (0: it does not exist yet).
    version: int
    dedup: DedupWindow
    outbox: list[int] = field(default_factory=list)
    # Outbox entries known to be in the dead-letter topic, to delete at the next commit.
    confirmed: set[int] = field(default_factory=set)
    dead_letter_floor: int | None = None
    new_floor: int | None = None
    # Running totals of the partition's outcomes, as its offsets record holds them.
    applied: int = 0
    rejected: int = 0
    duplicates: int = 0
    ledger: LedgerPosition = field(default_factory=LedgerPosition)
    key: TopicPartitionKey = ("", 0)

    def __post_init__(self) -> None:
        self.key = (self.topic, self.partition)


@dataclass
class SyncResult:
    topic: str
    partition: int
    # Where to seek: the grid's next offset, or None for the pipeline's start policy.
    next_offset: int | None
    # Outbox entries not known to be published (the dead-letter publisher checks them).
    pending: list[DeadLetter]
    dead_letter_floor: int | None


class Share:
    """One partition's share of a transaction being built."""

    __slots__ = (
        "dead_letters",
        "first_offset",
        "keys",
        "ledger",
        "next_offset",
        "offsets",
        "processed",
        "seen",
        "state",
        "timestamps",
    )

    def __init__(self, state: PartitionState) -> None:
        self.state = state
        self.first_offset = -1
        self.next_offset = -1
        self.processed = 0
        self.keys: list[str] = []
        self.seen: set[str] = set()
        self.dead_letters: list[DeadLetter] = []
        self.timestamps: list[int] = []
        # Offsets of the events taken, in order (each has one outcome).
        self.offsets: list[int] = []
        self.ledger: LedgerPosition | None = None

    def ledger_entry(self, tag: str, now_ms: int) -> LedgerEntry:
        """What the share did with each offset of its range."""
        rejected = {letter.offset for letter in self.dead_letters}
        outcomes: dict[int, str] = {}
        timestamps = iter(self.timestamps)
        for offset in self.offsets:
            if offset in rejected:
                outcomes[offset] = REJECTED
            else:
                outcomes[offset] = DUPLICATE if next(timestamps, 0) < 0 else APPLIED
        return LedgerEntry(
            self.first_offset,
            self.next_offset,
            encode_outcomes(self.first_offset, self.next_offset, outcomes),
            tag,
            now_ms,
        )

    def outcomes(self) -> tuple[int, int, int]:
        """The share's events applied, rejected and skipped as repeats."""
        duplicates = sum(1 for timestamp in self.timestamps if timestamp < 0)
        return len(self.timestamps) - duplicates, len(self.dead_letters), duplicates

    def bookkeeping_keys(self) -> int:
        """A bound on the bookkeeping writes of the share before its dead letters: the
        offsets record, the dedup segment, a few expired segments, the ledger entry and
        the expired ones, confirmed outbox entries."""
        return 5 + EXPIRE_PER_BATCH + len(self.state.confirmed)


def load_state(
    entry_of: Callable[[str, str], bytes | None],
    spec: PipelineSpec,
    topic: str,
    partition: int,
    epoch: int,
) -> tuple[PartitionState, list[DeadLetter]]:
    """A partition's committed state as the grid holds it, and its outbox entries."""
    entry = entry_of(OFFSETS_MAP, offsets_key(spec.group, topic, partition))
    window = DedupWindow(spec.dedup_window)
    if entry is None:
        state = PartitionState(topic, partition, epoch, None, 0, window)
    else:
        record = OffsetsRecord.from_json(orjson.loads(value_of(entry)))
        for segment_id in record.dedup_segments:
            segment = entry_of(
                DEDUP_MAP, dedup_segment_key(spec.group, topic, partition, segment_id)
            )
            if segment is None:
                log.warning(
                    "pipeline %s: dedup segment %d of %s/%d is missing",
                    spec.name,
                    segment_id,
                    topic,
                    partition,
                )
                continue
            window.add_segment(segment_id, orjson.loads(value_of(segment)))
        state = PartitionState(
            topic,
            partition,
            epoch,
            record.offset,
            version_of(entry),
            window,
            outbox=list(record.outbox),
            dead_letter_floor=record.dead_letter_floor,
            applied=record.applied,
            rejected=record.rejected,
            duplicates=record.duplicates,
            ledger=LedgerPosition(record.ledger_seq, record.ledger_oldest, record.ledger_floor),
        )
    pending = []
    for source_offset in state.outbox:
        stored = entry_of(DEAD_LETTERS_MAP, outbox_key(spec.group, topic, partition, source_offset))
        if stored is not None:
            pending.append(DeadLetter.from_json(orjson.loads(value_of(stored))))
    return state, pending


def bookkeeping_writes(
    group: str,
    owner: str,
    shares: dict[TopicPartitionKey, Share],
    batch_tag: str,
    now_ms: int,
    entry_of: Callable[[str, str], bytes | None],
) -> tuple[list[Write], dict[TopicPartitionKey, int], dict[TopicPartitionKey, list[int]]]:
    """The writes that record the attempt's progress, the position of each offsets
    write among them, and the dedup segments each partition drops."""
    writes: list[Write] = []
    positions: dict[TopicPartitionKey, int] = {}
    expired_by_key: dict[TopicPartitionKey, list[int]] = {}
    for key, share in shares.items():
        state = share.state
        topic, partition = key
        segments = state.dedup.segment_ids
        expired: list[int] = []
        if share.keys:
            expired = state.dedup.expired(incoming=len(share.keys))
            writes.append(
                Write(
                    Op.PUT,
                    DEDUP_MAP,
                    dedup_segment_key(group, topic, partition, share.first_offset),
                    orjson.dumps(share.keys),
                )
            )
            segments = [item for item in segments if item not in expired]
            segments.append(share.first_offset)
            for segment_id in expired:
                writes.append(
                    Write(
                        Op.DELETE,
                        DEDUP_MAP,
                        dedup_segment_key(group, topic, partition, segment_id),
                    )
                )
        expired_by_key[key] = expired
        outbox = [offset for offset in state.outbox if offset not in state.confirmed]
        for offset in sorted(state.confirmed):
            writes.append(
                Write(Op.DELETE, DEAD_LETTERS_MAP, outbox_key(group, topic, partition, offset))
            )
        for letter in share.dead_letters:
            outbox.append(letter.offset)
            writes.append(
                Write(
                    Op.PUT,
                    DEAD_LETTERS_MAP,
                    outbox_key(group, topic, partition, letter.offset),
                    letter.to_json(),
                )
            )
        floor = state.new_floor if state.new_floor is not None else state.dead_letter_floor
        applied, rejected, duplicates = share.outcomes()
        ledger, share.ledger = ledger_writes(
            group,
            topic,
            partition,
            share.ledger_entry(batch_tag, now_ms),
            state.ledger,
            entry_of,
            now_ms,
        )
        writes.extend(ledger)
        record = OffsetsRecord(
            offset=share.next_offset,
            dedup_segments=segments,
            outbox=outbox,
            dead_letter_floor=floor,
            batch=batch_tag,
            owner=owner,
            committed_ms=now_ms,
            applied=state.applied + applied,
            rejected=state.rejected + rejected,
            duplicates=state.duplicates + duplicates,
            ledger_seq=share.ledger.seq,
            ledger_oldest=share.ledger.oldest,
            ledger_floor=share.ledger.floor,
        )
        positions[key] = len(writes)
        writes.append(
            Write(
                Op.PUT,
                OFFSETS_MAP,
                offsets_key(group, topic, partition),
                record.to_json(),
                Condition("if_version", state.version),
            )
        )
    return writes, positions, expired_by_key
