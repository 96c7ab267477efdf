"""The ledger of a pipeline's batches: what each batch did with each offset, kept a while.

Reconciliation asks, for a window of a topic, which offsets the grid applied, rejected
or skipped as repeats, and which it never saw or applied twice. The offsets record only
says how far a partition got, so every batch also writes one ledger entry per Kafka
partition, in the batch's own transaction: its offset range and the outcome of every
offset in it, run-length encoded (``a`` applied, ``r`` rejected, ``d`` duplicate, ``-``
no record reached the pipeline there: a transaction marker, or a record lost).

The ledger is bounded and expiring: entries live in a ring of `LEDGER_SLOTS` slots per
partition (``__ledger/<group>/<topic>/<partition>/<slot>``), and each batch also drops
up to `EXPIRE_PER_BATCH` of the oldest entries older than `LEDGER_RETENTION_MS`. The
offsets record keeps the ring's position (`ledger_seq`, `ledger_oldest`) and the floor
below which offsets are no longer covered (`ledger_floor`), so a reconciliation can tell
"forgotten" from "missing".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from grid.entry import value_of
from grid.memory.records import Op
from grid.participant import Write

LEDGER_MAP = "__ledger"
LEDGER_SLOTS = 4096
LEDGER_RETENTION_MS = 7 * 24 * 3600 * 1000
EXPIRE_PER_BATCH = 2
APPLIED = "a"
REJECTED = "r"
DUPLICATE = "d"
NO_RECORD = "-"


def ledger_key(group: str, topic: str, partition: int, slot: int) -> str:
    return f"{group}/{topic}/{partition}/{slot:05d}"


@dataclass(frozen=True)
class LedgerEntry:
    first: int
    next: int
    # Run-length encoded outcomes of offsets first..next-1: "a120r1-1a40".
    outcomes: str
    txn: str
    committed_ms: int

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "first": self.first,
                "next": self.next,
                "outcomes": self.outcomes,
                "txn": self.txn,
                "committed_ms": self.committed_ms,
            }
        )

    @staticmethod
    def from_json(document: dict[str, object]) -> LedgerEntry:
        return LedgerEntry(
            int(str(document["first"])),
            int(str(document["next"])),
            str(document["outcomes"]),
            str(document.get("txn", "")),
            int(str(document.get("committed_ms", 0))),
        )

    def codes(self) -> Iterator[tuple[int, str]]:
        """(offset, outcome) for every offset of the entry's range."""
        offset = self.first
        for code, count in decode_runs(self.outcomes):
            for _ in range(count):
                yield offset, code
                offset += 1


def decode_runs(text: str) -> Iterator[tuple[str, int]]:
    position = 0
    while position < len(text):
        code = text[position]
        position += 1
        start = position
        while position < len(text) and text[position].isdigit():
            position += 1
        yield code, int(text[start:position])


def encode_outcomes(first: int, next_offset: int, outcomes: dict[int, str]) -> str:
    """Runs of outcomes over first..next_offset-1; offsets without one are ``-``."""
    parts: list[str] = []
    current, count = "", 0
    for offset in range(first, next_offset):
        code = outcomes.get(offset, NO_RECORD)
        if code == current:
            count += 1
            continue
        if count:
            parts.append(f"{current}{count}")
        current, count = code, 1
    if count:
        parts.append(f"{current}{count}")
    return "".join(parts)


@dataclass
class LedgerPosition:
    """Where a partition's ring stands, as its offsets record holds it."""

    # Entries ever written; the next one goes to slot seq % LEDGER_SLOTS.
    seq: int = 0
    # The oldest entry still kept (seq - oldest entries are kept).
    oldest: int = 0
    # Offsets below this are past the ledger; None until the first entry.
    floor: int | None = None


def ledger_writes(
    group: str,
    topic: str,
    partition: int,
    entry: LedgerEntry,
    position: LedgerPosition,
    entry_of: Callable[[str, str], bytes | None],
    now_ms: int,
) -> tuple[list[Write], LedgerPosition]:
    """The batch's entry, the expiry of old ones, and where the ring then stands."""
    seq, oldest = position.seq, position.oldest
    floor = entry.first if position.floor is None else position.floor
    writes = [
        Write(
            Op.PUT,
            LEDGER_MAP,
            ledger_key(group, topic, partition, seq % LEDGER_SLOTS),
            entry.to_json(),
        )
    ]

    def old_entry(number: int) -> LedgerEntry | None:
        stored = entry_of(LEDGER_MAP, ledger_key(group, topic, partition, number % LEDGER_SLOTS))
        if stored is None:
            return None
        return LedgerEntry.from_json(orjson.loads(value_of(stored)))

    if seq - oldest >= LEDGER_SLOTS:
        # The slot written now held the oldest entry: the floor rises past it.
        overwritten = old_entry(oldest)
        if overwritten is not None:
            floor = max(floor, overwritten.next)
        oldest += 1
    expired = 0
    while oldest < seq and expired < EXPIRE_PER_BATCH:
        candidate = old_entry(oldest)
        if candidate is not None and candidate.committed_ms >= now_ms - LEDGER_RETENTION_MS:
            break
        if candidate is not None:
            floor = max(floor, candidate.next)
            writes.append(
                Write(
                    Op.DELETE,
                    LEDGER_MAP,
                    ledger_key(group, topic, partition, oldest % LEDGER_SLOTS),
                )
            )
        oldest += 1
        expired += 1
    return writes, LedgerPosition(seq + 1, oldest, floor)


def read_ledger(
    group: str,
    topic: str,
    partition: int,
    position: LedgerPosition,
    entry_of: Callable[[str, str], bytes | None],
) -> list[LedgerEntry]:
    """Every entry the ring keeps, oldest first."""
    entries = []
    for number in range(max(position.oldest, position.seq - LEDGER_SLOTS), position.seq):
        stored = entry_of(LEDGER_MAP, ledger_key(group, topic, partition, number % LEDGER_SLOTS))
        if stored is not None:
            entries.append(LedgerEntry.from_json(orjson.loads(value_of(stored))))
    return entries
