"""The replay manager of one coordinator: replays into this coordinator's grid.

Replays run on an asyncio event loop thread of their own (as pipelines do), one
`ReplayRunner` each. A replay is a resource with an id: its record in the grid says what
it covers and how it ended, its offsets records how far it got, so `status` is read from
the grid and a coordinator that restarts resumes every replay still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer

from coordinator.node import Node
from coordinator.operators.pipeline_code import load_pipeline
from coordinator.operators.ranges import RangeRequest, check_request, resolve
from coordinator.operators.replay_record import (
    CANCELLED,
    DONE,
    ENDED,
    FAILED,
    RUNNING,
    ReplayRecord,
    ReplayStore,
)
from coordinator.operators.replay_runner import ReplayFailed, ReplayRunner
from coordinator.pipelines.host import _tracer
from coordinator.pipelines.registry import Pipeline
from grid.errors import FailedPrecondition, GridError, InvalidArgument, NotFound, Unavailable

log = logging.getLogger(__name__)

Result = TypeVar("Result")
COMMAND_TIMEOUT_S = 60.0
RATE_WINDOW_S = 5.0
SAMPLE_INTERVAL_S = 0.5


@dataclass(frozen=True)
class ReplayRequest:
    pipeline_name: str
    file_name: str
    source: str
    topic: str
    from_ms: int | None = None
    to_ms: int | None = None
    from_offsets: dict[int, int] = field(default_factory=dict)
    to_offsets: dict[int, int] = field(default_factory=dict)
    rate_per_s: float = 0.0
    kafka: str = ""


@dataclass(frozen=True)
class PartitionProgress:
    partition: int
    start: int
    end: int
    next_offset: int
    applied: int
    rejected: int
    duplicates: int


@dataclass(frozen=True)
class ReplayStatus:
    record: ReplayRecord
    partitions: list[PartitionProgress]
    processed: int
    applied: int
    rejected: int
    duplicates: int
    rate_per_s: float
    eta_s: float
    error: str


@dataclass
class _Running:
    runner: ReplayRunner
    task: asyncio.Task[None] | None = None
    cancelled: bool = False


class ReplayManager:
    def __init__(self, node: Node, *, kafka: str = "") -> None:
        self.node = node
        self.kafka = kafka
        self.store = ReplayStore(node)
        self.owner = f"{node.node_id}/{os.getpid()}/{os.urandom(4).hex()}"
        self.tracer = _tracer()
        self.rng = random.Random()
        self._running: dict[str, _Running] = {}
        self._samples: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopped = False
        self._sampler: asyncio.Task[None] | None = None

    # Life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Starts the loop and resumes every replay the grid records as running."""
        self._thread = threading.Thread(target=self._run_loop, name="shoal-replays", daemon=True)
        self._thread.start()
        self._started.wait()
        for record in list(self.store.all()):
            if record.state == RUNNING:
                log.info("replay %s: resuming after a restart", record.replay_id)
                try:
                    pipeline = load_pipeline(
                        record.pipeline, record.file_name, record.source, self.node.catalog
                    )
                except GridError as error:
                    self._end(record, FAILED, f"cannot load its pipeline again: {error}")
                    continue
                self._run(self._launch(record, pipeline))

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._sampler = loop.create_task(self._sample_forever())
        self._started.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stops every runner without ending its replay: a restart resumes it."""
        if self._stopped or self._loop is None:
            return
        self._stopped = True
        loop = self._loop
        future = asyncio.run_coroutine_threadsafe(self._stop_all(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)

    async def _stop_all(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        running = list(self._running.values())
        for item in running:
            item.cancelled = True
        await asyncio.gather(*(item.runner.stop() for item in running), return_exceptions=True)
        for item in running:
            if item.task is not None:
                item.task.cancel()

    def _run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        loop = self._loop
        if loop is None or self._stopped:
            coroutine.close()
            raise Unavailable("replays are not running on this coordinator")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(COMMAND_TIMEOUT_S)

    # Commands --------------------------------------------------------------------------

    def start_replay(self, request: ReplayRequest) -> ReplayStatus:
        kafka = request.kafka or self.kafka
        if not kafka:
            raise FailedPrecondition(
                "no Kafka to replay from: give the bootstrap servers (kafka) or start the "
                "coordinator with --kafka",
                field="kafka",
            )
        if not math.isfinite(request.rate_per_s) or request.rate_per_s < 0:
            raise InvalidArgument(
                "the rate cap must be a positive number of events per second (0: no cap)",
                field="rate_per_s",
            )
        ranges_request = RangeRequest(
            request.topic,
            request.from_ms,
            request.to_ms,
            request.from_offsets or None,
            request.to_offsets or None,
        )
        check_request(ranges_request)
        pipeline = load_pipeline(
            request.pipeline_name, request.file_name, request.source, self.node.catalog
        )
        topic = request.topic
        if not topic:
            if len(pipeline.spec.topics) != 1:
                raise InvalidArgument(
                    f"pipeline '{pipeline.name}' reads {len(pipeline.spec.topics)} topics: "
                    "say which one to replay",
                    field="topic",
                )
            topic = pipeline.spec.topics[0]
            ranges_request = RangeRequest(
                topic,
                request.from_ms,
                request.to_ms,
                request.from_offsets or None,
                request.to_offsets or None,
            )
        ranges = self._run(_resolve(kafka, ranges_request))
        replay_id = f"r-{os.urandom(5).hex()}"
        record = ReplayRecord(
            replay_id=replay_id,
            pipeline=pipeline.name,
            file_name=request.file_name,
            source=request.source,
            topic=topic,
            kafka=kafka,
            ranges=ranges,
            rate_per_s=request.rate_per_s,
            dead_letter_topic=f"shoal-replay.{replay_id}.dlq",
            created_ms=self.node.clock.now_ms(),
            from_ms=request.from_ms or 0,
            to_ms=request.to_ms or 0,
        )
        self.store.save(record)
        log.info(
            "replay %s: %s %s through %s (%d offsets, rate cap %s)",
            replay_id,
            topic,
            _show_ranges(ranges),
            pipeline.name,
            record.total,
            f"{request.rate_per_s:g}/s" if request.rate_per_s else "none",
        )
        self._run(self._launch(record, pipeline))
        return self.status(replay_id)

    async def _launch(self, record: ReplayRecord, pipeline: Pipeline) -> None:
        runner = ReplayRunner(
            record,
            pipeline,
            self.node,
            owner=self.owner,
            tracer=self.tracer,
            clock=self.node.clock,
            rng=self.rng,
        )
        item = _Running(runner)
        self._running[record.replay_id] = item
        item.task = asyncio.get_running_loop().create_task(self._drive(record, item))

    async def _drive(self, record: ReplayRecord, item: _Running) -> None:
        state, error = DONE, ""
        try:
            await item.runner.run()
        except asyncio.CancelledError:
            state = CANCELLED
        except ReplayFailed as failure:
            state, error = FAILED, str(failure)
        except Exception as failure:
            log.exception("replay %s failed", record.replay_id)
            state, error = FAILED, f"{type(failure).__name__}: {failure}"
        finally:
            with contextlib.suppress(Exception):
                await item.runner.close()
            self._running.pop(record.replay_id, None)
        if item.cancelled:
            # Stopped by cancel (which records it) or by shutdown (resumed at restart).
            return
        await asyncio.get_running_loop().run_in_executor(None, self._end, record, state, error)

    def _end(self, record: ReplayRecord, state: str, error: str) -> None:
        record.state = state
        record.error = error
        record.finished_ms = self.node.clock.now_ms()
        self.store.save(record)
        log.info("replay %s %s%s", record.replay_id, state, f": {error}" if error else "")

    def cancel(self, replay_id: str) -> ReplayStatus:
        record = self._record(replay_id)
        if record.state in ENDED:
            return self.status(replay_id)
        self._run(self._cancel(replay_id))
        self._end(record, CANCELLED, "")
        return self.status(replay_id)

    async def _cancel(self, replay_id: str) -> None:
        item = self._running.get(replay_id)
        if item is None:
            return
        item.cancelled = True
        await item.runner.stop()
        if item.task is not None:
            item.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await item.task

    # Status ----------------------------------------------------------------------------

    def _record(self, replay_id: str) -> ReplayRecord:
        record = self.store.load(replay_id) if replay_id else None
        if record is None:
            raise NotFound(f"no replay '{replay_id}' in this grid", field="id")
        return record

    def statuses(self) -> list[ReplayStatus]:
        records = sorted(self.store.all(), key=lambda record: record.created_ms)
        return [self._status_of(record) for record in records]

    def status(self, replay_id: str) -> ReplayStatus:
        return self._status_of(self._record(replay_id))

    def _progress(self, record: ReplayRecord) -> list[PartitionProgress]:
        partitions = []
        for partition, (start, end) in sorted(record.ranges.items()):
            offsets = self.store.offsets(record, partition)
            if offsets is None:
                partitions.append(PartitionProgress(partition, start, end, start, 0, 0, 0))
                continue
            partitions.append(
                PartitionProgress(
                    partition,
                    start,
                    end,
                    min(max(offsets.offset, start), end),
                    offsets.applied,
                    offsets.rejected,
                    offsets.duplicates,
                )
            )
        return partitions

    def _status_of(self, record: ReplayRecord) -> ReplayStatus:
        partitions = self._progress(record)
        processed = sum(item.next_offset - item.start for item in partitions)
        if record.state == DONE:
            # Transaction markers may stand at the last offsets: all of them are behind.
            processed = record.total
        rate = self._rate(record.replay_id) if record.state == RUNNING else 0.0
        remaining = record.total - processed
        eta_s = remaining / rate if rate > 0 else (0.0 if remaining == 0 else -1.0)
        item = self._running.get(record.replay_id)
        error = record.error or (item.runner.error if item is not None else "")
        return ReplayStatus(
            record=record,
            partitions=partitions,
            processed=processed,
            applied=sum(item.applied for item in partitions),
            rejected=sum(item.rejected for item in partitions),
            duplicates=sum(item.duplicates for item in partitions),
            rate_per_s=rate,
            eta_s=eta_s,
            error=error,
        )

    def _rate(self, replay_id: str) -> float:
        with self._lock:
            samples = list(self._samples.get(replay_id, ()))
        if len(samples) < 2:
            return 0.0
        (first_s, first), (last_s, last) = samples[0], samples[-1]
        if last_s <= first_s:
            return 0.0
        return max(0.0, (last - first) / (last_s - first_s))

    async def _sample_forever(self) -> None:
        """Processed offsets of running replays every half second, for their rates."""
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            now = time.monotonic()
            for replay_id, item in list(self._running.items()):
                record = item.runner.record
                try:
                    processed = sum(
                        part.next_offset - part.start for part in self._progress(record)
                    )
                except Exception:
                    continue
                with self._lock:
                    samples = self._samples.setdefault(replay_id, deque())
                    samples.append((now, processed))
                    while samples and samples[0][0] < now - RATE_WINDOW_S:
                        samples.popleft()


async def _resolve(kafka: str, request: RangeRequest) -> dict[int, tuple[int, int]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka, group_id=None, enable_auto_commit=False, client_id="shoal-replay"
    )
    try:
        await asyncio.wait_for(consumer.start(), 20)
    except Exception as error:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise Unavailable(f"cannot reach Kafka at {kafka}: {error}") from None
    try:
        return await asyncio.wait_for(resolve(consumer, kafka, request), 30)
    finally:
        await consumer.stop()


def _show_ranges(ranges: dict[int, tuple[int, int]]) -> str:
    return ",".join(
        f"{partition}:{start}-{end}" for partition, (start, end) in sorted(ranges.items())
    )
