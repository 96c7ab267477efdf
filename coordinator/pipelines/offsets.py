"""Where a pipeline's progress lives in the grid: one offsets record per Kafka partition.

The record ``__offsets/<group>/<topic>/<partition>`` holds the next offset to consume and
what else belongs to the partition's committed state: the ids of its dedup window's
segments (``__dedup/<group>/<topic>/<partition>/<first offset>``), the source offsets of
rejected events still in the dead-letter outbox, and how far the dead-letter topic is
known to hold them. Every batch rewrites it in the batch's transaction, conditional on
the version it last saw, so a consumer that lost the partition cannot commit again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

OFFSETS_MAP = "__offsets"
DEDUP_MAP = "__dedup"
SYSTEM_MAPS = (OFFSETS_MAP, DEDUP_MAP, "__deadletters", "__ledger")


def offsets_key(group: str, topic: str, partition: int) -> str:
    return f"{group}/{topic}/{partition}"


def dedup_segment_key(group: str, topic: str, partition: int, segment_id: int) -> str:
    return f"{group}/{topic}/{partition}/{segment_id:020d}"


@dataclass
class OffsetsRecord:
    # The next offset to consume (one past the last one the batch covered).
    offset: int
    dedup_segments: list[int] = field(default_factory=list)
    # Source offsets of rejected events whose outbox entries are still in the grid.
    outbox: list[int] = field(default_factory=list)
    # In the dead-letter topic's partition for this source partition, every record of
    # this partition before this position is accounted for (None: scan from the start).
    dead_letter_floor: int | None = None
    batch: str = ""
    owner: str = ""
    committed_ms: int = 0
    # Events of the partition applied, rejected and skipped as repeats since its first
    # batch: committed with the effects, so exact after any crash (replay progress).
    applied: int = 0
    rejected: int = 0
    duplicates: int = 0
    # Where the partition's ledger ring stands (see ledger.py).
    ledger_seq: int = 0
    ledger_oldest: int = 0
    ledger_floor: int | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "offset": self.offset,
                "dedup": self.dedup_segments,
                "outbox": self.outbox,
                "dlq_floor": self.dead_letter_floor,
                "batch": self.batch,
                "owner": self.owner,
                "committed_ms": self.committed_ms,
                "applied": self.applied,
                "rejected": self.rejected,
                "duplicates": self.duplicates,
                "ledger_seq": self.ledger_seq,
                "ledger_oldest": self.ledger_oldest,
                "ledger_floor": self.ledger_floor,
            }
        )

    @staticmethod
    def from_json(document: Any) -> OffsetsRecord:
        return OffsetsRecord(
            offset=int(document["offset"]),
            dedup_segments=[int(item) for item in document.get("dedup", [])],
            outbox=[int(item) for item in document.get("outbox", [])],
            dead_letter_floor=document.get("dlq_floor"),
            batch=str(document.get("batch", "")),
            owner=str(document.get("owner", "")),
            committed_ms=int(document.get("committed_ms", 0)),
            applied=int(document.get("applied", 0)),
            rejected=int(document.get("rejected", 0)),
            duplicates=int(document.get("duplicates", 0)),
            ledger_seq=int(document.get("ledger_seq", 0)),
            ledger_oldest=int(document.get("ledger_oldest", 0)),
            ledger_floor=document.get("ledger_floor"),
        )
