"""Applies micro-batches to the grid; runs on the pipeline's own worker thread.

For each batch the applier runs every event (decode, dedup, validate, the pipeline's
code) into one `BatchTransaction`, then commits it together with the batch's
bookkeeping: per Kafka partition the offsets record (conditional on the version last
seen, which fences a consumer that lost the partition), the batch's dedup segment and
the outbox entries of rejected events. In exactly-once mode that is ONE transaction;
in at-least-once mode each grid partition's share of the effects commits on its own
first, then the bookkeeping.

A batch that would exceed the transaction key limit is cut into several transactions.
A conflict re-runs the batch's code against fresh state. A batch the grid refuses for
another reason is re-run one event per transaction, so only the event at fault is
rejected (stage ``commit``). The applier owns the per-partition state it commits from,
and only this thread touches it; the consumer loop asks for syncs, batches and
confirmations through the worker, in order.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry import trace

from coordinator.clock import Clock
from coordinator.node import Node
from coordinator.observability.transactions import commit_origin
from coordinator.pipelines.batching import Batch, TopicPartitionKey
from coordinator.pipelines.deadletter import DeadLetter
from coordinator.pipelines.fault_skips import skipped, skips_from_environment
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.offsets import (
    OFFSETS_MAP,
    OffsetsRecord,
    offsets_key,
)
from coordinator.pipelines.progress import (
    BLOCKED,
    PartitionState,
    Share,
    SyncResult,
    bookkeeping_writes,
    load_state,
)
from coordinator.pipelines.registry import Pipeline
from coordinator.pipelines.tracing import batch_context, carrier_of, trace_id_hex
from coordinator.pipelines.transaction import BatchTransaction
from coordinator.pipelines.validation import (
    STAGE_APPLY,
    STAGE_COMMIT,
    Rejection,
    decode_payload,
    dedup_key_of,
    missing_reference,
    rejection_from_error,
)
from coordinator.telemetry import current_trace_id, log_fields
from grid.entry import value_of, version_of
from grid.errors import Conflict, FailedPrecondition, GridError, NotFound
from grid.participant import ApplyOnePhase, Read, Write
from shoal.pipelines import AT_LEAST_ONCE, EXACTLY_ONCE, Event

log = logging.getLogger(__name__)

# Keys kept free in a transaction for the next event's writes before the batch is cut.
EVENT_KEYS_MARGIN = 32
CONFLICT_BACKOFF_MAX_S = 0.5
MISSING_MAP_RETRY_S = 5.0
DECODE_FAILED = Rejection("decode", "json", "$", "the value is not JSON")
_loads = orjson.loads


@dataclass
class BatchResult:
    batch_id: int
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    stale: int = 0
    dropped: int = 0
    transactions: int = 0
    conflicts: int = 0
    dead_letters: dict[TopicPartitionKey, list[DeadLetter]] = field(default_factory=dict)
    resync: set[TopicPartitionKey] = field(default_factory=set)
    committed: dict[TopicPartitionKey, int] = field(default_factory=dict)
    stopped: str | None = None
    # When set, the loop resumes the stopped pipeline after this many seconds.
    retry_after_s: float | None = None


class PipelineStopped(Exception):
    """The pipeline must stop: its code raised and it is set to stop (on_error="stop"),
    or something it needs is missing (then it retries after `retry_after_s`)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Attempt:
    transaction: BatchTransaction
    progress: dict[TopicPartitionKey, Share]
    end: int
    carriers: list[dict[str, str]]
    events: int = 0


COMMITTED = "committed"
CONFLICTED = "conflicted"
FENCED = "fenced"
REFUSED = "refused"


class BatchApplier:
    def __init__(
        self,
        pipeline: Pipeline,
        node: Node,
        *,
        owner: str,
        metrics: PipelineMetrics,
        tracer: trace.Tracer,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.pipeline = pipeline
        self.spec = pipeline.spec
        self.node = node
        self.owner = owner
        self.metrics = metrics
        self.tracer = tracer
        self.clock = clock
        self.rng = rng
        self.states: dict[TopicPartitionKey, PartitionState] = {}
        self.keys_max = node.limits.transaction_keys_max
        self._stores = node.backend.partitions
        self._partition_of = node.partitioner.partition_of
        # Set from the loop thread: drop queued batches instead of applying them.
        self.abandoning = False
        # Set after an exception stopped the pipeline; cleared by the next sync.
        self.stopped = False
        self._function = self.spec.function
        self._validator = pipeline.validator
        self._dedup_key = self.spec.dedup_key
        self._stop_on_error = self.spec.on_error == "stop"
        # Test-only: ranges of records this pipeline loses (see fault_skips.py).
        self._skips = {
            (topic, partition): ranges
            for (group, topic, partition), ranges in skips_from_environment().items()
            if group == self.spec.group
        }

    # Grid access ------------------------------------------------------------------

    def _entry(self, map_name: str, key: str) -> bytes | None:
        return self._stores[self._partition_of(key)].get(map_name, key)

    # Sync, forget, confirm (asked for by the consumer loop) -------------------------

    def sync(self, partitions: dict[TopicPartitionKey, int]) -> list[SyncResult]:
        """Loads the grid's committed state of partitions (with the epoch the loop gave
        them) and says where to seek; a consumer does this on every assignment."""
        results = []
        for (topic, partition), epoch in partitions.items():
            state, pending = load_state(self._entry, self.spec, topic, partition, epoch)
            self.states[state.key] = state
            results.append(
                SyncResult(topic, partition, state.next_offset, pending, state.dead_letter_floor)
            )
        self.stopped = False
        return results

    def forget(self, partitions: list[TopicPartitionKey]) -> None:
        """Drops revoked partitions: their queued records will not be applied here."""
        for key in partitions:
            self.states.pop(key, None)

    def confirm(self, key: TopicPartitionKey, source_offsets: list[int], floor: int | None) -> None:
        """Notes outbox entries now known to be in the dead-letter topic; the next commit of
        the partition deletes them and records the floor."""
        state = self.states.get(key)
        if state is None:
            return
        listed = set(state.outbox)
        state.confirmed.update(offset for offset in source_offsets if offset in listed)
        if floor is not None:
            state.new_floor = max(floor, state.new_floor or 0, state.dead_letter_floor or 0)

    # Batches -----------------------------------------------------------------------

    def _abandoned(self) -> bool:
        """Whether the loop asked to drop queued work (it may ask while a batch runs)."""
        return self.abandoning

    def apply(self, batch: Batch) -> BatchResult:
        # Every line logged while the batch is applied names the pipeline and the batch.
        fields = log_fields.bind(pipeline=self.spec.name, batch_id=batch.batch_id)
        try:
            return self._apply(batch)
        finally:
            log_fields.reset(fields)

    def _apply(self, batch: Batch) -> BatchResult:
        result = BatchResult(batch.batch_id)
        if self.abandoning or self.stopped:
            result.dropped = batch.size
            return result
        items: list[tuple[PartitionState, Any]] = []
        for chunk in batch.chunks:
            state = self.states.get(chunk.key)
            if state is None or state.epoch != chunk.epoch:
                result.dropped += len(chunk.records)
                continue
            lost = self._skips.get(chunk.key)
            items.extend(
                (state, record)
                for record in chunk.records
                if lost is None or not skipped(lost, record.offset)
            )
        position = 0
        single = False
        conflicts = 0
        forced: Rejection | None = None
        while position < len(items):
            if self._abandoned():
                result.dropped += len(items) - position
                break
            try:
                attempt = self._attempt(items, position, single, forced, result)
            except PipelineStopped as stop:
                self.stopped = True
                result.stopped = str(stop)
                result.retry_after_s = stop.retry_after_s
                result.resync.update(state.key for state, _ in items[position:])
                log.error("pipeline %s stopped: %s", self.spec.name, stop)
                break
            if not attempt.progress:
                position = attempt.end
                continue
            outcome, error = self._commit(attempt, batch.batch_id)
            if outcome == COMMITTED:
                self._committed(attempt, result)
                position = attempt.end
                forced = None
                conflicts = 0
            elif outcome == CONFLICTED:
                conflicts += 1
                result.conflicts += 1
                self.clock.sleep_s(
                    min(CONFLICT_BACKOFF_MAX_S, 0.001 * 2 ** min(conflicts, 10))
                    * (0.5 + self.rng.random())
                )
            elif outcome == FENCED:
                for state, _ in items[position:]:
                    state.epoch = BLOCKED
                    result.resync.add(state.key)
                self.metrics.count(batches_fenced=1)
                log.warning(
                    "pipeline %s: batch %d fenced (%s); its partitions resync",
                    self.spec.name,
                    batch.batch_id,
                    error,
                )
                break
            elif not single:
                # Find the event at fault: one event per transaction from here.
                single = True
            elif forced is None:
                assert error is not None
                forced = rejection_from_error(error, STAGE_COMMIT)
            else:
                # Even the rejection alone does not commit: nothing this pipeline can fix.
                self.stopped = True
                result.stopped = f"the grid refuses the pipeline's bookkeeping: {error}"
                result.resync.update(state.key for state, _ in items[position:])
                log.error("pipeline %s stopped: %s", self.spec.name, result.stopped)
                break
        return result

    def _attempt(
        self,
        items: list[tuple[PartitionState, Any]],
        start: int,
        single: bool,
        forced: Rejection | None,
        result: BatchResult,
    ) -> _Attempt:
        transaction = BatchTransaction(self.node, self.spec.writes)
        progress: dict[TopicPartitionKey, Share] = {}
        carriers: list[dict[str, str]] = []
        position = start
        limit = self.keys_max - EVENT_KEYS_MARGIN
        bookkeeping = 0
        events = 0
        count = len(items)
        process = self._process
        while position < count:
            state, record = items[position]
            if state.epoch == BLOCKED:
                result.dropped += 1
                position += 1
                continue
            offset = record.offset
            next_offset = state.next_offset
            if next_offset is not None and offset < next_offset:
                result.stale += 1
                position += 1
                continue
            if events and (single or transaction.size + bookkeeping >= limit):
                break
            key = state.key
            share = progress.get(key)
            if share is None:
                share = progress[key] = Share(state)
                share.first_offset = offset
                bookkeeping += share.bookkeeping_keys()
            elif share.next_offset > offset:
                # A record older than one already taken: a duplicate delivery.
                result.stale += 1
                position += 1
                continue
            share.next_offset = offset + 1
            share.processed += 1
            share.offsets.append(offset)
            headers = record.headers
            if headers:
                carrier = carrier_of(headers)
                if carrier is not None:
                    carriers.append(carrier)
            letters = share.dead_letters
            before = len(letters)
            process(transaction, share, record, forced)
            forced = None
            if len(letters) != before:
                bookkeeping += 1
            events += 1
            position += 1
        return _Attempt(transaction, progress, position, carriers, events)

    def _process(
        self,
        transaction: BatchTransaction,
        share: Share,
        record: Any,
        forced: Rejection | None,
    ) -> None:
        """Runs one event into the transaction, or rejects it into the share."""
        if forced is not None:
            self._reject(share, record, forced)
            return
        rejection: Rejection | None = None
        try:
            document = _loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            self._reject(share, record, decode_payload(record.value)[1] or DECODE_FAILED)
            return
        dedup_key = self._dedup_key
        if dedup_key is not None:
            identity, rejection = dedup_key_of(document, dedup_key)
            if rejection is not None:
                self._reject(share, record, rejection)
                return
            assert identity is not None
            if identity in share.seen or identity in share.state.dedup:
                share.timestamps.append(-1)
                return
            # A repeat of a rejected event is a repeat too: it is not dead-lettered twice.
            share.seen.add(identity)
            share.keys.append(identity)
        validator = self._validator
        if validator is not None:
            document, rejection = validator.check(document)
            if rejection is not None:
                self._reject(share, record, rejection)
                return
        event = Event(
            document,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            headers=record.headers,
        )
        transaction.begin_event()
        try:
            if validator is not None and validator.has_references:
                for field_name, target_map, key in validator.references(document):
                    if not transaction.exists(target_map, key):
                        rejection = missing_reference(field_name, target_map, key)
                        break
            if rejection is None:
                self._function(event, transaction)
        except Exception as error:
            transaction.end_event(False)
            if isinstance(error, NotFound) and error.field == "map":
                # A map the pipeline needs is missing: every event would fail alike, so
                # the pipeline waits for it instead of dead-lettering the stream.
                raise PipelineStopped(
                    f"{error.message}; retrying every {MISSING_MAP_RETRY_S:g} s",
                    retry_after_s=MISSING_MAP_RETRY_S,
                ) from error
            if self._stop_on_error:
                raise PipelineStopped(
                    f"{record.topic}/{record.partition}@{record.offset}: "
                    f"{type(error).__name__}: {error}"
                ) from error
            self._reject(share, record, rejection_from_error(error, STAGE_APPLY))
            return
        if rejection is not None:
            transaction.end_event(False)
            self._reject(share, record, rejection)
            return
        transaction.end_event(True)
        share.timestamps.append(record.timestamp)

    def _reject(self, share: Share, record: Any, rejection: Rejection) -> None:
        share.dead_letters.append(
            DeadLetter(
                pipeline=self.spec.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp,
                key=record.key,
                value=record.value,
                headers=tuple(record.headers),
                rejection=rejection,
            )
        )

    # Commit ------------------------------------------------------------------------

    def _commit(self, attempt: _Attempt, batch_id: int) -> tuple[str, GridError | None]:
        txn_id = os.urandom(16)
        tag = txn_id.hex()
        reads = attempt.transaction.reads()
        effects = attempt.transaction.writes()
        bookkeeping, positions, expired = bookkeeping_writes(
            self.spec.group, self.owner, attempt.progress, tag, self.clock.now_ms(), self._entry
        )
        parent, links = batch_context(attempt.carriers)
        with self.tracer.start_as_current_span(
            "shoal.pipeline.batch",
            context=parent,
            links=links,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "shoal.pipeline": self.spec.name,
                "shoal.batch_id": batch_id,
                "shoal.txn_id": tag,
                "shoal.events": attempt.events,
                "shoal.mode": self.spec.mode,
                "messaging.system": "kafka",
            },
        ) as span:
            token = current_trace_id.set(trace_id_hex(span))
            fields = log_fields.bind(txn_id=tag)
            origin = commit_origin.set("pipeline")
            started = time.perf_counter()
            outcome = REFUSED
            try:
                versions = self._commit_writes(txn_id, reads, effects, bookkeeping)
                outcome = COMMITTED
            except Conflict as error:
                outcome = CONFLICTED
                span.set_attribute("shoal.outcome", CONFLICTED)
                log.debug("pipeline %s: batch %d conflicted: %s", self.spec.name, batch_id, error)
                return CONFLICTED, error
            except FailedPrecondition as error:
                if error.target is not None and error.target[0] == OFFSETS_MAP:
                    outcome = FENCED
                    span.set_attribute("shoal.outcome", FENCED)
                    return FENCED, error
                span.set_attribute("shoal.outcome", REFUSED)
                return REFUSED, error
            except GridError as error:
                span.set_attribute("shoal.outcome", REFUSED)
                log.info(
                    "pipeline %s: batch %d refused by the grid: %s",
                    self.spec.name,
                    batch_id,
                    error,
                )
                return REFUSED, error
            finally:
                self.metrics.record_batch_seconds(time.perf_counter() - started, outcome)
                commit_origin.reset(origin)
                log_fields.reset(fields)
                current_trace_id.reset(token)
            span.set_attribute("shoal.outcome", COMMITTED)
        for key, position in positions.items():
            share = attempt.progress[key]
            version = versions[position] if position < len(versions) else 0
            share.state.version = version or self._version_after(share.state, tag)
        for key, segment_ids in expired.items():
            attempt.progress[key].state.dedup.drop(segment_ids)
        return COMMITTED, None

    def _commit_writes(
        self, txn_id: bytes, reads: list[Read], effects: list[Write], bookkeeping: list[Write]
    ) -> tuple[int, ...]:
        """Commits; returns the versions of the bookkeeping writes, in order."""
        manager = self.node.transactions
        # Every write was checked as it was made (the bookkeeping is the applier's own).
        if self.spec.mode == EXACTLY_ONCE or not effects:
            versions = manager.commit(
                txn_id, reads, [*effects, *bookkeeping], system=True, checked=True
            ).versions
            return versions[len(effects) :]
        assert self.spec.mode == AT_LEAST_ONCE
        self._apply_shares(txn_id, reads, effects)
        return manager.commit(os.urandom(16), [], bookkeeping, system=True, checked=True).versions

    def _apply_shares(self, txn_id: bytes, reads: list[Read], effects: list[Write]) -> None:
        """At-least-once: each grid partition's share of the effects in one phase."""
        manager = self.node.transactions
        plan = self.node.planner.plan(reads, effects, checked=True)
        manager.apply_shares(
            [
                (
                    partition,
                    ApplyOnePhase(
                        txn_id + partition.to_bytes(2, "big"),
                        tuple(work.reads),
                        tuple(work.writes),
                    ),
                )
                for partition, work in sorted(plan.work.items())
            ]
        )

    def _version_after(self, state: PartitionState, tag: str) -> int:
        """The offsets record's version when the commit did not report it."""
        entry = self._entry(OFFSETS_MAP, offsets_key(self.spec.group, state.topic, state.partition))
        if (
            entry is not None
            and OffsetsRecord.from_json(orjson.loads(value_of(entry))).batch == tag
        ):
            return version_of(entry)
        state.epoch = BLOCKED
        return state.version

    def _committed(self, attempt: _Attempt, result: BatchResult) -> None:
        now_ms = self.clock.now_ms()
        latencies: list[float] = []
        applied = duplicates = rejected = 0
        rules: list[str] = []
        for key, share in attempt.progress.items():
            state = share.state
            state.next_offset = share.next_offset
            share_applied, share_rejected, share_duplicates = share.outcomes()
            state.applied += share_applied
            state.rejected += share_rejected
            state.duplicates += share_duplicates
            if share.ledger is not None:
                state.ledger = share.ledger
            if share.keys:
                state.dedup.add_segment(share.first_offset, share.keys)
            outbox = [offset for offset in state.outbox if offset not in state.confirmed]
            outbox.extend(letter.offset for letter in share.dead_letters)
            state.outbox = outbox
            state.confirmed = set()
            if state.new_floor is not None:
                state.dead_letter_floor = state.new_floor
                state.new_floor = None
            if share.dead_letters:
                result.dead_letters.setdefault(key, []).extend(share.dead_letters)
                rules.extend(letter.rejection.rule for letter in share.dead_letters)
            result.committed[key] = share.next_offset
            for timestamp in share.timestamps:
                if timestamp < 0:
                    duplicates += 1
                else:
                    applied += 1
                    latencies.append(now_ms - timestamp)
            rejected += len(share.dead_letters)
            if state.epoch == BLOCKED:
                result.resync.add(key)
        result.applied += applied
        result.duplicates += duplicates
        result.rejected += rejected
        result.transactions += 1
        self.metrics.count(
            applied=applied, duplicates=duplicates, dead_lettered=rejected, batches_committed=1
        )
        self.metrics.count_rules(rules)
        self.metrics.record_latencies(latencies)
