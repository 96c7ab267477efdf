"""The action driver of one three-phase commit: the 3PC machine's actions as participant
requests, and the participants' replies as the machine's events.

It does no I/O: `start()` and `on_reply()` return the requests to send, and the caller
carries them to the partitions however it likes. The transaction manager carries them
at once, in order (and applies a transaction's commits inside one hold of the commit
sequence, setting their version); the seeded simulation carries them over a network
that drops, duplicates and reorders, and crashes the coordinator between steps. Both
run this code, so the simulation tests what production runs. Stories and
fault-injection points are recorded here, at the phase boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coordinator.clock import Clock
from coordinator.transactions import three_phase as tpc
from coordinator.transactions.faults import FaultPoints
from coordinator.transactions.planning import PartitionWork
from coordinator.transactions.story import Stories
from grid.errors import GridError
from grid.participant import (
    COMMITTED,
    FINAL_STATES,
    PENDING,
    Abort,
    Applied,
    CasStatus,
    Commit,
    CreateStatus,
    Event,
    PreCommit,
    Prepare,
    Reply,
    StatusReply,
    Vote,
)


@dataclass(frozen=True, slots=True)
class Request:
    """One participant event for one partition."""

    partition: int
    event: Event


class CommitDriver:
    """Drives one transaction over several partitions to a decision."""

    def __init__(
        self,
        txn_id: bytes,
        work: Mapping[int, PartitionWork],
        status_partition: int,
        lease_expires_ms: int,
        *,
        clock: Clock,
        stories: Stories,
        faults: FaultPoints,
    ) -> None:
        self.txn_id = txn_id
        self.work = work
        self.status_partition = status_partition
        self.lease_expires_ms = lease_expires_ms
        self.machine = tpc.ThreePhaseCommit(tuple(sorted(work)))
        self._clock = clock
        self._stories = stories
        self._faults = faults
        # What each partition's commit answered (versions, what a delete removed).
        self.answers: dict[int, Applied] = {}
        # The first refusal that is not a conflict (a failed condition, a bad value).
        self.first_error: GridError | None = None
        # Set when the status record was already final: an earlier attempt decided.
        self.decided_before: str | None = None
        self.finish: tpc.Finish | None = None

    @property
    def phase(self) -> str:
        return self.machine.phase

    @property
    def done(self) -> bool:
        return self.finish is not None or self.decided_before is not None

    def start(self) -> list[Request]:
        return self._requests(self.machine.start())

    def on_reply(self, request: Request, reply: Reply) -> list[Request]:
        """Feeds one participant's reply to the machine; returns the requests that follow."""
        if self.done:
            return []
        txn_id = self.txn_id
        event = request.event
        partition = request.partition
        stories = self._stories
        machine = self.machine
        happened: tpc.Event
        if isinstance(event, CreateStatus):
            assert isinstance(reply, StatusReply) and reply.state is not None
            if not reply.swapped and reply.state in FINAL_STATES:
                # A retry of a transaction an earlier attempt decided: its answer stands.
                self.decided_before = reply.state
                return []
            stories.record(txn_id, "status created", f"partition {partition}")
            self._faults.reached("after_status_created")
            happened = tpc.StatusCreated(PENDING if reply.swapped else reply.state)
        elif isinstance(event, Prepare):
            assert isinstance(reply, Vote)
            if not reply.yes and self.first_error is None:
                self.first_error = reply.error
            stories.record(
                txn_id,
                f"voted {'yes' if reply.yes else 'no'}",
                f"partition {partition}" + (f": {reply.reason}" * (not reply.yes)),
            )
            if reply.yes:
                self._faults.reached("after_some_prepares")
                if len(machine.yes_votes | {partition}) == len(machine.participants):
                    self._faults.reached("after_votes")
            happened = tpc.Voted(partition, reply.yes, reply.reason)
        elif isinstance(event, CasStatus):
            assert isinstance(reply, StatusReply)
            stories.record(
                txn_id,
                f"status {reply.state}",
                f"swap {event.expected} -> {event.new}: " + ("done" if reply.swapped else "lost"),
            )
            if reply.swapped:
                self._faults.reached(f"after_status_{event.new}")
            happened = tpc.StatusSwapped(reply.swapped, reply.state)
        elif isinstance(event, PreCommit):
            stories.record(txn_id, "pre-committed", f"partition {partition}")
            self._faults.reached("after_some_pre_commits")
            happened = tpc.Acknowledged(partition)
        elif isinstance(event, Commit):
            if isinstance(reply, Applied):
                self.answers[partition] = reply
            stories.record(txn_id, "committed", f"partition {partition}")
            self._faults.reached("after_some_commits")
            happened = tpc.Acknowledged(partition)
        else:
            assert isinstance(event, Abort)
            stories.record(txn_id, "aborted", f"partition {partition}")
            happened = tpc.Acknowledged(partition)
        return self._requests(machine.handle(happened))

    def _requests(self, actions: list[tpc.Action]) -> list[Request]:
        txn_id = self.txn_id
        status = self.status_partition
        requests: list[Request] = []
        for action in actions:
            if isinstance(action, tpc.CreateStatus):
                requests.append(
                    Request(
                        status,
                        CreateStatus(
                            txn_id,
                            self.machine.participants,
                            self.lease_expires_ms,
                            self._clock.now_ms(),
                        ),
                    )
                )
            elif isinstance(action, tpc.SendPrepare):
                work = self.work[action.partition]
                requests.append(
                    Request(
                        action.partition,
                        Prepare(
                            txn_id,
                            tuple(work.reads),
                            tuple(work.writes),
                            self.lease_expires_ms,
                            status,
                        ),
                    )
                )
            elif isinstance(action, tpc.SwapStatus):
                requests.append(
                    Request(
                        status,
                        CasStatus(txn_id, action.expected, action.new, self._clock.now_ms()),
                    )
                )
            elif isinstance(action, tpc.SendPreCommit):
                requests.append(Request(action.partition, PreCommit(txn_id)))
            elif isinstance(action, tpc.SendCommit):
                # The carrier sets the version: one for all of the transaction's commits.
                requests.append(Request(action.partition, Commit(txn_id)))
            elif isinstance(action, tpc.SendAbort):
                requests.append(Request(action.partition, Abort(txn_id)))
            else:
                assert isinstance(action, tpc.Finish)
                self.finish = action
                if action.outcome == COMMITTED:
                    self._faults.reached("after_commits")
        return requests
