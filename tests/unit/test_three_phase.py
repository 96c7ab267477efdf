"""Unit tests of the pure three-phase commit coordinator (coordinator.transactions.three_phase)."""

import pytest

from coordinator.transactions.three_phase import (
    ABORTING,
    COMMITTING,
    DECIDING,
    DONE,
    PRE_COMMITTING,
    STARTING,
    VOTING,
    Acknowledged,
    Action,
    CreateStatus,
    Finish,
    SendAbort,
    SendCommit,
    SendPreCommit,
    SendPrepare,
    StatusCreated,
    StatusSwapped,
    SwapStatus,
    ThreePhaseCommit,
    Voted,
    recovery_decision,
)
from grid.participant import ABORTED, COMMITTED, PENDING, PRE_COMMITTED

PARTICIPANTS = (2, 5, 9)


def started(participants: tuple[int, ...] = PARTICIPANTS) -> ThreePhaseCommit:
    machine = ThreePhaseCommit(participants)
    assert machine.start() == [CreateStatus()]
    assert machine.phase == STARTING
    assert machine.handle(StatusCreated(PENDING)) == [SendPrepare(p) for p in participants]
    assert machine.phase == VOTING
    return machine


def all_yes(machine: ThreePhaseCommit) -> list[Action]:
    actions: list[Action] = []
    for partition in machine.participants:
        actions = machine.handle(Voted(partition, True))
    return actions


def acknowledge_all(machine: ThreePhaseCommit) -> list[Action]:
    actions: list[Action] = []
    for partition in machine.participants:
        actions = machine.handle(Acknowledged(partition))
    return actions


def test_happy_path_action_sequence():
    machine = started()
    assert machine.handle(Voted(2, True)) == []
    assert machine.handle(Voted(5, True)) == []
    assert machine.handle(Voted(9, True)) == [SwapStatus(PENDING, PRE_COMMITTED)]
    assert machine.phase == DECIDING
    assert machine.handle(StatusSwapped(True, PRE_COMMITTED)) == [
        SendPreCommit(2),
        SendPreCommit(5),
        SendPreCommit(9),
    ]
    assert machine.phase == PRE_COMMITTING
    assert machine.handle(Acknowledged(2)) == []
    assert machine.handle(Acknowledged(9)) == []
    assert machine.handle(Acknowledged(5)) == [SwapStatus(PRE_COMMITTED, COMMITTED)]
    assert machine.phase == DECIDING
    assert machine.handle(StatusSwapped(True, COMMITTED)) == [
        SendCommit(2),
        SendCommit(5),
        SendCommit(9),
    ]
    assert machine.phase == COMMITTING
    assert acknowledge_all(machine) == [Finish(COMMITTED)]
    assert machine.phase == DONE
    assert machine.outcome == COMMITTED
    assert machine.reason == ""


def test_votes_in_any_order_and_duplicates():
    machine = started()
    assert machine.handle(Voted(9, True)) == []
    assert machine.handle(Voted(9, True)) == []
    assert machine.handle(Voted(2, True)) == []
    assert machine.handle(Voted(5, True)) == [SwapStatus(PENDING, PRE_COMMITTED)]


def test_a_no_vote_swaps_pending_to_aborted_then_aborts_everyone():
    machine = started()
    assert machine.handle(Voted(2, True)) == []
    assert machine.handle(Voted(5, False, "m/k is locked")) == [SwapStatus(PENDING, ABORTED)]
    assert machine.phase == DECIDING
    # Later votes change nothing once the decision is under way.
    assert machine.handle(Voted(9, True)) == []
    assert machine.handle(Voted(9, False)) == []
    assert machine.handle(StatusSwapped(True, ABORTED)) == [
        SendAbort(2),
        SendAbort(5),
        SendAbort(9),
    ]
    assert machine.phase == ABORTING
    assert acknowledge_all(machine) == [Finish(ABORTED, "m/k is locked")]
    assert machine.outcome == ABORTED
    assert machine.reason == "m/k is locked"


def test_lost_swap_to_pre_commit_follows_an_aborted_record():
    machine = started()
    assert all_yes(machine) == [SwapStatus(PENDING, PRE_COMMITTED)]
    # Recovery decided first: the record says aborted.
    assert machine.handle(StatusSwapped(False, ABORTED)) == [SendAbort(p) for p in PARTICIPANTS]
    assert machine.phase == ABORTING
    [finish] = acknowledge_all(machine)
    assert finish == Finish(ABORTED, "aborted by recovery after the lease expired")


def test_lost_swap_to_abort_follows_a_pre_committed_record():
    machine = started()
    assert machine.handle(Voted(2, False, "no")) == [SwapStatus(PENDING, ABORTED)]
    # Recovery saw a pre-committed participant elsewhere and moved the record first.
    assert machine.handle(StatusSwapped(False, PRE_COMMITTED)) == [
        SendPreCommit(p) for p in PARTICIPANTS
    ]
    assert acknowledge_all(machine) == [SwapStatus(PRE_COMMITTED, COMMITTED)]
    assert machine.handle(StatusSwapped(True, COMMITTED)) == [SendCommit(p) for p in PARTICIPANTS]
    assert acknowledge_all(machine) == [Finish(COMMITTED)]


def test_lost_swap_to_commit_follows_a_committed_record():
    machine = started()
    all_yes(machine)
    machine.handle(StatusSwapped(True, PRE_COMMITTED))
    assert acknowledge_all(machine) == [SwapStatus(PRE_COMMITTED, COMMITTED)]
    assert machine.handle(StatusSwapped(False, COMMITTED)) == [SendCommit(p) for p in PARTICIPANTS]
    assert acknowledge_all(machine) == [Finish(COMMITTED)]


def test_swap_that_finds_the_record_still_pending_retries_the_abort():
    machine = started()
    machine.handle(Voted(2, False))
    assert machine.handle(StatusSwapped(False, PENDING)) == [SwapStatus(PENDING, ABORTED)]
    assert machine.phase == DECIDING


def test_vanished_record_finishes_aborted():
    machine = started()
    all_yes(machine)
    assert machine.handle(StatusSwapped(False, None)) == [
        Finish(ABORTED, "the status record is gone")
    ]
    assert machine.phase == DONE


@pytest.mark.parametrize(
    ("state", "expected_phase", "first_actions"),
    [
        (PRE_COMMITTED, PRE_COMMITTING, [SendPreCommit(p) for p in PARTICIPANTS]),
        (COMMITTED, COMMITTING, [SendCommit(p) for p in PARTICIPANTS]),
        (ABORTED, ABORTING, [SendAbort(p) for p in PARTICIPANTS]),
    ],
)
def test_retried_commit_follows_the_existing_record(state, expected_phase, first_actions):
    machine = ThreePhaseCommit(PARTICIPANTS)
    machine.start()
    assert machine.handle(StatusCreated(state)) == first_actions
    assert machine.phase == expected_phase
    # No participant is asked to prepare again.
    assert not any(isinstance(action, SendPrepare) for action in first_actions)


def test_retried_commit_of_a_committed_transaction_finishes_committed():
    machine = ThreePhaseCommit(PARTICIPANTS)
    machine.start()
    machine.handle(StatusCreated(COMMITTED))
    assert acknowledge_all(machine) == [Finish(COMMITTED)]


def test_events_out_of_phase_are_ignored():
    machine = ThreePhaseCommit(PARTICIPANTS)
    machine.start()
    assert machine.handle(Voted(2, True)) == []
    assert machine.handle(StatusSwapped(True, COMMITTED)) == []
    assert machine.handle(Acknowledged(2)) == []
    assert machine.phase == STARTING
    started_machine = started()
    assert started_machine.handle(StatusCreated(PENDING)) == []
    assert started_machine.handle(Acknowledged(2)) == []
    assert started_machine.handle(StatusSwapped(True, COMMITTED)) == []
    assert started_machine.phase == VOTING


def test_nothing_happens_after_done():
    machine = started()
    all_yes(machine)
    machine.handle(StatusSwapped(True, COMMITTED))
    acknowledge_all(machine)
    assert machine.phase == DONE
    for event in (
        Voted(2, False),
        StatusSwapped(True, ABORTED),
        Acknowledged(5),
        StatusCreated(PENDING),
    ):
        assert machine.handle(event) == []
    assert machine.outcome == COMMITTED


def test_acknowledgements_reset_between_phases():
    machine = started()
    all_yes(machine)
    machine.handle(StatusSwapped(True, PRE_COMMITTED))
    acknowledge_all(machine)
    machine.handle(StatusSwapped(True, COMMITTED))
    # The pre-commit acknowledgements do not count as commit acknowledgements.
    assert machine.handle(Acknowledged(2)) == []
    assert machine.handle(Acknowledged(5)) == []
    assert machine.handle(Acknowledged(9)) == [Finish(COMMITTED)]


def test_acknowledgement_from_a_stranger_does_not_complete_a_phase():
    machine = started((1, 2))
    all_yes(machine)
    machine.handle(StatusSwapped(True, COMMITTED))
    assert machine.handle(Acknowledged(1)) == []
    assert machine.handle(Acknowledged(7)) == []
    assert machine.phase == COMMITTING
    assert machine.handle(Acknowledged(2)) == [Finish(COMMITTED)]


def test_vote_from_a_stranger_does_not_complete_voting():
    machine = started((1, 2))
    assert machine.handle(Voted(1, True)) == []
    assert machine.handle(Voted(7, True)) == []
    assert machine.handle(Voted(2, True)) == [SwapStatus(PENDING, PRE_COMMITTED)]


def test_single_participant():
    machine = started((4,))
    assert machine.handle(Voted(4, True)) == [SwapStatus(PENDING, PRE_COMMITTED)]
    assert machine.handle(StatusSwapped(True, PRE_COMMITTED)) == [SendPreCommit(4)]
    assert machine.handle(Acknowledged(4)) == [SwapStatus(PRE_COMMITTED, COMMITTED)]
    assert machine.handle(StatusSwapped(True, COMMITTED)) == [SendCommit(4)]
    assert machine.handle(Acknowledged(4)) == [Finish(COMMITTED)]


def test_the_record_always_moves_before_the_participants():
    """Each participant message is preceded by the swap that allows it."""
    machine = started()
    log = list(all_yes(machine))
    for event in (StatusSwapped(True, PRE_COMMITTED),):
        log += machine.handle(event)
    log += acknowledge_all(machine)
    log += machine.handle(StatusSwapped(True, COMMITTED))
    log += acknowledge_all(machine)
    first_pre_commit = next(i for i, a in enumerate(log) if isinstance(a, SendPreCommit))
    first_commit = next(i for i, a in enumerate(log) if isinstance(a, SendCommit))
    assert log.index(SwapStatus(PENDING, PRE_COMMITTED)) < first_pre_commit
    assert log.index(SwapStatus(PRE_COMMITTED, COMMITTED)) < first_commit
    assert log[-1] == Finish(COMMITTED)


# Recovery decision ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "participants", "decision"),
    [
        (PENDING, [], ABORTED),
        (PENDING, ["prepared", "prepared"], ABORTED),
        (PENDING, ["prepared", PRE_COMMITTED], COMMITTED),
        (PENDING, [COMMITTED], COMMITTED),
        (PRE_COMMITTED, [], COMMITTED),
        (PRE_COMMITTED, ["prepared"], COMMITTED),
        (COMMITTED, ["prepared"], COMMITTED),
        (None, ["prepared"], ABORTED),
        (None, [PRE_COMMITTED], COMMITTED),
        (None, [], ABORTED),
    ],
)
def test_recovery_decision(record, participants, decision):
    assert recovery_decision(record, participants) == decision
