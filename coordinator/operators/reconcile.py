"""Reconciliation of a pipeline against Kafka, and re-delivery of what it never applied.

For a time window, per Kafka partition: the offsets Kafka holds in the window (read from
the log, so transaction markers and compacted offsets do not count), and for each the
outcome the pipeline's ledger recorded (`coordinator/pipelines/ledger.py`): applied,
rejected, skipped as a duplicate, none (missing), or applied by two batches (applied
twice). Offsets the pipeline has not reached yet are pending (lag, not loss); offsets
below the ledger's floor are past its retention and cannot be checked.

Re-delivery applies each missing range through the pipeline's code once: a range is
applied under a group of its own (``<group>.redelivery.<partition>.<start>``), whose
offsets and ledger commit with the effects like any batch's, so a second re-delivery of
the same range finds it applied and does nothing; repeats are looked for in the live
pipeline's dedup window as well as among the re-delivered events; its rejected events go
to the pipeline's dead-letter topic through the same outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from coordinator.node import Node
from coordinator.operators.ranges import check_window, topic_partitions
from coordinator.pipelines.applier import BatchApplier
from coordinator.pipelines.batching import Batch, Chunk
from coordinator.pipelines.host import PipelineHost, _tracer
from coordinator.pipelines.ledger import (
    APPLIED,
    DUPLICATE,
    REJECTED,
    LedgerPosition,
    read_ledger,
)
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.offsets import (
    DEDUP_MAP,
    OFFSETS_MAP,
    OffsetsRecord,
    dedup_segment_key,
    offsets_key,
)
from coordinator.pipelines.publisher import DeadLetterPublisher
from coordinator.pipelines.registry import Pipeline
from grid.entry import value_of
from grid.errors import FailedPrecondition, NotFound, Unavailable

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 120.0
REDELIVERY_BATCH_MAX = 1000
DEAD_LETTER_DRAIN_S = 60.0


@dataclass
class PartitionReport:
    topic: str
    partition: int
    start_offset: int
    end_offset: int
    kafka_events: int = 0
    applied: int = 0
    rejected: int = 0
    duplicates: int = 0
    missing: list[tuple[int, int]] = field(default_factory=list)
    applied_twice: list[tuple[int, int]] = field(default_factory=list)
    pending: int = 0
    bookkeeping_floor: int = 0
    unverifiable: int = 0
    redelivered: int = 0
    # Events (not offsets: a range may span transaction markers) missing, applied twice.
    missing_events: int = 0
    twice_events: int = 0

    @property
    def discrepancies(self) -> int:
        return self.missing_events + self.twice_events


@dataclass
class ReconcileReport:
    pipeline: str
    from_ms: int
    to_ms: int
    partitions: list[PartitionReport]

    @property
    def discrepancies(self) -> int:
        return sum(item.discrepancies for item in self.partitions)


def redelivery_group(group: str, partition: int, start: int) -> str:
    return f"{group}.redelivery.{partition}.{start}"


class Reconciler:
    def __init__(self, node: Node, pipelines: PipelineHost | None, kafka: str) -> None:
        self.node = node
        self.pipelines = pipelines
        self.kafka = kafka

    def _entry(self, map_name: str, key: str) -> bytes | None:
        partition = self.node.partitioner.partition_of(key)
        return self.node.backend.partitions[partition].get(map_name, key)

    def _offsets(self, group: str, topic: str, partition: int) -> OffsetsRecord | None:
        entry = self._entry(OFFSETS_MAP, offsets_key(group, topic, partition))
        return None if entry is None else OffsetsRecord.from_json(orjson.loads(value_of(entry)))

    def _pipeline(self, name: str) -> Pipeline:
        if self.pipelines is None:
            raise NotFound(
                f"no pipeline named '{name}' (this coordinator runs no pipelines)",
                field="pipeline",
            )
        try:
            return self.pipelines.registry.get(name)
        except NotFound:
            raise NotFound(f"no pipeline named '{name}'", field="pipeline") from None

    def reconcile(
        self, pipeline_name: str, from_ms: int, to_ms: int, *, redeliver: bool
    ) -> ReconcileReport:
        pipeline = self._pipeline(pipeline_name)
        check_window(from_ms, to_ms)
        if not self.kafka:
            raise FailedPrecondition("this coordinator has no Kafka (--kafka)", field="kafka")
        return asyncio.run(self._reconcile(pipeline, from_ms, to_ms, redeliver))

    async def _reconcile(
        self, pipeline: Pipeline, from_ms: int, to_ms: int, redeliver: bool
    ) -> ReconcileReport:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id="shoal-reconcile",
        )
        try:
            await asyncio.wait_for(consumer.start(), 20)
        except Exception as error:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise Unavailable(f"cannot reach Kafka at {self.kafka}: {error}") from None
        reports: list[PartitionReport] = []
        try:
            for topic in pipeline.spec.topics:
                for partition in await topic_partitions(self.kafka, topic):
                    report = await self._partition(
                        consumer, pipeline, topic, partition, from_ms, to_ms
                    )
                    if redeliver and report.missing:
                        redelivered = await self._redeliver(consumer, pipeline, report)
                        report = await self._partition(
                            consumer, pipeline, topic, partition, from_ms, to_ms
                        )
                        report.redelivered = redelivered
                    reports.append(report)
        finally:
            await consumer.stop()
        return ReconcileReport(pipeline.name, from_ms, to_ms, reports)

    async def _window(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, from_ms: int, to_ms: int
    ) -> tuple[int, int]:
        ends = await consumer.end_offsets([tp])
        found = await consumer.offsets_for_times({tp: from_ms})
        stops = await consumer.offsets_for_times({tp: to_ms})
        start = ends[tp] if found.get(tp) is None else found[tp].offset
        stop = ends[tp] if stops.get(tp) is None else stops[tp].offset
        return start, max(start, stop)

    async def _records(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
    ) -> AsyncIterator[list[Any]]:
        """The committed records of [start, end), in fetches."""
        if end <= start:
            return
        consumer.assign([tp])
        consumer.seek(tp, start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_TIMEOUT_S
        while await consumer.position(tp) < end:
            if loop.time() > deadline:
                raise Unavailable(f"reading {tp.topic}/{tp.partition} from Kafka timed out")
            fetched = await consumer.getmany(tp, timeout_ms=500)
            records = [record for record in fetched.get(tp, []) if start <= record.offset < end]
            if records:
                yield records

    async def _partition(
        self,
        consumer: AIOKafkaConsumer,
        pipeline: Pipeline,
        topic: str,
        partition: int,
        from_ms: int,
        to_ms: int,
    ) -> PartitionReport:
        tp = TopicPartition(topic, partition)
        start, end = await self._window(consumer, tp, from_ms, to_ms)
        report = PartitionReport(topic, partition, start, end)
        held: list[int] = []
        async for records in self._records(consumer, tp, start, end):
            held.extend(record.offset for record in records)
        report.kafka_events = len(held)
        group = pipeline.spec.group
        record = self._offsets(group, topic, partition)
        committed = record.offset if record is not None else 0
        floor = (
            record.ledger_floor
            if record is not None and record.ledger_floor is not None
            else committed
        )
        report.bookkeeping_floor = floor
        codes: dict[int, list[str]] = {}
        groups = [(group, record)]
        groups.extend(self._redeliveries(group, topic, partition))
        for ledger_group, offsets_record in groups:
            if offsets_record is None:
                continue
            position = LedgerPosition(
                offsets_record.ledger_seq, offsets_record.ledger_oldest, offsets_record.ledger_floor
            )
            for entry in read_ledger(ledger_group, topic, partition, position, self._entry):
                if entry.next <= start or entry.first >= end:
                    continue
                for offset, code in entry.codes():
                    if start <= offset < end and code in (APPLIED, REJECTED, DUPLICATE):
                        codes.setdefault(offset, []).append(code)
        classify(report, held, codes, committed=committed, floor=floor)
        return report

    def _live_window(self, pipeline: Pipeline, topic: str, partition: int) -> frozenset[str]:
        group = pipeline.spec.group
        record = self._offsets(group, topic, partition)
        keys: set[str] = set()
        for segment_id in record.dedup_segments if record is not None else []:
            stored = self._entry(DEDUP_MAP, dedup_segment_key(group, topic, partition, segment_id))
            if stored is not None:
                keys.update(orjson.loads(value_of(stored)))
        return frozenset(keys)

    def _redeliveries(
        self, group: str, topic: str, partition: int
    ) -> list[tuple[str, OffsetsRecord | None]]:
        prefix = f"{group}.redelivery.{partition}."
        found: list[tuple[str, OffsetsRecord | None]] = []
        for chunk in self.node.keyvalue.scan(OFFSETS_MAP, prefix=prefix):
            for key, entry in chunk:
                owner, key_topic, key_partition = key.rsplit("/", 2)
                if key_topic == topic and int(key_partition) == partition:
                    found.append((owner, OffsetsRecord.from_json(orjson.loads(value_of(entry)))))
        return found

    async def _redeliver(
        self, consumer: AIOKafkaConsumer, pipeline: Pipeline, report: PartitionReport
    ) -> int:
        """Applies the report's missing ranges; returns how many events it ran."""
        topic, partition = report.topic, report.partition
        redelivered = 0
        key = (topic, partition)
        for start, end in report.missing:
            group = redelivery_group(pipeline.spec.group, partition, start)
            spec = replace(pipeline.spec, group=group)
            metrics = PipelineMetrics(f"{pipeline.name}-redelivery", self.node.metrics)
            applier = BatchApplier(
                replace(pipeline, spec=spec),
                self.node,
                owner=f"reconcile/{group}",
                metrics=metrics,
                tracer=_tracer(),
                clock=self.node.clock,
                rng=random.Random(),
            )
            applier.sync({key: 1})
            # Repeats are looked for in the live pipeline's window too: an event of the
            # lost range whose repeat the live pipeline applied is a duplicate now.
            applier.states[key].dedup.also = self._live_window(pipeline, topic, partition)
            publisher = DeadLetterPublisher(
                pipeline=pipeline.name,
                group=group,
                topic=spec.dead_letter_topic,
                bootstrap=self.kafka,
                client_id=f"shoal-reconcile-{pipeline.name}-dlq",
                confirm=_no_confirm,
                metrics=metrics,
            )
            state = applier.states[key]
            publisher.reset(key, [], state.dead_letter_floor)
            try:
                batch_id = 0
                async for records in self._records(consumer, TopicPartition(*key), start, end):
                    for first in range(0, len(records), REDELIVERY_BATCH_MAX):
                        batch_id += 1
                        chunk = records[first : first + REDELIVERY_BATCH_MAX]
                        result = await asyncio.get_running_loop().run_in_executor(
                            None,
                            applier.apply,
                            Batch(batch_id, [Chunk(topic, partition, 1, chunk)]),
                        )
                        if result.stopped is not None:
                            raise FailedPrecondition(
                                f"re-delivery of {topic}/{partition} {start}-{end} stopped: "
                                f"{result.stopped}",
                                field="pipeline",
                            )
                        redelivered += result.applied + result.rejected + result.duplicates
                        for letters in result.dead_letters.values():
                            publisher.publish(key, letters)
                deadline = asyncio.get_running_loop().time() + DEAD_LETTER_DRAIN_S
                while publisher.pending() and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                await publisher.close()
            log.info(
                "pipeline %s: re-delivered %s/%d offsets %d-%d",
                pipeline.name,
                topic,
                partition,
                start,
                end,
            )
        return redelivered


async def _no_confirm(key: Any, offsets: list[int], floor: int | None) -> None:
    """Re-delivery commits nothing after its batches: the outbox entries stay, listed."""


def classify(
    report: PartitionReport,
    held: list[int],
    codes: dict[int, list[str]],
    *,
    committed: int,
    floor: int,
) -> None:
    """Counts each offset Kafka holds by what the ledgers say of it, into `report`: at or
    past `committed` it is pending; without an outcome it is missing, or unverifiable
    below `floor`; applied by two entries it was applied twice."""
    missing: list[int] = []
    twice: list[int] = []
    for offset in held:
        if offset >= committed:
            report.pending += 1
            continue
        found = codes.get(offset)
        if not found:
            if offset < floor:
                report.unverifiable += 1
            else:
                missing.append(offset)
            continue
        applied = found.count(APPLIED)
        if applied >= 2:
            twice.append(offset)
        if applied:
            report.applied += 1
        elif REJECTED in found:
            report.rejected += 1
        else:
            report.duplicates += 1
    report.missing = _merge(missing, held)
    report.applied_twice = _merge(twice, held)
    report.missing_events = len(missing)
    report.twice_events = len(twice)


def _merge(offsets: list[int], held: list[int]) -> list[tuple[int, int]]:
    """Ranges of `offsets` that are consecutive among the offsets Kafka holds."""
    if not offsets:
        return []
    index_of = {offset: index for index, offset in enumerate(held)}
    ranges: list[tuple[int, int]] = []
    previous = -2
    for offset in offsets:
        index = index_of[offset]
        if ranges and index == previous + 1:
            ranges[-1] = (ranges[-1][0], offset + 1)
        else:
            ranges.append((offset, offset + 1))
        previous = index
    return ranges
