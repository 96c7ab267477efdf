"""The three-phase commit coordinator of one transaction, as a pure state machine.

Skeen's three phases (CanCommit/vote, PreCommit/ack, DoCommit) with one change that
makes the protocol safe under partitions: the decision lives in one durable status
record per transaction, and every change of it is a compare-and-set. The status
record moves pending -> pre_committed -> committed, or pending -> aborted; it is
changed before the participants hear of the change, so no participant is ever
ahead of it. A recovering coordinator therefore decides by the record alone: at
pre_committed or beyond it commits, at pending it swaps pending -> aborted first,
and a coordinator that loses a swap follows the record's value.

`handle(event) -> actions` does no I/O; the transaction manager carries the actions
out and feeds back their results as events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grid.participant import ABORTED, COMMITTED, PENDING, PRE_COMMITTED

# Actions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateStatus:
    pass


@dataclass(frozen=True, slots=True)
class SendPrepare:
    partition: int


@dataclass(frozen=True, slots=True)
class SwapStatus:
    expected: str
    new: str


@dataclass(frozen=True, slots=True)
class SendPreCommit:
    partition: int


@dataclass(frozen=True, slots=True)
class SendCommit:
    partition: int


@dataclass(frozen=True, slots=True)
class SendAbort:
    partition: int


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: str
    reason: str = ""


Action = CreateStatus | SendPrepare | SwapStatus | SendPreCommit | SendCommit | SendAbort | Finish

# Events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusCreated:
    # The record's state when it already existed (a retried commit), else pending.
    state: str


@dataclass(frozen=True, slots=True)
class Voted:
    partition: int
    yes: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StatusSwapped:
    swapped: bool
    # The record's state after the attempt: the new value, or whatever beat us.
    state: str | None


@dataclass(frozen=True, slots=True)
class Acknowledged:
    partition: int


Event = StatusCreated | Voted | StatusSwapped | Acknowledged

# The phases a coordinator passes through.
STARTING = "starting"
VOTING = "voting"
DECIDING = "deciding"
PRE_COMMITTING = "pre_committing"
COMMITTING = "committing"
ABORTING = "aborting"
DONE = "done"


@dataclass
class ThreePhaseCommit:
    """The coordinator of one transaction over several partitions."""

    participants: tuple[int, ...]
    phase: str = STARTING
    outcome: str | None = None
    reason: str = ""
    yes_votes: set[int] = field(default_factory=set)
    acknowledged: set[int] = field(default_factory=set)

    def start(self) -> list[Action]:
        self.phase = STARTING
        return [CreateStatus()]

    def handle(self, event: Event) -> list[Action]:
        if self.phase == DONE:
            return []
        if isinstance(event, StatusCreated):
            return self._on_status_created(event)
        if isinstance(event, Voted):
            return self._on_vote(event)
        if isinstance(event, StatusSwapped):
            return self._on_swap(event)
        return self._on_ack(event)

    def _on_status_created(self, event: StatusCreated) -> list[Action]:
        if self.phase != STARTING:
            return []
        if event.state != PENDING:
            # A retry of a transaction another attempt already drove: follow the record.
            return self._follow(event.state)
        self.phase = VOTING
        return [SendPrepare(partition) for partition in self.participants]

    def _on_vote(self, event: Voted) -> list[Action]:
        if self.phase != VOTING:
            return []
        if not event.yes:
            self.phase = DECIDING
            self.reason = event.reason
            return [SwapStatus(PENDING, ABORTED)]
        self.yes_votes.add(event.partition)
        if self.yes_votes >= set(self.participants):
            self.phase = DECIDING
            return [SwapStatus(PENDING, PRE_COMMITTED)]
        return []

    def _on_swap(self, event: StatusSwapped) -> list[Action]:
        if self.phase not in (DECIDING, PRE_COMMITTING):
            return []
        if event.state is None:
            # The record vanished: only a final, fully applied record is ever removed.
            return self._finish(ABORTED, "the status record is gone")
        return self._follow(event.state)

    def _follow(self, state: str) -> list[Action]:
        """Moves to the phase the status record dictates."""
        self.acknowledged = set()
        if state == PRE_COMMITTED:
            self.phase = PRE_COMMITTING
            return [SendPreCommit(partition) for partition in self.participants]
        if state == COMMITTED:
            self.phase = COMMITTING
            return [SendCommit(partition) for partition in self.participants]
        if state == ABORTED:
            self.phase = ABORTING
            if not self.reason:
                self.reason = "aborted by recovery after the lease expired"
            return [SendAbort(partition) for partition in self.participants]
        # Still pending after a failed swap cannot happen: a swap fails only on change.
        self.phase = DECIDING
        return [SwapStatus(PENDING, ABORTED)]

    def _on_ack(self, event: Acknowledged) -> list[Action]:
        if self.phase not in (PRE_COMMITTING, COMMITTING, ABORTING):
            return []
        self.acknowledged.add(event.partition)
        # Every participant must answer; an answer from elsewhere completes nothing.
        if not self.acknowledged >= set(self.participants):
            return []
        if self.phase == PRE_COMMITTING:
            self.phase = DECIDING
            return [SwapStatus(PRE_COMMITTED, COMMITTED)]
        if self.phase == COMMITTING:
            return self._finish(COMMITTED)
        return self._finish(ABORTED, self.reason)

    def _finish(self, outcome: str, reason: str = "") -> list[Action]:
        self.phase = DONE
        self.outcome = outcome
        self.reason = reason
        return [Finish(outcome, reason)]


def recovery_decision(record_state: str | None, participant_states: list[str]) -> str:
    """The termination rule for a transaction whose coordinator is gone.

    Commit when the record or any participant says pre-committed or committed;
    otherwise abort (the caller swaps pending -> aborted before aborting anyone).
    """
    states = [record_state, *participant_states]
    if COMMITTED in states or PRE_COMMITTED in states:
        return COMMITTED
    return ABORTED
