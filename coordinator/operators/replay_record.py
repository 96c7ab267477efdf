"""A replay as the target grid records it: what to replay, how far it got, how it ended.

The record lives in the system map ``__replays`` of the grid the replay writes into, next
to the replay's offsets records (``__offsets/shoal-replay.<id>/<topic>/<partition>``), so
a coordinator that restarts finds every unfinished replay and resumes it from offsets
committed with its effects. The ranges are resolved once, when the replay starts, and
kept here: a resumed replay ends where the first run would have.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from coordinator.node import Node
from coordinator.pipelines.offsets import OFFSETS_MAP, SYSTEM_MAPS, OffsetsRecord, offsets_key
from grid.entry import value_of
from grid.memory.records import Op
from grid.participant import Write

REPLAYS_MAP = "__replays"
RUNNING = "running"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"
ENDED = (DONE, CANCELLED, FAILED)


def replay_group(replay_id: str) -> str:
    """The replay's own group name: its offsets' keys and its dead-letter producers'
    transactional ids. No Kafka consumer ever joins it."""
    return f"shoal-replay.{replay_id}"


@dataclass
class ReplayRecord:
    replay_id: str
    pipeline: str
    file_name: str
    source: str
    topic: str
    kafka: str
    # Partition -> [start, end): the offsets to replay.
    ranges: dict[int, tuple[int, int]]
    rate_per_s: float
    dead_letter_topic: str
    created_ms: int
    from_ms: int = 0
    to_ms: int = 0
    state: str = RUNNING
    error: str = ""
    finished_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return replay_group(self.replay_id)

    @property
    def total(self) -> int:
        return sum(end - start for start, end in self.ranges.values())

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.replay_id,
                "pipeline": self.pipeline,
                "file_name": self.file_name,
                "source": self.source,
                "topic": self.topic,
                "kafka": self.kafka,
                "ranges": {str(p): [start, end] for p, (start, end) in self.ranges.items()},
                "rate_per_s": self.rate_per_s,
                "dead_letter_topic": self.dead_letter_topic,
                "created_ms": self.created_ms,
                "from_ms": self.from_ms,
                "to_ms": self.to_ms,
                "state": self.state,
                "error": self.error,
                "finished_ms": self.finished_ms,
            }
        )

    @staticmethod
    def from_json(document: Any) -> ReplayRecord:
        return ReplayRecord(
            replay_id=document["id"],
            pipeline=document["pipeline"],
            file_name=document["file_name"],
            source=document["source"],
            topic=document["topic"],
            kafka=document["kafka"],
            ranges={int(p): (int(r[0]), int(r[1])) for p, r in document["ranges"].items()},
            rate_per_s=float(document["rate_per_s"]),
            dead_letter_topic=document["dead_letter_topic"],
            created_ms=int(document["created_ms"]),
            from_ms=int(document.get("from_ms", 0)),
            to_ms=int(document.get("to_ms", 0)),
            state=document["state"],
            error=document.get("error", ""),
            finished_ms=int(document.get("finished_ms", 0)),
        )


class ReplayStore:
    """Reads and writes replay records and reads a replay's offsets, in one node's grid."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # The pipelines' system maps too: a grid that runs no pipeline has none.
        for name in (REPLAYS_MAP, *SYSTEM_MAPS):
            node.catalog.create_system(name, now_ms=node.clock.now_ms())

    def _entry(self, map_name: str, key: str) -> bytes | None:
        partition = self.node.partitioner.partition_of(key)
        return self.node.backend.partitions[partition].get(map_name, key)

    def save(self, record: ReplayRecord) -> None:
        write = Write(Op.PUT, REPLAYS_MAP, record.replay_id, record.to_json())
        self.node.transactions.commit(os.urandom(16), [], [write], system=True, checked=True)

    def load(self, replay_id: str) -> ReplayRecord | None:
        entry = self._entry(REPLAYS_MAP, replay_id)
        if entry is None:
            return None
        return ReplayRecord.from_json(orjson.loads(value_of(entry)))

    def all(self) -> Iterator[ReplayRecord]:
        for chunk in self.node.keyvalue.scan(REPLAYS_MAP):
            for _, entry in chunk:
                yield ReplayRecord.from_json(orjson.loads(value_of(entry)))

    def offsets(self, record: ReplayRecord, partition: int) -> OffsetsRecord | None:
        entry = self._entry(OFFSETS_MAP, offsets_key(record.group, record.topic, partition))
        if entry is None:
            return None
        return OffsetsRecord.from_json(orjson.loads(value_of(entry)))
