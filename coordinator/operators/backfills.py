"""Backfills: the rows of a file through a pipeline into this coordinator's grid, once.

A backfill is the file's content hash. The client sends the rows in order; each batch
goes through the pipeline's `BatchApplier` as if the rows were records of a Kafka
partition (topic ``backfill``, partition 0, offset = row number) under the backfill's
own group, so its position commits with its effects in the grid and a re-sent row is
skipped as already applied. An interrupted backfill resumes from that position; a file
applied before is refused as a no-op, which the answer says. Rejected rows stay in the
pipeline's outbox (`__deadletters`) of the backfill, from which the summary lists them.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from coordinator.node import Node
from coordinator.operators.pipeline_code import load_pipeline
from coordinator.pipelines.applier import BatchApplier
from coordinator.pipelines.batching import Batch, Chunk
from coordinator.pipelines.deadletter import DEAD_LETTERS_MAP, DeadLetter, outbox_key
from coordinator.pipelines.host import _tracer
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.offsets import OFFSETS_MAP, SYSTEM_MAPS, OffsetsRecord, offsets_key
from grid.entry import value_of
from grid.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from grid.memory.records import Op
from grid.participant import Write

log = logging.getLogger(__name__)

BACKFILLS_MAP = "__backfills"
BACKFILL_TOPIC = "backfill"
OPEN = "open"
DONE = "done"
ROWS_PER_CALL_MAX = 10_000
SHA256_HEX_LENGTH = 64


def backfill_group(backfill_id: str) -> str:
    return f"shoal-backfill.{backfill_id}"


@dataclass
class BackfillRecord:
    backfill_id: str
    file_name: str
    sha256: str
    rows: int
    pipeline: str
    code_file: str
    source: str
    created_ms: int
    state: str = OPEN
    finished_ms: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps(vars(self))

    @staticmethod
    def from_json(document: Any) -> BackfillRecord:
        return BackfillRecord(**document)


@dataclass(frozen=True)
class Row:
    """A file row as the applier reads a Kafka record."""

    offset: int
    value: bytes
    timestamp: int
    topic: str = BACKFILL_TOPIC
    partition: int = 0
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class BackfillState:
    record: BackfillRecord
    next_row: int
    applied: int
    rejected: int
    duplicates: int
    already_done: bool = False


@dataclass
class _Open:
    applier: BatchApplier
    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: int = 0


class BackfillManager:
    def __init__(self, node: Node) -> None:
        self.node = node
        for name in (BACKFILLS_MAP, *SYSTEM_MAPS):
            node.catalog.create_system(name, now_ms=node.clock.now_ms())
        self.owner = f"{node.node_id}/{os.getpid()}/{os.urandom(4).hex()}"
        self.tracer = _tracer()
        self.rng = random.Random()
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    # Grid access -----------------------------------------------------------------------

    def _entry(self, map_name: str, key: str) -> bytes | None:
        partition = self.node.partitioner.partition_of(key)
        return self.node.backend.partitions[partition].get(map_name, key)

    def _record(self, backfill_id: str) -> BackfillRecord:
        entry = self._entry(BACKFILLS_MAP, backfill_id) if backfill_id else None
        if entry is None:
            raise NotFound(f"no backfill '{backfill_id}' in this grid", field="id")
        return BackfillRecord.from_json(orjson.loads(value_of(entry)))

    def _save(self, record: BackfillRecord) -> None:
        write = Write(Op.PUT, BACKFILLS_MAP, record.backfill_id, record.to_json())
        self.node.transactions.commit(os.urandom(16), [], [write], system=True, checked=True)

    def _offsets(self, record: BackfillRecord) -> OffsetsRecord | None:
        key = offsets_key(backfill_group(record.backfill_id), BACKFILL_TOPIC, 0)
        entry = self._entry(OFFSETS_MAP, key)
        return None if entry is None else OffsetsRecord.from_json(orjson.loads(value_of(entry)))

    def _state(self, record: BackfillRecord, *, already_done: bool = False) -> BackfillState:
        offsets = self._offsets(record)
        if offsets is None:
            return BackfillState(record, 0, 0, 0, 0, already_done)
        return BackfillState(
            record,
            offsets.offset,
            offsets.applied,
            offsets.rejected,
            offsets.duplicates,
            already_done,
        )

    # Commands --------------------------------------------------------------------------

    def begin(
        self,
        *,
        pipeline_name: str,
        code_file: str,
        source: str,
        file_name: str,
        sha256: str,
        rows: int,
    ) -> BackfillState:
        digest = sha256.lower()
        if len(digest) != SHA256_HEX_LENGTH or any(ch not in "0123456789abcdef" for ch in digest):
            raise InvalidArgument(
                "content_sha256 must be the 64 hex digits of the file's SHA-256",
                field="content_sha256",
            )
        backfill_id = digest[:32]
        # Loaded first, even for a file already done: code that does not import is the
        # operator's error to hear about, not a quiet "nothing done".
        pipeline = load_pipeline(pipeline_name, code_file, source, self.node.catalog)
        entry = self._entry(BACKFILLS_MAP, backfill_id)
        if entry is not None:
            record = BackfillRecord.from_json(orjson.loads(value_of(entry)))
            if record.state == DONE:
                return self._state(record, already_done=True)
            if record.source != source or record.pipeline != (pipeline_name or record.pipeline):
                raise FailedPrecondition(
                    f"an interrupted backfill of this file ran pipeline '{record.pipeline}' "
                    f"({record.code_file}): resume it with the same code",
                    field="pipeline",
                )
            self._applier(record)
            return self._state(record)
        record = BackfillRecord(
            backfill_id=backfill_id,
            file_name=file_name,
            sha256=digest,
            rows=rows,
            pipeline=pipeline.name,
            code_file=code_file,
            source=source,
            created_ms=self.node.clock.now_ms(),
        )
        self._save(record)
        log.info(
            "backfill %s: %s (%d rows) through %s", backfill_id, file_name, rows, pipeline.name
        )
        return self._state(record)

    def _applier(self, record: BackfillRecord) -> _Open:
        with self._lock:
            found = self._open.get(record.backfill_id)
            if found is not None:
                return found
            pipeline = load_pipeline(
                record.pipeline, record.code_file, record.source, self.node.catalog
            )
            spec = replace(
                pipeline.spec,
                group=backfill_group(record.backfill_id),
                dead_letter_topic=f"shoal-backfill.{record.backfill_id}.dlq",
            )
            applier = BatchApplier(
                replace(pipeline, spec=spec),
                self.node,
                owner=self.owner,
                metrics=PipelineMetrics(f"backfill-{record.backfill_id}"),
                tracer=self.tracer,
                clock=self.node.clock,
                rng=self.rng,
            )
            applier.sync({(BACKFILL_TOPIC, 0): 1})
            found = self._open[record.backfill_id] = _Open(applier)
            return found

    def apply(self, backfill_id: str, first_row: int, rows: Sequence[bytes]) -> BackfillState:
        record = self._record(backfill_id)
        if record.state == DONE:
            return self._state(record, already_done=True)
        if len(rows) > ROWS_PER_CALL_MAX:
            raise ResourceExhausted(
                f"{len(rows)} rows in one call exceed the limit of {ROWS_PER_CALL_MAX}",
                field="rows",
            )
        if first_row + len(rows) > record.rows:
            raise InvalidArgument(
                f"rows up to {first_row + len(rows)} exceed the file's {record.rows}",
                field="rows",
            )
        opened = self._applier(record)
        with opened.lock:
            applier = opened.applier
            state = applier.states.get((BACKFILL_TOPIC, 0))
            if state is None or applier.stopped:
                applier.sync({(BACKFILL_TOPIC, 0): 1})
                state = applier.states[(BACKFILL_TOPIC, 0)]
            next_row = state.next_offset or 0
            if first_row > next_row:
                raise FailedPrecondition(
                    f"the backfill is at row {next_row}; rows from {first_row} come later",
                    field="first_row",
                )
            now_ms = self.node.clock.now_ms()
            records = [
                Row(first_row + index, bytes(value), now_ms) for index, value in enumerate(rows)
            ]
            opened.batches += 1
            result = applier.apply(
                Batch(opened.batches, [Chunk(BACKFILL_TOPIC, 0, state.epoch, list(records))])
            )
            if result.stopped is not None:
                raise FailedPrecondition(
                    f"the pipeline stopped the backfill: {result.stopped}", field="pipeline"
                )
            if result.resync:
                # Another coordinator committed for this backfill meanwhile.
                applier.sync({(BACKFILL_TOPIC, 0): state.epoch + 1})
                raise Conflict("the backfill moved on elsewhere: begin again")
        return self._state(record)

    def finish(self, backfill_id: str) -> tuple[BackfillState, list[DeadLetter]]:
        record = self._record(backfill_id)
        state = self._state(record)
        if record.state != DONE:
            if state.next_row < record.rows:
                raise FailedPrecondition(
                    f"rows {state.next_row} to {record.rows} are not applied yet",
                    field="id",
                )
            record.state = DONE
            record.finished_ms = self.node.clock.now_ms()
            self._save(record)
            with self._lock:
                self._open.pop(backfill_id, None)
            log.info(
                "backfill %s done: %d applied, %d rejected, %d duplicates",
                backfill_id,
                state.applied,
                state.rejected,
                state.duplicates,
            )
        offsets = self._offsets(record)
        letters = []
        group = backfill_group(record.backfill_id)
        for row in offsets.outbox if offsets is not None else []:
            stored = self._entry(DEAD_LETTERS_MAP, outbox_key(group, BACKFILL_TOPIC, 0, row))
            if stored is not None:
                letters.append(DeadLetter.from_json(orjson.loads(value_of(stored))))
        return self._state(record, already_done=state.already_done), letters
