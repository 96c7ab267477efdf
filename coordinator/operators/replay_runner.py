"""One replay at work: a group-less consumer of a topic range, through a pipeline's applier.

The consumer is assigned its partitions by hand (no group: it never joins or commits
for a production group), seeks each to the offset the target grid holds for the replay
(or the range's start), and stops taking records at the range's end. Batches go
through the same `BatchApplier` as a live pipeline, under the replay's own group name,
so each batch commits its effects with the replay's offsets in one grid transaction,
and rejected events go through the same outbox to the replay's own dead-letter topic.
A token bucket caps the events handed to the applier per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from opentelemetry import trace

from coordinator.clock import Clock
from coordinator.node import Node
from coordinator.operators.rate import TokenBucket
from coordinator.operators.replay_record import ReplayRecord
from coordinator.pipelines.applier import BatchApplier, BatchResult
from coordinator.pipelines.batching import Batch, Batcher, Chunk, TopicPartitionKey, should_fetch
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.progress import SyncResult
from coordinator.pipelines.publisher import DeadLetterPublisher
from coordinator.pipelines.registry import Pipeline

log = logging.getLogger(__name__)

Result = TypeVar("Result")
START_BACKOFF_MAX_S = 5.0
# Time given to the dead-letter publisher to publish the last rejected events.
DEAD_LETTER_DRAIN_S = 60.0


class ReplayFailed(Exception):
    """The replay cannot go on (its pipeline stopped it); the message says why."""


class ReplayRunner:
    def __init__(
        self,
        record: ReplayRecord,
        pipeline: Pipeline,
        node: Node,
        *,
        owner: str,
        tracer: trace.Tracer,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.record = record
        burst = max(1, int(record.rate_per_s)) if record.rate_per_s > 0 else None
        batch_max = (
            pipeline.spec.batch_max if burst is None else min(pipeline.spec.batch_max, burst)
        )
        # The replay's own group and dead-letter topic; on_error "stop" stays as the
        # pipeline says, and a missing map stops the replay instead of waiting for it.
        self.spec = replace(
            pipeline.spec,
            group=record.group,
            dead_letter_topic=record.dead_letter_topic,
            batch_max=batch_max,
            start="earliest",
        )
        self.pipeline = replace(pipeline, spec=self.spec)
        self.node = node
        # Counted here only: the node's registry would keep series per replay for ever
        # (its progress is exported from the grid, see coordinator/observability).
        self.metrics = PipelineMetrics(f"replay-{record.replay_id}")
        self.applier = BatchApplier(
            self.pipeline,
            node,
            owner=owner,
            metrics=self.metrics,
            tracer=tracer,
            clock=clock,
            rng=rng,
        )
        self.worker = ThreadPoolExecutor(1, thread_name_prefix=f"replay-{record.replay_id}")
        self.batcher = Batcher(batch_max, self.spec.batch_ms)
        self.bucket = (
            TokenBucket(record.rate_per_s, now_s=time.monotonic())
            if record.rate_per_s > 0
            else None
        )
        topic = record.topic
        self.ends: dict[TopicPartitionKey, int] = {
            (topic, partition): end for partition, (_, end) in record.ranges.items()
        }
        self.starts: dict[TopicPartitionKey, int] = {
            (topic, partition): start for partition, (start, _) in record.ranges.items()
        }
        # Partitions whose every record before the end was fetched.
        self.fetched: set[TopicPartitionKey] = set()
        self.epochs: dict[TopicPartitionKey, int] = {}
        self.resyncing: set[TopicPartitionKey] = set()
        self.in_flight = 0
        self.error = ""
        self.consumer: AIOKafkaConsumer | None = None
        self.publisher: DeadLetterPublisher | None = None
        self._stopping = False
        self._failure: str | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def _call(self, function: Callable[..., Result], *args: Any) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self.worker, function, *args)

    # Life cycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Replays the whole range; returns when it is applied and its dead letters are
        published. Raises ReplayFailed when the pipeline stops it."""
        failures = 0
        while not self._stopping:
            try:
                await self._start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self.error = f"cannot reach Kafka: {type(error).__name__}: {error}"
                log.warning("replay %s: %s; retrying", self.record.replay_id, self.error)
                await asyncio.sleep(min(START_BACKOFF_MAX_S, 0.2 * 2**failures))
        self.error = ""
        await self._sync(sorted(self.ends))
        await self._consume()
        if self._failure is not None:
            raise ReplayFailed(self._failure)
        await self._drain_dead_letters()

    async def _start(self) -> None:
        record = self.record
        admin = AIOKafkaAdminClient(bootstrap_servers=record.kafka, client_id="shoal-replay")
        await admin.start()
        try:
            partitions = max(1, len(record.ranges), max(record.ranges, default=0) + 1)
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(record.dead_letter_topic, partitions, 1)])
        finally:
            await admin.close()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=record.kafka,
            group_id=None,
            client_id=f"shoal-replay-{record.replay_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.spec.batch_max,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        consumer.assign([TopicPartition(*key) for key in sorted(self.ends)])
        self.consumer = consumer
        self.publisher = DeadLetterPublisher(
            pipeline=self.spec.name,
            group=self.spec.group,
            topic=record.dead_letter_topic,
            bootstrap=record.kafka,
            client_id=f"shoal-replay-{record.replay_id}-dlq",
            confirm=self._confirm,
            metrics=self.metrics,
        )

    async def _confirm(self, key: TopicPartitionKey, offsets: list[int], floor: int | None) -> None:
        await self._call(self.applier.confirm, key, offsets, floor)

    async def stop(self) -> None:
        """Stops: the batch being committed finishes, queued ones are dropped."""
        self._stopping = True
        self.applier.abandoning = True
        self._wake.set()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.close()

    async def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.close()
        self.worker.shutdown(wait=True)

    # Positions -------------------------------------------------------------------------

    async def _sync(self, keys: list[TopicPartitionKey]) -> None:
        """Loads the grid's state of partitions and seeks them to where it says."""
        consumer = self.consumer
        assert consumer is not None
        self.resyncing.update(keys)
        self.batcher.drop(keys)
        epochs = {key: self.epochs.get(key, 0) + 1 for key in keys}
        results: list[SyncResult] = await self._call(self.applier.sync, epochs)
        for result in results:
            key = (result.topic, result.partition)
            offset = result.next_offset if result.next_offset is not None else self.starts[key]
            self.epochs[key] = epochs[key]
            tp = TopicPartition(*key)
            if offset >= self.ends[key]:
                self.fetched.add(key)
                consumer.pause(tp)
            else:
                self.fetched.discard(key)
                consumer.seek(tp, offset)
                consumer.resume(tp)
            if self.publisher is not None:
                self.publisher.reset(key, result.pending, result.dead_letter_floor)
        self.resyncing.difference_update(keys)

    # The loop --------------------------------------------------------------------------

    def _finished(self) -> bool:
        return (
            len(self.fetched) == len(self.ends)
            and not self.batcher.size
            and not self.in_flight
            and not self.resyncing
        )

    async def _consume(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        batcher = self.batcher
        max_in_flight = self.spec.max_in_flight
        while not self._stopping and self._failure is None:
            if self._finished():
                return
            now = time.monotonic()
            drained = len(self.fetched) == len(self.ends)
            if (
                batcher.ready(now) or (drained and batcher.size)
            ) and self.in_flight < max_in_flight:
                await self._submit(batcher.take())
                continue
            fetching = should_fetch(
                in_flight=self.in_flight,
                max_in_flight=max_in_flight,
                paused=drained,
                room=batcher.room,
            )
            if not fetching:
                self._wake.clear()
                timeout = batcher.wait_s(now) if batcher.size else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            try:
                fetched = await consumer.getmany(
                    timeout_ms=max(1, int(batcher.wait_s(now) * 1000)), max_records=batcher.room
                )
            except KafkaError as error:
                log.warning("replay %s: fetch failed: %s", self.record.replay_id, error)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            for tp, records in fetched.items():
                key = (tp.topic, tp.partition)
                if key in self.fetched or key in self.resyncing or key not in self.ends:
                    continue
                end = self.ends[key]
                wanted = [record for record in records if record.offset < end]
                if wanted:
                    batcher.add(Chunk(tp.topic, tp.partition, self.epochs[key], wanted), now)
                    self.metrics.count(received=len(wanted))
            await self._check_ends(consumer)

    async def _check_ends(self, consumer: AIOKafkaConsumer) -> None:
        """Marks partitions whose fetch position reached the end (transaction markers may
        stand at the last offsets of a range, so no record need carry end - 1)."""
        for key, end in self.ends.items():
            if key in self.fetched or key in self.resyncing:
                continue
            tp = TopicPartition(*key)
            position = await consumer.position(tp)
            if position >= end:
                self.fetched.add(key)
                consumer.pause(tp)

    async def _submit(self, batch: Batch) -> None:
        if self.bucket is not None:
            size = batch.size
            while True:
                wait_s = self.bucket.wait_s(size, time.monotonic())
                if wait_s <= 0 or self._stopping:
                    break
                await asyncio.sleep(wait_s)
            self.bucket.take(size, time.monotonic())
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: Batch) -> None:
        result: BatchResult | None = None
        try:
            result = await self._call(self.applier.apply, batch)
        except Exception as error:
            log.exception("replay %s: batch %d failed", self.record.replay_id, batch.batch_id)
            self._failure = f"batch {batch.batch_id} failed: {type(error).__name__}: {error}"
        finally:
            self.in_flight -= 1
            self._wake.set()
        if result is None:
            return
        if self.publisher is not None:
            for key, letters in result.dead_letters.items():
                self.publisher.publish(key, letters)
        if result.stopped is not None:
            # A missing map makes a live pipeline wait for it; a replay stops and says so.
            self._failure = result.stopped.split("; retrying")[0]
        elif result.resync and not self._stopping:
            await self._sync(sorted(result.resync))

    async def _drain_dead_letters(self) -> None:
        """Waits until every rejected event is in the replay's dead-letter topic."""
        deadline = time.monotonic() + DEAD_LETTER_DRAIN_S
        while (
            self.publisher is not None
            and self.publisher.pending()
            and time.monotonic() < deadline
            and not self._stopping
        ):
            await asyncio.sleep(0.05)
