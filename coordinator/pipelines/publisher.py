"""Publishes rejected events from the grid's outbox to the dead-letter topic, exactly once.

Rejected events reach the dead-letter topic only after their batch committed them to the
outbox (``__deadletters``), so a batch that never commits never dead-letters anything.
Each source partition has one lane: a Kafka transactional producer whose transactional
id names the pipeline and the source partition, so a newer owner of the partition fences
an older one (whose open Kafka transaction is then aborted). Whenever a lane is unsure
what reached Kafka (a fresh producer, a failed send or commit) it first scans the
dead-letter partition with ``read_committed`` from the recorded floor and takes the
outbox entries it finds there as published. Only then does it publish the rest in one
Kafka transaction, and tell the applier, whose next commit deletes the entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from coordinator.pipelines.batching import TopicPartitionKey
from coordinator.pipelines.deadletter import HEADER_SOURCE, DeadLetter
from coordinator.pipelines.metrics import PipelineMetrics

log = logging.getLogger(__name__)

Confirm = Callable[[TopicPartitionKey, list[int], int | None], Awaitable[None]]
SCAN_TIMEOUT_S = 60.0
RETRY_BACKOFF_MAX_S = 5.0
PUBLISH_CHUNK = 1000
CLOSE_WAIT_S = 5.0


@dataclass
class _Lane:
    key: TopicPartitionKey
    floor: int | None = None
    queued: dict[int, DeadLetter] = field(default_factory=dict)
    needs_scan: bool = True
    producer: AIOKafkaProducer | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    closing: bool = False


class DeadLetterPublisher:
    """The dead-letter lanes of one pipeline (one per owned source partition)."""

    def __init__(
        self,
        *,
        pipeline: str,
        group: str,
        topic: str,
        bootstrap: str,
        client_id: str,
        confirm: Confirm,
        metrics: PipelineMetrics,
    ) -> None:
        self.pipeline = pipeline
        self.group = group
        self.topic = topic
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._confirm = confirm
        self._metrics = metrics
        self._lanes: dict[TopicPartitionKey, _Lane] = {}
        self._partitions: int | None = None

    def pending(self) -> int:
        return sum(len(lane.queued) for lane in self._lanes.values())

    def reset(self, key: TopicPartitionKey, pending: list[DeadLetter], floor: int | None) -> None:
        """After a sync: the outbox entries the grid holds for a partition, unconfirmed."""
        lane = self._lane(key)
        lane.queued = {letter.offset: letter for letter in pending}
        lane.floor = floor
        lane.needs_scan = True
        if lane.queued:
            lane.wake.set()

    def publish(self, key: TopicPartitionKey, letters: list[DeadLetter]) -> None:
        """Queues dead letters their batch just committed to the outbox."""
        lane = self._lane(key)
        for letter in letters:
            lane.queued[letter.offset] = letter
        lane.wake.set()

    async def drop(self, keys: list[TopicPartitionKey]) -> None:
        """Stops the lanes of revoked partitions (their new owner publishes the rest)."""
        lanes = [lane for key in keys if (lane := self._lanes.pop(key, None)) is not None]
        await asyncio.gather(*(self._close_lane(lane) for lane in lanes))

    async def close(self) -> None:
        lanes = list(self._lanes.values())
        self._lanes.clear()
        await asyncio.gather(*(self._close_lane(lane) for lane in lanes))

    # Lanes -------------------------------------------------------------------------

    def _lane(self, key: TopicPartitionKey) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key)
            lane.task = asyncio.get_running_loop().create_task(
                self._run(lane), name=f"dead-letters-{self.pipeline}-{key[0]}-{key[1]}"
            )
        return lane

    async def _close_lane(self, lane: _Lane) -> None:
        lane.closing = True
        lane.wake.set()
        task = lane.task
        if task is not None:
            # A publish in progress may finish (its clients close cleanly); one stuck
            # retrying against an unreachable broker is cancelled.
            try:
                await asyncio.wait_for(asyncio.shield(task), CLOSE_WAIT_S)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._stop_producer(lane)

    async def _stop_producer(self, lane: _Lane) -> None:
        producer, lane.producer = lane.producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception:  # a producer that failed may fail to stop too
                log.debug("stopping a dead-letter producer failed", exc_info=True)

    async def _run(self, lane: _Lane) -> None:
        failures = 0
        while not lane.closing:
            await lane.wake.wait()
            lane.wake.clear()
            while lane.queued and not lane.closing:
                try:
                    await self._publish_some(lane)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    failures += 1
                    log.warning(
                        "pipeline %s: publishing dead letters of %s/%d failed (%s: %s); retrying",
                        self.pipeline,
                        lane.key[0],
                        lane.key[1],
                        type(error).__name__,
                        error,
                    )
                    await self._stop_producer(lane)
                    lane.needs_scan = True
                    if not lane.closing:
                        await asyncio.sleep(min(RETRY_BACKOFF_MAX_S, 0.1 * 2**failures))

    async def _dead_letter_partition(self, producer: AIOKafkaProducer, source: int) -> int:
        if self._partitions is None:
            partitions = await producer.partitions_for(self.topic)
            if not partitions:
                raise KafkaError(f"dead-letter topic {self.topic} has no partitions")
            self._partitions = len(partitions)
        return source % self._partitions

    async def _publish_some(self, lane: _Lane) -> None:
        topic, partition = lane.key
        if lane.producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                transactional_id=f"shoal-dlq.{self.group}.{topic}.{partition}",
                enable_idempotence=True,
                request_timeout_ms=30_000,
            )
            try:
                # Starting fences every older producer of this id and aborts its open
                # transaction, so what the scan below sees is final.
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            lane.producer = producer
            lane.needs_scan = True
        producer = lane.producer
        target = await self._dead_letter_partition(producer, partition)
        if lane.needs_scan:
            found, floor = await self._scan(lane, target)
            if found:
                log.info(
                    "pipeline %s: %d dead letters of %s/%d were published before; not again",
                    self.pipeline,
                    len(found),
                    topic,
                    partition,
                )
                for offset in found:
                    lane.queued.pop(offset, None)
                await self._confirm(lane.key, sorted(found), floor)
            lane.needs_scan = False
            if not lane.queued:
                return
        letters = [lane.queued[offset] for offset in sorted(lane.queued)[:PUBLISH_CHUNK]]
        futures = []
        async with producer.transaction():
            for letter in letters:
                futures.append(
                    await producer.send(
                        self.topic,
                        value=letter.value,
                        key=letter.key,
                        headers=letter.kafka_headers(),
                        partition=target,
                        timestamp_ms=letter.timestamp_ms,
                    )
                )
        positions = [(await future).offset for future in futures]
        for letter in letters:
            lane.queued.pop(letter.offset, None)
        lane.floor = max(positions) + 1
        self._metrics.count(dead_letters_published=len(letters))
        await self._confirm(lane.key, [letter.offset for letter in letters], lane.floor)

    async def _scan(self, lane: _Lane, target: int) -> tuple[set[int], int | None]:
        """Outbox entries of the lane already in the dead-letter topic, and the position
        after the last record read."""
        topic, partition = lane.key
        prefix = f"{topic}/{partition}/".encode()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-scan",
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        found: set[int] = set()
        position: int | None = None
        try:
            await consumer.start()
            assigned = TopicPartition(self.topic, target)
            consumer.assign([assigned])
            end = (await consumer.end_offsets([assigned]))[assigned]
            if lane.floor is None:
                start = (await consumer.beginning_offsets([assigned]))[assigned]
            else:
                start = lane.floor
            consumer.seek(assigned, start)
            deadline = asyncio.get_running_loop().time() + SCAN_TIMEOUT_S
            while start < end and await consumer.position(assigned) < end:
                if asyncio.get_running_loop().time() > deadline:
                    raise KafkaError(f"scanning {self.topic}/{target} timed out")
                fetched = await consumer.getmany(assigned, timeout_ms=500)
                for record in fetched.get(assigned, []):
                    position = record.offset + 1
                    for name, value in record.headers:
                        if name == HEADER_SOURCE and value.startswith(prefix):
                            offset = int(value[len(prefix) :])
                            if offset in lane.queued:
                                found.add(offset)
        finally:
            await consumer.stop()
        return found, position
