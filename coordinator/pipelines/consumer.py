"""The consumer loop of one pipeline: aiokafka on the pipelines' event loop thread.

The loop fetches records, closes micro-batches by count and time, and hands them to the
pipeline's worker thread (the `BatchApplier`), which commits them one after another. It
carries out flow control (fetching pauses while `max_in_flight` batches wait for the
grid), rebalances (on assignment every partition seeks to the offset the grid holds; on
revocation the worker finishes or drops the partition's batches before the partition is
given up), pause and resume, and shutdown (the batch being committed finishes, queued
ones are abandoned: each is one transaction, so either way atomically).

Every partition has an epoch, bumped when the loop seeks it; records carry the epoch of
their fetch and the worker applies only those of the epoch it synced, so records fetched
before a seek can never be applied after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from opentelemetry import trace

from coordinator.clock import Clock
from coordinator.node import Node
from coordinator.pipelines.applier import BatchApplier, BatchResult
from coordinator.pipelines.batching import (
    Batch,
    Batcher,
    Chunk,
    TopicPartitionKey,
    fair_shares,
    should_fetch,
)
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.offsets import OFFSETS_MAP, OffsetsRecord, offsets_key
from coordinator.pipelines.progress import SyncResult
from coordinator.pipelines.publisher import DeadLetterPublisher
from coordinator.pipelines.registry import Pipeline
from grid.entry import value_of

log = logging.getLogger(__name__)

Result = TypeVar("Result")
RUNNING = "running"
PAUSED = "paused"
STARTING = "starting"
FAILED = "failed"
STOPPED = "stopped"
START_BACKOFF_MAX_S = 5.0
KAFKA_COMMIT_INTERVAL_S = 1.0
KAFKA_COMMIT_TIMEOUT_S = 5.0
LAG_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    session_timeout_ms: int = 10_000
    client_id: str = "shoal"


@dataclass(frozen=True)
class PartitionLag:
    pipeline: str
    topic: str
    partition: int
    # The next offset the grid records as applied (0 when nothing was committed).
    committed_offset: int
    end_offset: int
    assigned_here: bool

    @property
    def lag(self) -> int:
        return max(0, self.end_offset - self.committed_offset)


@dataclass(frozen=True)
class PipelineStatus:
    pipeline: Pipeline
    state: str
    error: str
    assigned: tuple[TopicPartitionKey, ...]
    counters: dict[str, int]
    latency_p50_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    in_flight: int
    dead_letters_pending: int


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: PipelineRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.runner.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.runner.assigned(list(assigned))


class PipelineRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        node: Node,
        kafka: KafkaSettings,
        *,
        owner: str,
        tracer: trace.Tracer,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.pipeline = pipeline
        self.spec = pipeline.spec
        self.node = node
        self.kafka = kafka
        self.metrics = PipelineMetrics(pipeline.name, node.metrics)
        self.applier = BatchApplier(
            pipeline, node, owner=owner, metrics=self.metrics, tracer=tracer, clock=clock, rng=rng
        )
        self.worker = ThreadPoolExecutor(1, thread_name_prefix=f"pipeline-{pipeline.name}")
        self.batcher = Batcher(self.spec.batch_max, self.spec.batch_ms)
        self.state = STARTING
        self.error = ""
        self.paused = False
        self.in_flight = 0
        self.epochs: dict[TopicPartitionKey, int] = {}
        self.owned: set[TopicPartitionKey] = set()
        self.resyncing: set[TopicPartitionKey] = set()
        self.committed: dict[TopicPartitionKey, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.publisher: DeadLetterPublisher | None = None
        self._fetch_paused = False
        # Which partition takes the first share of the next fetch (see _fetch_fairly).
        self._fetch_turn = 0
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._kafka_committed_at = 0.0
        self._kafka_commit: asyncio.Task[None] | None = None

    # Worker ------------------------------------------------------------------------

    async def _call(self, function: Callable[..., Result], *args: Any) -> Result:
        """Runs an applier method on the worker thread, after the work queued before it."""
        return await asyncio.get_running_loop().run_in_executor(self.worker, function, *args)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # Life cycle --------------------------------------------------------------------

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._main = asyncio.get_running_loop().create_task(
            self._run(), name=f"pipeline-{self.pipeline.name}"
        )

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._start_consumer()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self.error = f"cannot start the consumer: {type(error).__name__}: {error}"
                log.warning("pipeline %s: %s; retrying", self.pipeline.name, self.error)
                await asyncio.sleep(min(START_BACKOFF_MAX_S, 0.2 * 2**failures))
        if self._stopping:
            return
        self.error = ""
        self.state = PAUSED if self.paused else RUNNING
        log.info(
            "pipeline %s consuming %s as group %s (%s, batches of %d or %d ms)",
            self.pipeline.name,
            ",".join(self.spec.topics),
            self.spec.group,
            self.spec.mode,
            self.spec.batch_max,
            self.spec.batch_ms,
        )
        await self._consume()

    async def _ensure_dead_letter_topic(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.kafka.bootstrap, client_id=self.kafka.client_id
        )
        await admin.start()
        try:
            partitions = 1
            described = await admin.describe_topics(list(self.spec.topics))
            for topic in described:
                partitions = max(partitions, len(topic.get("partitions", [])))
            brokers = len((await admin.describe_cluster()).get("brokers", [])) or 1
            try:
                await admin.create_topics(
                    [NewTopic(self.spec.dead_letter_topic, partitions, min(3, brokers))]
                )
            except TopicAlreadyExistsError:
                pass
        finally:
            await admin.close()

    async def _start_consumer(self) -> None:
        await self._ensure_dead_letter_topic()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap,
            group_id=self.spec.group,
            client_id=f"{self.kafka.client_id}-{self.pipeline.name}",
            enable_auto_commit=False,
            auto_offset_reset=self.spec.start,
            isolation_level="read_committed",
            max_poll_records=self.spec.batch_max,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.kafka.session_timeout_ms // 3),
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        consumer.subscribe(topics=list(self.spec.topics), listener=_Listener(self))
        self.publisher = DeadLetterPublisher(
            pipeline=self.pipeline.name,
            group=self.spec.group,
            topic=self.spec.dead_letter_topic,
            bootstrap=self.kafka.bootstrap,
            client_id=f"{self.kafka.client_id}-{self.pipeline.name}-dlq",
            confirm=self._confirm,
            metrics=self.metrics,
        )
        # Set before starting: the first assignment may arrive while start() runs, and it
        # must seek to the grid's offsets.
        self.consumer = consumer
        try:
            await consumer.start()
        except BaseException:
            self.consumer = None
            await consumer.stop()
            await self.publisher.close()
            raise

    async def _confirm(self, key: TopicPartitionKey, offsets: list[int], floor: int | None) -> None:
        await self._call(self.applier.confirm, key, offsets, floor)

    async def stop(self) -> None:
        """Stops consuming: the batch being committed finishes, queued ones are dropped."""
        self._stopping = True
        self.applier.abandoning = True
        self._poke()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await self._commit_to_kafka(consumer, force=True)
            try:
                await consumer.stop()
            except Exception:
                log.warning("pipeline %s: stopping the consumer failed", self.pipeline.name)
        if self.publisher is not None:
            await self.publisher.close()
        self.worker.shutdown(wait=True)
        self.state = STOPPED

    # Rebalances --------------------------------------------------------------------

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self.owned.difference_update(keys)
        self.batcher.drop(keys)
        # Queued after every batch handed over so far: once it returns, nothing of these
        # partitions commits here any more.
        await self._call(self.applier.forget, keys)
        if self.publisher is not None:
            await self.publisher.drop(keys)
        if self.consumer is not None:
            await self._commit_to_kafka(self.consumer, force=True)
        for key in keys:
            self.committed.pop(key, None)
        log.info("pipeline %s: revoked %s", self.pipeline.name, _show(keys))

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self.owned.update(keys)
        await self._resync(keys)
        log.info("pipeline %s: assigned %s", self.pipeline.name, _show(keys))

    async def _resync(self, keys: list[TopicPartitionKey]) -> None:
        """Loads the grid's state of partitions and seeks them to the grid's offsets."""
        keys = [key for key in keys if key in self.owned]
        if not keys or self.consumer is None:
            return
        self.resyncing.update(keys)
        self.batcher.drop(keys)
        failures = 0
        try:
            while not self._stopping:
                try:
                    await self._sync_and_seek(keys)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    # Until it succeeds the partitions take no records: they must not be
                    # consumed from anywhere but the grid's offsets.
                    failures += 1
                    log.warning(
                        "pipeline %s: syncing %s failed (%s: %s); retrying",
                        self.pipeline.name,
                        _show(keys),
                        type(error).__name__,
                        error,
                    )
                    await asyncio.sleep(min(START_BACKOFF_MAX_S, 0.1 * 2**failures))
        finally:
            self.resyncing.difference_update(keys)

    async def _sync_and_seek(self, keys: list[TopicPartitionKey]) -> None:
        consumer = self.consumer
        assert consumer is not None
        epochs = {key: self.epochs.get(key, 0) + 1 for key in keys}
        results: list[SyncResult] = await self._call(self.applier.sync, epochs)
        targets: dict[TopicPartitionKey, int] = {}
        unknown = [
            TopicPartition(result.topic, result.partition)
            for result in results
            if result.next_offset is None
        ]
        if unknown:
            if self.spec.start == "earliest":
                found = await consumer.beginning_offsets(unknown)
            else:
                found = await consumer.end_offsets(unknown)
            targets.update({(tp.topic, tp.partition): offset for tp, offset in found.items()})
        # From here to the end nothing awaits: the seek and the new epoch go together.
        for result in results:
            key = (result.topic, result.partition)
            if key not in self.owned:
                continue
            offset = result.next_offset if result.next_offset is not None else targets[key]
            self.epochs[key] = epochs[key]
            consumer.seek(TopicPartition(*key), offset)
            if self._fetch_paused:
                consumer.pause(TopicPartition(*key))
            if result.next_offset is not None:
                self.committed[key] = result.next_offset
            if self.publisher is not None:
                self.publisher.reset(key, result.pending, result.dead_letter_floor)

    # The loop ----------------------------------------------------------------------

    def _set_fetching(self, fetching: bool) -> None:
        consumer = self.consumer
        if consumer is None or fetching != self._fetch_paused:
            return
        partitions = list(consumer.assignment())
        if fetching:
            consumer.resume(*partitions)
        else:
            consumer.pause(*partitions)
        self._fetch_paused = not fetching

    async def _consume(self) -> None:
        consumer = self.consumer
        assert consumer is not None and self._wake is not None
        batcher = self.batcher
        max_in_flight = self.spec.max_in_flight
        while not self._stopping:
            now = time.monotonic()
            blocked = self.paused or self.state == FAILED
            if batcher.ready(now) and self.in_flight < max_in_flight and not blocked:
                self._submit(batcher.take())
                continue
            fetching = should_fetch(
                in_flight=self.in_flight,
                max_in_flight=max_in_flight,
                paused=blocked,
                room=batcher.room,
            )
            self._set_fetching(fetching)
            if not fetching:
                self._wake.clear()
                timeout = batcher.wait_s(now) if batcher.size and not blocked else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            try:
                fetched = await self._fetch_fairly(
                    consumer, max(1, int(batcher.wait_s(now) * 1000)), batcher.room
                )
            except KafkaError as error:
                log.warning("pipeline %s: fetch failed: %s", self.pipeline.name, error)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            received = 0
            for tp, records in fetched.items():
                key = (tp.topic, tp.partition)
                if key not in self.owned or key in self.resyncing or not records:
                    continue
                received += len(records)
                batcher.add(Chunk(tp.topic, tp.partition, self.epochs.get(key, 0), records), now)
            if received:
                self.metrics.count(received=received)
            await self._housekeeping(consumer)

    async def _fetch_fairly(
        self, consumer: AIOKafkaConsumer, timeout_ms: int, room: int
    ) -> dict[TopicPartition, list[Any]]:
        """Records for the open batch, each partition taking its share of the room (see
        `fair_shares`); waits up to `timeout_ms` only when none is buffered."""
        partitions = sorted(consumer.assignment())
        self._fetch_turn += 1
        fetched: dict[TopicPartition, list[Any]] = {}
        for tp, share in fair_shares(room, partitions, self._fetch_turn):
            records = (await consumer.getmany(tp, timeout_ms=0, max_records=share)).get(tp)
            if records:
                fetched[tp] = records
        if fetched or not partitions:
            return fetched
        # Nothing buffered: wait for the next fetch to land, taking one share of it so the
        # partition that answers first does not fill the batch alone.
        share = max(1, room // len(partitions))
        waited: dict[TopicPartition, list[Any]] = await consumer.getmany(
            timeout_ms=timeout_ms, max_records=share
        )
        return waited

    def _submit(self, batch: Batch) -> None:
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: Batch) -> None:
        result: BatchResult | None = None
        try:
            result = await self._call(self.applier.apply, batch)
        except Exception as error:
            log.exception("pipeline %s: batch %d failed", self.pipeline.name, batch.batch_id)
            self._fail(f"batch {batch.batch_id} failed: {type(error).__name__}: {error}")
        finally:
            self.in_flight -= 1
            self._poke()
        if result is None:
            return
        self.metrics.count(
            stale=result.stale,
            dropped=result.dropped,
            batches_conflicted=result.conflicts,
        )
        self.committed.update(result.committed)
        if self.publisher is not None:
            for key, letters in result.dead_letters.items():
                if key in self.owned:
                    self.publisher.publish(key, letters)
        if result.stopped is not None:
            self._fail(result.stopped)
            if result.retry_after_s is not None:
                asyncio.get_running_loop().call_later(
                    result.retry_after_s, self._retry_failed, result.stopped
                )
        elif result.resync and not self._stopping:
            await self._resync(sorted(result.resync))

    def _retry_failed(self, message: str) -> None:
        """Starts over after a stop that may clear by itself (a map created later)."""
        if self.state == FAILED and self.error == message and not (self._stopping or self.paused):
            task = asyncio.get_running_loop().create_task(self.resume())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _fail(self, message: str) -> None:
        self.state = FAILED
        self.error = message
        self._poke()

    async def _housekeeping(self, consumer: AIOKafkaConsumer) -> None:
        """Once a second: the lag and latency gauges, and Kafka's committed offsets."""
        now = time.monotonic()
        if now - self._kafka_committed_at < KAFKA_COMMIT_INTERVAL_S:
            return
        lags = []
        for key in sorted(self.owned):
            end = consumer.highwater(TopicPartition(*key))
            committed = self.committed.get(key)
            if end is not None and committed is not None:
                lags.append((key[0], key[1], max(0, end - committed)))
        self.metrics.publish(lags)
        self._kafka_committed_at = now
        self._commit_to_kafka_later(consumer)

    async def _commit_to_kafka(self, consumer: AIOKafkaConsumer, *, force: bool = False) -> None:
        """Kafka's own committed offsets, for tools that read them; informational only.

        Bounded in time: aiokafka retries a commit while the group coordinator loads (after
        a broker restart), and nothing here may wait for that.
        """
        now = time.monotonic()
        if not force and now - self._kafka_committed_at < KAFKA_COMMIT_INTERVAL_S:
            return
        self._kafka_committed_at = now
        offsets = {
            TopicPartition(*key): offset
            for key, offset in self.committed.items()
            if key in self.owned
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(consumer.commit(offsets), KAFKA_COMMIT_TIMEOUT_S)
        except (KafkaError, AssertionError, TimeoutError) as error:
            log.debug(
                "pipeline %s: informational Kafka commit failed: %s", self.pipeline.name, error
            )

    def _commit_to_kafka_later(self, consumer: AIOKafkaConsumer) -> None:
        """The informational commit in a task of its own, one at a time, so the consume
        loop never waits for it."""
        if self._kafka_commit is not None and not self._kafka_commit.done():
            return
        task = asyncio.get_running_loop().create_task(self._commit_to_kafka(consumer, force=True))
        self._kafka_commit = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Commands ----------------------------------------------------------------------

    async def pause(self) -> None:
        """Stops applying: fetching pauses and the batches in flight finish first."""
        self.paused = True
        if self.state == RUNNING:
            self.state = PAUSED
        self._poke()
        while self.in_flight:
            await asyncio.sleep(0.01)

    async def resume(self) -> None:
        self.paused = False
        if self.state == FAILED:
            # Start over from what the grid holds: the failed batch was not committed.
            self.error = ""
            await self._resync(sorted(self.owned))
        if self.state in (PAUSED, FAILED):
            self.state = RUNNING if self.consumer is not None else STARTING
        self._poke()

    async def lag(self) -> list[PartitionLag]:
        consumer = self.consumer
        if consumer is None:
            raise KafkaError("the pipeline's consumer is not connected")
        partitions: list[TopicPartition] = []
        for topic in self.spec.topics:
            known = consumer.partitions_for_topic(topic) or set()
            partitions.extend(TopicPartition(topic, number) for number in sorted(known))
        ends = (
            await asyncio.wait_for(consumer.end_offsets(partitions), LAG_TIMEOUT_S)
            if partitions
            else {}
        )
        stores = self.node.backend.partitions
        partition_of = self.node.partitioner.partition_of
        lags = []
        for tp in partitions:
            key = offsets_key(self.spec.group, tp.topic, tp.partition)
            entry = stores[partition_of(key)].get(OFFSETS_MAP, key)
            committed = 0
            if entry is not None:
                committed = OffsetsRecord.from_json(_json(value_of(entry))).offset
            lags.append(
                PartitionLag(
                    self.pipeline.name,
                    tp.topic,
                    tp.partition,
                    committed,
                    ends.get(tp, 0),
                    (tp.topic, tp.partition) in self.owned,
                )
            )
        self.metrics.publish((item.topic, item.partition, item.lag) for item in lags)
        return lags

    def status(self) -> PipelineStatus:
        counters, p50, p99, p999 = self.metrics.snapshot()
        return PipelineStatus(
            pipeline=self.pipeline,
            state=self.state,
            error=self.error,
            assigned=tuple(sorted(self.owned)),
            counters=counters,
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            latency_p999_ms=p999,
            in_flight=self.in_flight,
            dead_letters_pending=0 if self.publisher is None else self.publisher.pending(),
        )


def _json(data: bytes) -> Any:
    import orjson

    return orjson.loads(data)


def _show(keys: list[TopicPartitionKey]) -> str:
    return ", ".join(f"{topic}/{partition}" for topic, partition in sorted(keys)) or "nothing"
