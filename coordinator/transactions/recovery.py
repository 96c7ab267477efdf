"""The recovery sweeper: finishes transactions whose coordinator is gone.

For every status record whose lease expired and that no coordinator here is driving,
it applies the termination rule of `three_phase.recovery_decision`: commit when the
record or any participant reached pre-commit, otherwise swap pending -> aborted
first and abort. Each change of the record is a compare-and-set, so two sweepers
(or a sweeper and a slow coordinator) can never decide differently, and running a
sweep twice changes nothing the first did not. Final records are kept for a
retention period to answer retried commits, then forgotten once no participant
still holds the transaction. A sweep reads only undecided records, those of
transactions staged somewhere, and decided ones past retention (in bounded slices,
oldest first): its cost follows the work to do, not the history kept for retries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from coordinator.transactions.manager import TransactionManager
from coordinator.transactions.store_sequence import StoreCommitSequence
from coordinator.transactions.three_phase import recovery_decision
from grid.backend import StagedView, StatusView
from grid.errors import Unavailable
from grid.participant import (
    ABORTED,
    COMMITTED,
    FINAL_STATES,
    PENDING,
    PRE_COMMITTED,
    Abort,
    CasStatus,
    Commit,
    ForgetStatus,
    StatusReply,
)

log = logging.getLogger(__name__)

# Sorts after every commit number.
_NO_NUMBER = 2**63

# How many decided records past retention one sweep forgets per partition at most, so a
# backlog (a restart after a long stop) is worked off over a few sweeps, each kept short.
FORGET_SLICE = 2048


@dataclass
class SweepReport:
    committed: int = 0
    aborted: int = 0
    forgotten: int = 0
    # Numbers of a shared store's commit sequence whose holder died after committing.
    released: int = 0


class RecoverySweeper:
    def __init__(self, manager: TransactionManager) -> None:
        self.manager = manager
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Told every sweep's report (the recovery metrics); None for nobody.
        self.on_report: Callable[[SweepReport], None] | None = None

    def sweep(self, *, everything: bool = False) -> SweepReport:
        """One pass; `everything` treats every lease as expired (start-up of a sole node)."""
        manager = self.manager
        # Taken before the records are read: a number is taken after its transaction's
        # prepares, so a holder still unfinished shows below as staged somewhere.
        expired_numbers = self._expired_numbers()
        now = manager.clock.now_ms()
        report = SweepReport()
        staged: dict[bytes, list[tuple[int, StagedView]]] = {}
        for index, partition in enumerate(manager.partitions):
            for view in partition.staged_transactions():
                staged.setdefault(view.txn_id, []).append((index, view))
        # Only the records that may need work: the undecided ones, and those of transactions
        # still staged somewhere (decided or not). Decided records kept for retries are read
        # only once due to be forgotten, so a sweep costs what is undecided or due, not the
        # retained history; a backend without indexes reads each partition once.
        retention_ms = manager.config.status_retention_ms
        asked: dict[int, list[bytes]] = {}
        for txn_id, holders in staged.items():
            asked.setdefault(holders[0][1].status_partition, []).append(txn_id)
        records: dict[bytes, StatusView] = {}
        past_retention: list[tuple[int, StatusView]] = []
        for index, partition in enumerate(manager.partitions):
            read = partition.sweep_statuses(asked.get(index, []), now - retention_ms, FORGET_SLICE)
            for record in [*read.undecided, *read.staged]:
                records[record.txn_id] = record
            past_retention += [(index, record) for record in read.due]
        # Numbers whose holder died with nothing left to finish are released first, and the
        # transactions of dead holders are finished next, lowest number first: a commit applies
        # only after every lower number is released (store_sequence.py), so finishing another
        # transaction first would wait on those very numbers.
        for number, owner in expired_numbers:
            txn_id = _txn_of(owner)
            held = records.get(txn_id)
            unfinished = txn_id in staged or (held is not None and held.state not in FINAL_STATES)
            if not unfinished and not manager.is_in_flight(txn_id):
                # Its coordinator died between taking the number and releasing it, and
                # every partition it wrote is committed (or it wrote none): the read version
                # may pass it.
                self._release(number)
                report.released += 1
        first = {_txn_of(owner): number for number, owner in expired_numbers}
        ordered = sorted(records.items(), key=lambda item: first.get(item[0], _NO_NUMBER))
        for txn_id, record in ordered:
            if manager.is_in_flight(txn_id):
                continue
            holders = staged.get(txn_id, [])
            expired = everything or record.lease_expires_ms <= now
            if record.state not in FINAL_STATES:
                if not expired:
                    continue
                outcome = self._decide(txn_id, record, [view.state for _, view in holders])
            else:
                outcome = record.state
            if holders and (expired or record.state in FINAL_STATES):
                finishing = [index for index, _ in holders]
                if outcome == COMMITTED:
                    # Every participant, not only those seen staged: the staged lists were read
                    # one partition at a time, so a coordinator still driving the commit (on a
                    # shared store) may have prepared one after it was read. Committing only the
                    # others released the number with that one left for its driver to commit at
                    # a later number, after other commits: two partitions in two orders.
                    finishing = sorted({*finishing, *record.participants})
                self._finish(txn_id, outcome, finishing)
                if outcome == COMMITTED:
                    report.committed += 1
                else:
                    report.aborted += 1
                holders = []
            # A record decided just now was updated now: not due, whatever `record` says.
            due = record.state in FINAL_STATES and record.updated_ms + retention_ms <= now
            if due and not holders:
                manager.partitions[manager.status_partition(txn_id)].step(ForgetStatus(txn_id))
                report.forgotten += 1
        for index, record in past_retention:
            txn_id = record.txn_id
            if txn_id in records or txn_id in staged or manager.is_in_flight(txn_id):
                # Handled above, or a participant still holds it: forgotten once finished.
                continue
            manager.partitions[index].step(ForgetStatus(txn_id))
            report.forgotten += 1
        for txn_id, holders in staged.items():
            if txn_id in records or manager.is_in_flight(txn_id):
                continue
            if everything or all(view.lease_expires_ms <= now for _, view in holders):
                # No status record: the coordinator died before asking for votes, or the
                # record was decided and forgotten; either way nobody can commit it.
                self._finish(txn_id, ABORTED, [index for index, _ in holders])
                report.aborted += 1
        if report.committed or report.aborted:
            log.info(
                "recovery sweep: %d committed, %d aborted, %d forgotten",
                report.committed,
                report.aborted,
                report.forgotten,
            )
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _expired_numbers(self) -> list[tuple[int, str]]:
        sequence = self.manager.sequence
        return sequence.expired() if isinstance(sequence, StoreCommitSequence) else []

    def _release(self, number: int) -> None:
        sequence = self.manager.sequence
        if isinstance(sequence, StoreCommitSequence):
            sequence.release(number)

    def _decide(self, txn_id: bytes, record: StatusView, participant_states: list[str]) -> str:
        manager = self.manager
        decision = recovery_decision(record.state, participant_states)
        state = record.state
        # Follow the record: a lost swap means someone else moved it, and its new
        # value (never an earlier one) decides.
        while state not in FINAL_STATES:
            if state == PENDING:
                state = self._swap(
                    txn_id, PENDING, PRE_COMMITTED if decision == COMMITTED else ABORTED
                )
            else:
                state = self._swap(txn_id, PRE_COMMITTED, COMMITTED)
        manager.stories.record(txn_id, f"recovered: {state}", "by the recovery sweeper")
        return state

    def _swap(self, txn_id: bytes, expected: str, new: str) -> str:
        reply = self.manager.partitions[self.manager.status_partition(txn_id)].step(
            CasStatus(txn_id, expected, new, self.manager.clock.now_ms())
        )
        assert isinstance(reply, StatusReply)
        return reply.state or ABORTED

    def _finish(self, txn_id: bytes, outcome: str, partitions: list[int]) -> None:
        manager = self.manager
        if outcome == COMMITTED:
            # A recovered commit takes its place in the commit order like any other.
            waits = []
            horizon = manager.horizon()
            # The transaction's own number when its coordinator took one before it died
            # (a shared store's sequence gives a transaction one number): every partition
            # commits it at one version.
            with manager.sequence.commit(txn_id, several_steps=True) as version:
                for index in partitions:
                    event = Commit(txn_id, version, horizon)
                    waits.append(manager.partitions[index].apply(event)[1])
            for wait_durable in waits:
                wait_durable()
        else:
            for index in partitions:
                manager.partitions[index].step(Abort(txn_id))
        manager.stories.record(
            txn_id, f"recovered: {outcome} on partitions", ", ".join(map(str, partitions))
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recovery-sweeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval_s = self.manager.config.sweep_interval_ms / 1000
        while not self._stop.wait(interval_s):
            try:
                self.manager.renew_leases()
                self.sweep()
                self.manager.forget_versions()
            except Unavailable as error:
                # A shared store out of reach: the next interval tries again.
                log.warning("recovery sweep: %s", error.message)
            except Exception:
                log.exception("recovery sweep failed; retrying at the next interval")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _txn_of(owner: str) -> bytes:
    try:
        return bytes.fromhex(owner)
    except ValueError:
        return owner.encode()
