"""The transaction manager: commits planned work in one phase or three, and recovers.

One partition touched: the participant validates and applies in one atomic step.
Several: the pure `ThreePhaseCommit` machine decides, and this manager carries its
actions out against the partitions, passing every fault-injection point on the way.
Read-only transactions over several partitions lock and validate their reads on
every partition at once, then release: nothing is written, so nothing is logged.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from coordinator.clock import Clock
from coordinator.metrics import Registry
from coordinator.observability.transactions import (
    ONE_PHASE,
    READ_ONLY,
    THREE_PHASE,
    UNTRACED,
    Untraced,
)
from coordinator.transactions.driver import CommitDriver, Request
from coordinator.transactions.faults import FaultPoints
from coordinator.transactions.planning import PartitionWork, Plan, Planner
from coordinator.transactions.readers import Readers
from coordinator.transactions.sequence import CommitOrder, CommitSequence
from coordinator.transactions.story import Stories
from grid.backend import PartitionStore
from grid.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    ReadVersionTooOld,
    StaleVersion,
)
from grid.participant import (
    ABORTED,
    COMMITTED,
    Abort,
    Applied,
    ApplyOnePhase,
    CasStatus,
    Commit,
    ForgetVersions,
    Prepare,
    Read,
    ReadOutcome,
    ReadStatus,
    Reply,
    StatusReply,
    Vote,
    Write,
)
from grid.versions import VersionStats

log = logging.getLogger(__name__)

# How many times a one-phase commit is numbered again after a later-numbered commit reached
# its keys first (grid.errors.StaleVersion; only on a shared store, under contention).
STALE_ATTEMPTS_MAX = 100
# Threads sending a 3PC phase's steps to its partitions at once (shared stores only).
PHASE_THREADS = 32
# Up to this many 3PC transactions in flight here, the prepares and pre-commits of each go to
# their partitions at once; beyond it, one after the other (see _drive).
FAN_OUT_IN_FLIGHT_MAX = 4


@dataclass(frozen=True)
class TransactionConfig:
    lease_ms: int = 10_000
    # How long a plain write waits, retrying, for a key locked by a transaction in flight.
    plain_write_wait_ms: int = 200
    # How long final status records are kept to answer retried commits.
    status_retention_ms: int = 10 * 60 * 1000
    sweep_interval_ms: int = 1000
    # How long overwritten versions stay readable (snapshot reads at an older version).
    mvcc_window_ms: int = 5000


@dataclass(frozen=True)
class CommitResult:
    """A commit's answer: each requested write's version, in order (empty when a retry
    finds the first attempt's answer no longer remembered), and which requested deletes
    removed a value."""

    versions: tuple[int, ...]
    replayed: bool = False
    removed: frozenset[int] = frozenset()

    @property
    def answered(self) -> bool:
        """False for a retry whose first answer was forgotten (it still committed)."""
        return not self.replayed or bool(self.versions)


class CommitObserver(Protocol):
    """Wraps each commit, seeing its requested writes before and its result after."""

    def around_commit(
        self, writes: Sequence[Write], commit: Callable[[], CommitResult]
    ) -> CommitResult: ...


@dataclass
class InFlight:
    txn_id: bytes
    partitions: tuple[int, ...]
    started_ms: int
    lease_expires_ms: int
    phase: str = "starting"
    done: threading.Event | None = None


class TransactionManager:
    def __init__(
        self,
        partitions: Sequence[PartitionStore],
        planner: Planner,
        *,
        clock: Clock,
        config: TransactionConfig,
        faults: FaultPoints,
        stories: Stories,
        metrics: Registry | None = None,
        sequence: CommitOrder | None = None,
        concurrent_phases: bool = False,
    ) -> None:
        self.partitions = partitions
        self.planner = planner
        self.clock = clock
        self.config = config
        self.faults = faults
        self.stories = stories
        # One order of all commits; its numbers are the versions of what they write. A
        # shared store brings its own (coordinator.transactions.store_sequence).
        self.sequence: CommitOrder = sequence or CommitSequence(
            max((partition.commit_version() for partition in partitions), default=0),
            clock,
            window_ms=config.mvcc_window_ms,
        )
        # Readers reading at a version now: the horizon does not pass them (readers.py).
        self.readers = Readers()
        self._in_flight: dict[bytes, InFlight] = {}
        self._in_flight_lock = threading.Lock()
        metrics = metrics or Registry()
        self._versions_kept = metrics.gauge(
            "shoal_versions_kept", "overwritten versions kept for reads at older versions"
        )
        self._versions_kept_bytes = metrics.gauge(
            "shoal_versions_kept_bytes", "bytes of overwritten versions kept"
        )
        self._versions_dropped = metrics.gauge(
            "shoal_versions_dropped",
            "overwritten versions dropped, by reason: age (older than mvcc_window_ms) or "
            "budget (mvcc_window_bytes_max)",
            ("reason",),
        )
        self._too_old = metrics.counter(
            "shoal_read_version_too_old_total", "reads refused: read version older than the window"
        )
        # On a shared store each 3PC phase goes to all of its partitions at once: one wait
        # per phase instead of one per partition (docs/architecture/shared-stores.md).
        # In process a step costs microseconds, and sequential steps keep the fault points'
        # meaning ("after some prepares") exact.
        self._phases: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(max_workers=PHASE_THREADS, thread_name_prefix="3pc-phase")
            if concurrent_phases
            else None
        )
        # Sees every commit's writes around it (the sketch accuracy monitor); None for none.
        self.observer: CommitObserver | None = None
        # Spans and figures of commits and their steps (coordinator.observability).
        self.telemetry: Untraced = UNTRACED

    def close(self) -> None:
        if self._phases is not None:
            self._phases.shutdown(wait=False)

    def status_partition(self, txn_id: bytes) -> int:
        return zlib.crc32(txn_id) % len(self.partitions)

    # Commit ------------------------------------------------------------------------

    def commit(
        self,
        txn_id: bytes,
        reads: Sequence[Read],
        writes: Sequence[Write],
        *,
        plain: bool = False,
        system: bool = False,
        checked: bool = False,
    ) -> CommitResult:
        """Commits atomically or raises (Conflict for a serialization conflict).

        `plain` marks a single write outside a transaction: it waits a little for
        locks held by transactions in flight instead of failing at once. `system`
        marks the coordinator's own transactions, which may write system maps;
        `checked` says every write was already checked against its map.
        """
        observer = self.observer
        if observer is not None:
            return observer.around_commit(
                writes,
                lambda: self._commit(
                    txn_id, reads, writes, plain=plain, system=system, checked=checked
                ),
            )
        return self._commit(txn_id, reads, writes, plain=plain, system=system, checked=checked)

    def _commit(
        self,
        txn_id: bytes,
        reads: Sequence[Read],
        writes: Sequence[Write],
        *,
        plain: bool,
        system: bool,
        checked: bool = False,
    ) -> CommitResult:
        if not txn_id:
            raise InvalidArgument("txn_id must be set", field="txn_id")
        plan = self.planner.plan(reads, writes, system=system, checked=checked)
        if not plan.work:
            return CommitResult(())
        if not plain:
            self.stories.record(txn_id, "planned", _describe(plan))
        if len(plan.work) == 1:
            partition, work = next(iter(plan.work.items()))
            with self.telemetry.commit(txn_id, ONE_PHASE):
                return self._one_phase(txn_id, partition, work, plan, plain=plain)
        if plan.read_only:
            with self.telemetry.commit(txn_id, READ_ONLY):
                return self._validate_reads(txn_id, plan)
        with self.telemetry.commit(txn_id, THREE_PHASE):
            return self._three_phase(txn_id, plan)

    def _one_phase(
        self, txn_id: bytes, partition: int, work: PartitionWork, plan: Plan, *, plain: bool
    ) -> CommitResult:
        store = self.partitions[partition]
        reads, writes = tuple(work.reads), tuple(work.writes)
        waited_ms = 0.0
        backoff_ms = 1.0
        stale = 0
        while True:
            try:
                horizon = self.horizon()
                with self.telemetry.phase(partition, ApplyOnePhase):
                    with self.sequence.commit(txn_id) as version:
                        deadline = self.sequence.deadline(version)
                        reply, wait_durable = self.sequence.apply_last(
                            store, ApplyOnePhase(txn_id, reads, writes, version, horizon, deadline)
                        )
                    wait_durable()
                break
            except StaleVersion:
                # A commit numbered later reached a key first (another coordinator's, on a
                # shared store): nothing was written; a new number orders this one after it.
                stale += 1
                if stale < STALE_ATTEMPTS_MAX:
                    continue
                raise
            except Conflict as conflict:
                if not plain or waited_ms >= self.config.plain_write_wait_ms:
                    if not plain:
                        self.stories.record(txn_id, "aborted", conflict.message)
                    raise
            self.clock.sleep_s(backoff_ms / 1000)
            waited_ms += backoff_ms
            backoff_ms = min(backoff_ms * 2, 20.0)
        self.faults.reached("after_one_phase")
        assert isinstance(reply, Applied)
        if not plain:
            self.stories.record(txn_id, "committed", "one phase" + (" (replay)" * reply.replayed))
        return _requested_answer(plan, {partition: reply}, reply.replayed)

    def _validate_reads(self, txn_id: bytes, plan: Plan) -> CommitResult:
        """Locks every read on every partition at once, checks versions, releases."""
        prepared: list[int] = []
        lease = self.clock.now_ms() + self.config.lease_ms
        try:
            for partition, work in sorted(plan.work.items()):
                vote = self.partitions[partition].step(
                    Prepare(txn_id, tuple(work.reads), (), lease, partition, durable=False)
                )
                assert isinstance(vote, Vote)
                if not vote.yes:
                    self.stories.record(txn_id, "aborted", vote.reason)
                    raise vote.error or Conflict(vote.reason)
                prepared.append(partition)
        finally:
            for partition in prepared:
                self.partitions[partition].step(Abort(txn_id))
        self.stories.record(txn_id, "committed", "read-only validation")
        return CommitResult(())

    def _three_phase(self, txn_id: bytes, plan: Plan) -> CommitResult:
        participants = tuple(sorted(plan.work))
        status_partition = self.status_partition(txn_id)
        now = self.clock.now_ms()
        lease = now + self.config.lease_ms
        flight = InFlight(txn_id, participants, now, lease, done=threading.Event())
        with self._in_flight_lock:
            other = self._in_flight.get(txn_id)
            if other is None:
                self._in_flight[txn_id] = flight
        if other is not None:
            # The same transaction is being committed by an earlier attempt here.
            assert other.done is not None
            other.done.wait(self.config.lease_ms * 2 / 1000)
            return self._outcome_of(txn_id, plan)
        try:
            driver = CommitDriver(
                txn_id,
                plan.work,
                status_partition,
                lease,
                clock=self.clock,
                stories=self.stories,
                faults=self.faults,
            )
            return self._drive(driver, plan, flight)
        finally:
            with self._in_flight_lock:
                self._in_flight.pop(txn_id, None)
            assert flight.done is not None
            flight.done.set()

    def _drive(self, driver: CommitDriver, plan: Plan, flight: InFlight) -> CommitResult:
        """Carries the driver's requests to the partitions, in order, until it decides."""
        txn_id = driver.txn_id
        queue: deque[Request] = deque(driver.start())
        while queue:
            request = queue.popleft()
            flight.phase = driver.phase
            if not isinstance(request.event, Commit):
                steps = [request]
                if self._phases is not None and len(self._in_flight) <= FAN_OUT_IN_FLIGHT_MAX:
                    # A phase (prepares, pre-commits, aborts) goes to every partition at once;
                    # the driver still takes the replies one by one, in order. With more
                    # transactions in flight their steps already overlap, and a hop to a pool
                    # thread and back per step costs CPU the others need: measured with 16
                    # clients transferring on Redis, sending these phases' steps one after the
                    # other used a tenth less coordinator CPU per transfer and ran more of
                    # them. The commits keep going out at once: they hold the commit order.
                    while queue and type(queue[0].event) is type(request.event):
                        steps.append(queue.popleft())
                for item, reply in zip(steps, self._step_all(steps), strict=True):
                    queue.extend(driver.on_reply(item, reply))
                continue
            # Every partition's commit happens inside one hold of the commit sequence,
            # at one version: a read at a version sees the transaction on all of its
            # partitions or none, and every partition orders it alike.
            batch = [request]
            while queue and isinstance(queue[0].event, Commit):
                batch.append(queue.popleft())
            waits = []
            following: list[Request] = []
            horizon = self.horizon()
            with self.sequence.commit(txn_id, several_steps=True) as version:
                committed = self._commit_all(txn_id, batch, Commit(txn_id, version, horizon))
                for item, (reply, wait_durable) in zip(batch, committed, strict=True):
                    waits.append(wait_durable)
                    following.extend(driver.on_reply(item, reply))
            for wait_durable in waits:
                wait_durable()
            queue.extend(following)
        if driver.decided_before is not None:
            return self._outcome_of(txn_id, plan)
        finish = driver.finish
        if finish is None:
            raise AssertionError("the commit protocol ended without a decision")
        if finish.outcome == COMMITTED:
            return _requested_answer(plan, driver.answers)
        if driver.first_error is not None and not isinstance(driver.first_error, Conflict):
            raise driver.first_error
        raise Conflict(finish.reason or "the transaction was aborted")

    def _commit_all(
        self, txn_id: bytes, batch: list[Request], event: Commit
    ) -> list[tuple[Applied, Callable[[], None]]]:
        def commit_one(item: Request) -> tuple[Applied, Callable[[], None]]:
            with self.telemetry.phase(item.partition, event):
                return self._commit_on(txn_id, item.partition, event)

        if self._phases is None or len(batch) == 1:
            return [commit_one(item) for item in batch]
        return list(self._phases.map(commit_one, batch))

    def _step_all(self, requests: list[Request]) -> list[Reply]:
        def step(request: Request) -> Reply:
            with self.telemetry.phase(request.partition, request.event):
                return self.partitions[request.partition].step(request.event)

        if self._phases is None or len(requests) == 1:
            return [step(request) for request in requests]
        return list(self._phases.map(step, requests))

    def _commit_on(
        self, txn_id: bytes, partition: int, event: Commit
    ) -> tuple[Applied, Callable[[], None]]:
        reply, wait_durable = self.partitions[partition].apply(event)
        if isinstance(reply, Applied):
            return reply, wait_durable
        # Committed before (a recovery sweep got there first): its remembered answer.
        remembered = self.partitions[partition].step(ReadOutcome(txn_id))
        return (remembered if isinstance(remembered, Applied) else Applied(())), wait_durable

    def apply_shares(self, shares: Sequence[tuple[int, ApplyOnePhase]]) -> list[Applied]:
        """Applies one-phase events on their partitions at one commit version.

        For batches that commit each partition's share on its own (a plain batch, an
        at-least-once pipeline): the shares still take one place in the commit order.
        """
        for attempt in range(STALE_ATTEMPTS_MAX):
            try:
                return self._apply_shares(shares)
            except StaleVersion:
                # Shares applied before the refusal answer the retry from memory (by request id).
                if attempt == STALE_ATTEMPTS_MAX - 1:
                    raise
        raise AssertionError("unreachable")

    def _apply_shares(self, shares: Sequence[tuple[int, ApplyOnePhase]]) -> list[Applied]:
        replies: list[Applied] = []
        waits = []
        horizon = self.horizon()
        try:
            with self.sequence.commit() as version:
                for partition, event in shares:
                    reply, wait_durable = self.partitions[partition].apply(
                        replace(
                            event,
                            version=version,
                            horizon=horizon,
                            deadline_ms=self.sequence.deadline(version),
                        )
                    )
                    assert isinstance(reply, Applied)
                    replies.append(reply)
                    waits.append(wait_durable)
        finally:
            # Shares applied before one that failed (a locked key) are remembered by
            # request id, so a retry answers them from memory without writing again:
            # they must be durable before the failure is reported.
            for wait_durable in waits:
                wait_durable()
        return replies

    def _outcome_of(self, txn_id: bytes, plan: Plan) -> CommitResult:
        reply = self.partitions[self.status_partition(txn_id)].step(ReadStatus(txn_id))
        assert isinstance(reply, StatusReply)
        if reply.state == COMMITTED:
            self._finish_committed(txn_id, plan)
            # Each partition remembers its share's answer for its last `outcomes_max`
            # write steps; past that the retry learns only that the commit happened.
            answers: dict[int, Applied] = {}
            for partition in plan.work:
                remembered = self.partitions[partition].step(ReadOutcome(txn_id))
                if not isinstance(remembered, Applied):
                    return CommitResult((), replayed=True)
                answers[partition] = remembered
            return _requested_answer(plan, answers, replayed=True)
        if reply.state == ABORTED:
            raise Conflict("the transaction was aborted by an earlier attempt")
        raise FailedPrecondition(
            f"the transaction is still in doubt ({reply.state}); retry the commit",
            field="txn_id",
        )

    def _finish_committed(self, txn_id: bytes, plan: Plan) -> None:
        """Commits a decided transaction on every participant still holding it, before a
        retry is answered: the coordinator that decided may have died before its commits
        (a retry through another coordinator on a shared store), and an answer given while
        a participant still held the writes let the client's next read miss them until a
        sweeper committed them. At the transaction's own number if it still holds one."""
        horizon = self.horizon()
        with self.sequence.commit(txn_id, several_steps=True) as version:
            event = Commit(txn_id, version, horizon)
            batch = [Request(partition, event) for partition in sorted(plan.work)]
            committed = self._commit_all(txn_id, batch, event)
        for _, wait_durable in committed:
            wait_durable()

    # Read versions -----------------------------------------------------------------

    def read_version(self, requested: int = 0) -> int:
        """A version to read at: the latest visible one (0), or `requested` while the
        versions it needs are still kept."""
        latest = self.sequence.read_version()
        if requested == 0:
            return latest
        if requested > latest:
            raise InvalidArgument(
                f"read_version {requested} is newer than the latest committed version {latest}",
                field="read_version",
            )
        # The sequence's own horizon, not the held one: a version older than the window is
        # refused even while another reader holds it (only registered readers are kept).
        horizon = self.sequence.horizon()
        if requested < horizon:
            self._too_old.inc()
            raise ReadVersionTooOld(requested, horizon)
        return requested

    def horizon(self) -> int:
        """What commits may drop by age: the sequence's horizon, held back by the oldest
        read version a reader is reading at (readers.py); the byte budget still applies."""
        return self.readers.cap(self.sequence.horizon())

    def reading(self, requested: int = 0) -> AbstractContextManager[int]:
        """A read version (as `read_version`) whose states are kept by age while the
        caller reads at it: `with manager.reading() as version: ...`."""
        return self.readers.holding(lambda: self.read_version(requested))

    def forget_versions(self) -> VersionStats:
        """Drops overwritten versions older than the window on every partition (commits
        do it as they go; this is for partitions no commit touches), and publishes the
        version metrics. Returns the totals."""
        event = ForgetVersions(self.horizon())
        total = VersionStats()
        for partition in self.partitions:
            partition.step(event)
            stats = partition.version_stats()
            total.kept += stats.kept
            total.kept_bytes += stats.kept_bytes
            total.dropped_by_age += stats.dropped_by_age
            total.dropped_by_budget += stats.dropped_by_budget
        self._versions_kept.set(total.kept)
        self._versions_kept_bytes.set(total.kept_bytes)
        self._versions_dropped.labels(reason="age").set(total.dropped_by_age)
        self._versions_dropped.labels(reason="budget").set(total.dropped_by_budget)
        return total

    def renew_leases(self) -> int:
        """Renews the status lease of every transaction this coordinator drives whose lease
        is a third gone: on a shared store another coordinator's sweeper knows nothing of
        this process's `_in_flight`, only the lease says the transaction is driven. Returns
        how many were renewed. (A renewal that loses to a sweeper's swap renews nothing;
        the driver then follows the record.)"""
        now = self.clock.now_ms()
        renewed = 0
        for flight in self.in_flight():
            if flight.lease_expires_ms - now > self.config.lease_ms * 2 // 3:
                continue
            status_partition = self.partitions[self.status_partition(flight.txn_id)]
            current = status_partition.step(ReadStatus(flight.txn_id))
            assert isinstance(current, StatusReply)
            if current.state is None or current.state in (COMMITTED, ABORTED):
                continue
            lease = now + self.config.lease_ms
            reply = status_partition.step(
                CasStatus(flight.txn_id, current.state, current.state, now, lease)
            )
            if isinstance(reply, StatusReply) and reply.swapped:
                flight.lease_expires_ms = lease
                renewed += 1
        return renewed

    # Introspection -----------------------------------------------------------------

    def in_flight(self) -> list[InFlight]:
        with self._in_flight_lock:
            return list(self._in_flight.values())

    def is_in_flight(self, txn_id: bytes) -> bool:
        with self._in_flight_lock:
            return txn_id in self._in_flight


def _requested_answer(
    plan: Plan, answers: dict[int, Applied], replayed: bool = False
) -> CommitResult:
    """The answer to the requested writes, from each partition's answer to its share."""
    versions = []
    removed = set()
    for index, (partition, position) in enumerate(plan.requested):
        answer = answers.get(partition)
        partition_versions = answer.versions if answer is not None else ()
        versions.append(partition_versions[position] if position < len(partition_versions) else 0)
        if answer is not None and position in answer.removed:
            removed.add(index)
    return CommitResult(tuple(versions), replayed, frozenset(removed))


def _describe(plan: Plan) -> str:
    return ", ".join(
        f"p{partition}: {len(work.reads)} reads {len(work.writes)} writes"
        for partition, work in sorted(plan.work.items())
    )
