"""Unit tests of transaction status records in grid.participant: create, compare-and-set,
read and forget."""

import pytest

from grid.memory.records import RecordKind
from grid.participant import (
    ABORTED,
    COMMITTED,
    PENDING,
    PRE_COMMITTED,
    Ack,
    CasStatus,
    CreateStatus,
    ForgetStatus,
    ReadStatus,
    StatusRecord,
    StatusReply,
)
from tests.unit.participant_support import Harness

TXN = b"\x01" * 16


def created(harness: Harness, txn_id: bytes = TXN) -> None:
    harness.step(CreateStatus(txn_id, (1, 4), lease_expires_ms=9_000, now_ms=100))


def test_create_status_persists_a_pending_record():
    harness = Harness()
    step = harness.step(CreateStatus(TXN, (1, 4), lease_expires_ms=9_000, now_ms=100))
    assert step.reply == StatusReply(PENDING, (1, 4), 9_000, swapped=True)
    [record] = step.records
    assert record.kind == RecordKind.STATUS
    assert record.lsn == 1
    assert record.meta == {
        "txn": TXN.hex(),
        "state": PENDING,
        "participants": [1, 4],
        "lease": 9_000,
        "updated": 100,
    }
    assert harness.participant.statuses[TXN] == StatusRecord(PENDING, (1, 4), 9_000, 100)


def test_create_status_of_an_existing_record_returns_it_unchanged():
    harness = Harness()
    created(harness)
    harness.step(CasStatus(TXN, PENDING, PRE_COMMITTED, now_ms=200))
    step = harness.step(CreateStatus(TXN, (7,), lease_expires_ms=1, now_ms=300))
    assert step.reply == StatusReply(PRE_COMMITTED, (1, 4), 9_000, swapped=False)
    assert step.records == []
    assert harness.participant.statuses[TXN] == StatusRecord(PRE_COMMITTED, (1, 4), 9_000, 200)


def test_cas_swaps_when_the_expected_state_matches():
    harness = Harness()
    created(harness)
    step = harness.step(CasStatus(TXN, PENDING, PRE_COMMITTED, now_ms=250))
    assert step.reply == StatusReply(PRE_COMMITTED, (1, 4), 9_000, swapped=True)
    assert step.records[0].kind == RecordKind.STATUS
    assert step.records[0].meta["state"] == PRE_COMMITTED
    assert step.records[0].meta["updated"] == 250
    assert harness.participant.statuses[TXN].updated_ms == 250
    step = harness.step(CasStatus(TXN, PRE_COMMITTED, COMMITTED, now_ms=300))
    assert isinstance(step.reply, StatusReply)
    assert step.reply.swapped
    assert harness.participant.statuses[TXN].state == COMMITTED


def test_cas_fails_on_a_different_state_and_reports_the_current_one():
    harness = Harness()
    created(harness)
    harness.step(CasStatus(TXN, PENDING, ABORTED, now_ms=200))
    lsn = harness.participant.lsn
    # A slow coordinator tries to pre-commit after recovery aborted: it loses.
    step = harness.step(CasStatus(TXN, PENDING, PRE_COMMITTED, now_ms=300))
    assert step.reply == StatusReply(ABORTED, (1, 4), 9_000, swapped=False)
    assert step.records == []
    assert harness.participant.lsn == lsn
    assert harness.participant.statuses[TXN] == StatusRecord(ABORTED, (1, 4), 9_000, 200)


def test_only_one_of_two_racing_swaps_wins():
    harness = Harness()
    created(harness)
    first = harness.reply(CasStatus(TXN, PENDING, PRE_COMMITTED, now_ms=1))
    second = harness.reply(CasStatus(TXN, PENDING, ABORTED, now_ms=2))
    assert isinstance(first, StatusReply)
    assert isinstance(second, StatusReply)
    assert (first.swapped, second.swapped) == (True, False)
    assert second.state == PRE_COMMITTED


def test_cas_of_a_missing_record_reports_none():
    harness = Harness()
    step = harness.step(CasStatus(TXN, PENDING, ABORTED, now_ms=1))
    assert step.reply == StatusReply(None)
    assert step.records == []
    assert harness.participant.statuses == {}


def test_read_status():
    harness = Harness()
    assert harness.step(ReadStatus(TXN)).reply == StatusReply(None)
    created(harness)
    step = harness.step(ReadStatus(TXN))
    assert step.reply == StatusReply(PENDING, (1, 4), 9_000, swapped=False)
    assert step.records == []


@pytest.mark.parametrize("final", [COMMITTED, ABORTED])
def test_forget_removes_a_final_record(final):
    harness = Harness()
    created(harness)
    if final == COMMITTED:
        harness.step(CasStatus(TXN, PENDING, PRE_COMMITTED, now_ms=1))
        harness.step(CasStatus(TXN, PRE_COMMITTED, COMMITTED, now_ms=2))
    else:
        harness.step(CasStatus(TXN, PENDING, ABORTED, now_ms=1))
    step = harness.step(ForgetStatus(TXN))
    assert step.reply == Ack()
    assert step.records[0].kind == RecordKind.STATUS
    assert step.records[0].meta == {"txn": TXN.hex(), "forget": True}
    assert TXN not in harness.participant.statuses
    assert harness.step(ReadStatus(TXN)).reply == StatusReply(None)
    again = harness.step(ForgetStatus(TXN))
    assert again.reply == Ack(known=False)
    assert again.records == []


@pytest.mark.parametrize("state", [PENDING, PRE_COMMITTED])
def test_forget_keeps_an_undecided_record(state):
    harness = Harness()
    created(harness)
    if state == PRE_COMMITTED:
        harness.step(CasStatus(TXN, PENDING, PRE_COMMITTED, now_ms=1))
    step = harness.step(ForgetStatus(TXN))
    assert step.reply == Ack(known=True)
    assert step.records == []
    assert harness.participant.statuses[TXN].state == state


def test_status_records_of_different_transactions_are_independent():
    harness = Harness()
    created(harness, b"a")
    created(harness, b"b")
    harness.step(CasStatus(b"a", PENDING, ABORTED, now_ms=1))
    assert harness.participant.statuses[b"b"].state == PENDING
    assert harness.participant.statuses[b"a"].state == ABORTED
