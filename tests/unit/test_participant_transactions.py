"""Unit tests of grid.participant's transaction steps: prepare under locks, pre-commit,
commit and abort, their idempotency, and dropping a map."""

import pytest

from grid.errors import Conflict, FailedPrecondition, InvalidArgument
from grid.memory.records import Entry, Op, RecordKind
from grid.participant import (
    COMMUTATIVE,
    COMPATIBLE,
    EXCLUSIVE,
    PRE_COMMITTED,
    REFERENCING,
    SHARED,
    Abort,
    Ack,
    Applied,
    Commit,
    Condition,
    DropMap,
    Failed,
    Participant,
    PreCommit,
    Vote,
    Write,
    combine_modes,
)
from tests.unit.participant_support import (
    Harness,
    apply,
    delete,
    increment,
    prepare,
    put,
    read,
    reference,
)


def voted_no(harness: Harness, event) -> Vote:
    step = harness.step(event)
    assert isinstance(step.reply, Vote)
    assert not step.reply.yes
    assert step.records == []
    return step.reply


def voted_yes(harness: Harness, event) -> Vote:
    step = harness.step(event)
    assert step.reply == Vote(True), step.reply
    return step.reply


# Prepare --------------------------------------------------------------------------------


def test_prepare_persists_locks_and_staged_writes_then_votes_yes():
    harness = Harness()
    harness.step(apply(put("a")))
    step = harness.step(
        prepare(
            b"t1",
            put("b", condition=Condition("if_absent")),
            increment("x", {"n": 1}),
            reads=(read("a", 1),),
            lease_expires_ms=5_000,
            status_partition=7,
        )
    )
    assert step.reply == Vote(True)
    [record] = step.records
    assert record.kind == RecordKind.PREPARED
    assert record.lsn == 2
    assert record.meta == {
        "txn": b"t1".hex(),
        "lease": 5_000,
        "status_partition": 7,
        "locks": [["m", "a", SHARED], ["m", "b", EXCLUSIVE], ["c", "x", COMMUTATIVE]],
        "conditions": [[0, "if_absent", 0]],
    }
    assert record.entries == [
        Entry(Op.PUT, "m", "b", b'{"v":"b"}'),
        Entry(Op.INCREMENT, "c", "x", b'{"n":1}'),
    ]
    participant = harness.participant
    assert participant.locks == {
        ("m", "a"): {b"t1": SHARED},
        ("m", "b"): {b"t1": EXCLUSIVE},
        ("c", "x"): {b"t1": COMMUTATIVE},
    }
    staged = participant.staged[b"t1"]
    assert staged.state == "prepared"
    assert (staged.lease_expires_ms, staged.status_partition) == (5_000, 7)
    # Nothing is visible before the commit.
    assert participant.get("m", "b") is None
    assert participant.get("c", "x") is None


def test_duplicate_prepare_votes_yes_again_without_a_record():
    harness = Harness()
    voted_yes(harness, prepare(b"t1", put("a")))
    step = harness.step(prepare(b"t1", put("a")))
    assert step.reply == Vote(True)
    assert step.records == []
    assert harness.participant.lsn == 1


@pytest.mark.parametrize(
    ("setup", "event", "error_type"),
    [
        (
            [apply(put("a"))],
            prepare(b"t", put("a", condition=Condition("if_absent"))),
            FailedPrecondition,
        ),
        ([], prepare(b"t", put("a", condition=Condition("if_exists"))), FailedPrecondition),
        ([apply(put("a"))], prepare(b"t", put("b"), reads=(read("a", 0),)), Conflict),
        (
            [apply(put("x", {"n": "s"}, map_name="c"))],
            prepare(b"t", increment("x", {"n": 1})),
            InvalidArgument,
        ),
        ([], prepare(b"t", reference("nobody", 1)), FailedPrecondition),
    ],
    ids=["if-absent", "if-exists", "stale-read", "increment-type", "reference-missing"],
)
def test_prepare_votes_no_and_takes_nothing(setup, event, error_type):
    harness = Harness()
    for earlier in setup:
        harness.step(earlier)
    lsn = harness.participant.lsn
    vote = voted_no(harness, event)
    assert isinstance(vote.error, error_type)
    assert vote.reason == str(vote.error)
    assert harness.participant.locks == {}
    assert harness.participant.staged == {}
    assert harness.participant.lsn == lsn


def test_type_errors_are_reported_at_prepare():
    harness = Harness()
    harness.step(apply(put("x", {"n": "text"}, map_name="c")))
    vote = voted_no(harness, prepare(b"t", increment("x", {"n": 1})))
    assert isinstance(vote.error, InvalidArgument)
    assert "cannot increment 'c/x' field 'n'" in vote.reason


# Lock compatibility -----------------------------------------------------------------------


def test_lock_compatibility_matrix_is_symmetric():
    modes = (SHARED, EXCLUSIVE, COMMUTATIVE, REFERENCING)
    for held in modes:
        for wanted in modes:
            assert (held in COMPATIBLE[wanted]) == (wanted in COMPATIBLE[held])
    assert COMPATIBLE[EXCLUSIVE] == frozenset()
    assert COMPATIBLE[SHARED] == {SHARED, REFERENCING}
    assert COMPATIBLE[COMMUTATIVE] == {COMMUTATIVE, REFERENCING}
    assert COMPATIBLE[REFERENCING] == {SHARED, COMMUTATIVE, REFERENCING}


@pytest.mark.parametrize(
    ("held", "wanted", "expected"),
    [
        (SHARED, SHARED, SHARED),
        (SHARED, REFERENCING, SHARED),
        (REFERENCING, SHARED, SHARED),
        (COMMUTATIVE, REFERENCING, COMMUTATIVE),
        (REFERENCING, REFERENCING, REFERENCING),
        (SHARED, COMMUTATIVE, EXCLUSIVE),
        (COMMUTATIVE, EXCLUSIVE, EXCLUSIVE),
        (EXCLUSIVE, SHARED, EXCLUSIVE),
    ],
)
def test_combine_modes(held, wanted, expected):
    assert combine_modes(held, wanted) == expected


def existing_people() -> Harness:
    harness = Harness()
    harness.step(apply(put("k"), put("p", map_name="people"), put("x", {"n": 0}, map_name="c")))
    return harness


# Each writer as (description, writes, reads) on the key m/k, c/x or people/p.
SHARED_ON_K = ((), (read("k", 1),))
EXCLUSIVE_ON_K = ((put("k", {"v": 2}),), ())
SHARED_ON_P = ((), (read("p", 1, map_name="people"),))
EXCLUSIVE_ON_P = ((put("p", {"v": 2}, map_name="people"),), ())
COMMUTATIVE_ON_P = ((increment("p", {"n": 1}, map_name="people"),), ())
REFERENCING_P = ((reference("p", 1),), ())
COMMUTATIVE_ON_X = ((increment("x", {"n": 1}),), ())
EXCLUSIVE_ON_X = ((put("x", {"n": 5}, map_name="c"),), ())
SHARED_ON_X = ((), (read("x", 1, map_name="c"),))


@pytest.mark.parametrize(
    ("first", "second", "compatible"),
    [
        pytest.param(SHARED_ON_K, SHARED_ON_K, True, id="S-S"),
        pytest.param(SHARED_ON_K, EXCLUSIVE_ON_K, False, id="S-X"),
        pytest.param(EXCLUSIVE_ON_K, SHARED_ON_K, False, id="X-S"),
        pytest.param(EXCLUSIVE_ON_K, EXCLUSIVE_ON_K, False, id="X-X"),
        pytest.param(COMMUTATIVE_ON_X, COMMUTATIVE_ON_X, True, id="I-I"),
        pytest.param(COMMUTATIVE_ON_X, EXCLUSIVE_ON_X, False, id="I-X"),
        pytest.param(EXCLUSIVE_ON_X, COMMUTATIVE_ON_X, False, id="X-I"),
        pytest.param(COMMUTATIVE_ON_X, SHARED_ON_X, False, id="I-S"),
        pytest.param(SHARED_ON_X, COMMUTATIVE_ON_X, False, id="S-I"),
        pytest.param(REFERENCING_P, REFERENCING_P, True, id="R-R"),
        pytest.param(REFERENCING_P, SHARED_ON_P, True, id="R-S"),
        pytest.param(SHARED_ON_P, REFERENCING_P, True, id="S-R"),
        pytest.param(REFERENCING_P, COMMUTATIVE_ON_P, True, id="R-I"),
        pytest.param(COMMUTATIVE_ON_P, REFERENCING_P, True, id="I-R"),
        pytest.param(REFERENCING_P, EXCLUSIVE_ON_P, False, id="R-X"),
        pytest.param(EXCLUSIVE_ON_P, REFERENCING_P, False, id="X-R"),
    ],
)
def test_prepared_locks_against_prepare_and_one_phase(first, second, compatible):
    harness = existing_people()
    writes, reads = first
    voted_yes(harness, prepare(b"t1", *writes, reads=reads))
    writes, reads = second
    step = harness.step(prepare(b"t2", *writes, reads=reads))
    assert isinstance(step.reply, Vote)
    assert step.reply.yes is compatible
    if not compatible:
        assert isinstance(step.reply.error, Conflict)
        assert "is locked by a transaction in flight" in step.reply.reason
        assert b"t2" not in harness.participant.staged
    # A one-phase apply of the second shape meets the same locks (t2's, when it got them,
    # are held by a transaction too, so retire it first).
    if compatible:
        harness.step(Abort(b"t2"))
    one_phase = harness.step(apply(*writes, reads=reads))
    if compatible:
        assert isinstance(one_phase.reply, Applied)
    else:
        assert isinstance(one_phase.reply, Failed)
        assert isinstance(one_phase.reply.error, Conflict)
        assert one_phase.records == []


def test_a_transaction_does_not_conflict_with_itself():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", put("k", {"v": 2}), reads=(read("k", 1),)))
    assert harness.participant.locks[("m", "k")] == {b"t1": EXCLUSIVE}


def test_read_and_commutative_update_of_one_key_take_an_exclusive_lock():
    harness = existing_people()
    voted_yes(
        harness, prepare(b"t1", increment("x", {"n": 1}), reads=(read("x", 1, map_name="c"),))
    )
    assert harness.participant.locks[("c", "x")] == {b"t1": EXCLUSIVE}
    voted_no(harness, prepare(b"t2", increment("x", {"n": 1})))


def test_reference_and_read_of_one_key_take_a_shared_lock():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", reference("p", 1), reads=(read("p", 1, map_name="people"),)))
    assert harness.participant.locks[("people", "p")] == {b"t1": SHARED}


def test_conditional_commutative_update_is_exclusive():
    harness = existing_people()
    update = Write(Op.INCREMENT, "c", "x", b'{"n":1}', Condition("if_exists"))
    voted_yes(harness, prepare(b"t1", update))
    assert harness.participant.locks[("c", "x")] == {b"t1": EXCLUSIVE}
    voted_no(harness, prepare(b"t2", increment("x", {"n": 1})))


def test_update_of_a_guarded_field_is_exclusive():
    participant = Participant(0, guarded_field=lambda map_name, field: field == "bounded")
    harness = Harness(participant)
    voted_yes(harness, prepare(b"t1", increment("x", {"bounded": 1})))
    assert harness.participant.locks[("c", "x")] == {b"t1": EXCLUSIVE}
    voted_no(harness, prepare(b"t2", increment("x", {"bounded": 1})))
    # Unguarded fields still commute.
    voted_yes(harness, prepare(b"t3", increment("y", {"free": 1})))
    voted_yes(harness, prepare(b"t4", increment("y", {"free": 1})))


def test_concurrent_increments_both_commit_and_add_up():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", increment("x", {"n": 2})))
    voted_yes(harness, prepare(b"t2", increment("x", {"n": 3})))
    assert harness.reply(apply(increment("x", {"n": 10}))) == Applied((4,))
    assert harness.reply(Commit(b"t2")) == Applied((5,))
    assert harness.reply(Commit(b"t1")) == Applied((6,))
    assert harness.value("x", "c") == {"n": 15}
    assert harness.participant.locks == {}


# Pre-commit, commit, abort ------------------------------------------------------------------


def test_commit_applies_staged_writes_and_releases_locks():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", put("k", {"v": "new"}), delete("p", map_name="people")))
    pre = harness.step(PreCommit(b"t1"))
    assert pre.reply == Ack()
    assert pre.records[0].kind == RecordKind.PRE_COMMITTED
    assert pre.records[0].meta == {"txn": b"t1".hex()}
    assert harness.participant.staged[b"t1"].state == PRE_COMMITTED

    commit = harness.step(Commit(b"t1"))
    lsn = harness.participant.lsn
    assert commit.reply == Applied((lsn, 0), removed=(1,))
    [record] = commit.records
    assert record.kind == RecordKind.COMMITTED
    assert record.lsn == lsn
    assert record.meta == {"txn": b"t1".hex()}
    assert record.entries == [
        Entry(Op.PUT, "m", "k", b'{"v":"new"}'),
        Entry(Op.DELETE, "people", "p"),
    ]
    assert harness.value("k") == {"v": "new"}
    assert harness.version("k") == lsn
    assert harness.participant.get("people", "p") is None
    assert harness.participant.locks == {}
    assert harness.participant.staged == {}
    assert harness.reply(apply(put("k"))) == Applied((lsn + 1,))


def test_commit_without_pre_commit_is_accepted():
    harness = Harness()
    voted_yes(harness, prepare(b"t1", put("a")))
    assert harness.reply(Commit(b"t1")) == Applied((2,))


def test_duplicate_pre_commit_commit_and_abort_answer_unknown():
    harness = Harness()
    assert harness.step(PreCommit(b"nobody")).reply == Ack(known=False)
    voted_yes(harness, prepare(b"t1", put("a")))
    harness.step(PreCommit(b"t1"))
    again = harness.step(PreCommit(b"t1"))
    assert again.reply == Ack()
    assert again.records == []
    harness.step(Commit(b"t1"))
    lsn = harness.participant.lsn
    for event in (Commit(b"t1"), Abort(b"t1"), PreCommit(b"t1")):
        step = harness.step(event)
        assert step.reply == Ack(known=False)
        assert step.records == []
    assert harness.participant.lsn == lsn
    assert harness.value("a") == {"v": "a"}


def test_abort_discards_staged_writes_and_releases_locks():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", put("k", {"v": "never"}), reference("p", 1)))
    step = harness.step(Abort(b"t1"))
    assert step.reply == Ack()
    assert step.records[0].kind == RecordKind.ABORTED
    assert step.records[0].meta == {"txn": b"t1".hex()}
    assert harness.value("k") == {"v": "k"}
    assert harness.participant.refcounts == {}
    assert harness.participant.locks == {}
    assert harness.participant.staged == {}
    assert harness.step(Abort(b"t1")).reply == Ack(known=False)
    assert harness.step(Commit(b"t1")).reply == Ack(known=False)
    assert harness.value("k") == {"v": "k"}


def test_commit_releases_only_its_own_locks():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", reads=(read("k", 1),)))
    voted_yes(harness, prepare(b"t2", reads=(read("k", 1),)))
    harness.step(Commit(b"t1"))
    assert harness.participant.locks == {("m", "k"): {b"t2": SHARED}}
    voted_no(harness, prepare(b"t3", put("k")))
    harness.step(Abort(b"t2"))
    voted_yes(harness, prepare(b"t3", put("k")))


def test_committed_reference_holds_the_key():
    harness = existing_people()
    voted_yes(harness, prepare(b"t1", reference("p", 1)))
    assert harness.participant.refcounts == {}
    harness.step(Commit(b"t1"))
    assert harness.participant.refcounts == {("people", "p"): 1}
    vote = voted_no(harness, prepare(b"t2", delete("p", map_name="people")))
    assert isinstance(vote.error, FailedPrecondition)
    assert "referenced by 1 value(s)" in vote.reason


def test_read_only_validation_is_not_durable():
    harness = existing_people()
    step = harness.step(prepare(b"t1", reads=(read("k", 1),), durable=False))
    assert step.reply == Vote(True)
    assert step.records == []
    assert harness.participant.locks == {("m", "k"): {b"t1": SHARED}}
    assert isinstance(harness.step(apply(put("k"))).reply, Failed)
    commit = harness.step(Commit(b"t1"))
    assert commit.reply == Ack()
    assert commit.records == []
    assert harness.participant.locks == {}
    voted_yes(harness, prepare(b"t2", reads=(read("k", 1),), durable=False))
    abort = harness.step(Abort(b"t2"))
    assert (abort.reply, abort.records) == (Ack(), [])
    assert harness.participant.locks == {}


# Dropping a map ----------------------------------------------------------------------------


def test_drop_map_removes_its_entries():
    harness = Harness()
    harness.step(apply(put("a"), put("b"), put("z", map_name="other")))
    step = harness.step(DropMap("m"))
    assert step.reply == Ack()
    assert step.records[0].kind == RecordKind.MAP_DROPPED
    assert step.records[0].meta == {"map": "m"}
    assert "m" not in harness.participant.segments
    assert harness.value("z", "other") == {"v": "z"}


def test_drop_map_is_refused_while_keys_are_locked():
    harness = Harness()
    harness.step(apply(put("a")))
    voted_yes(harness, prepare(b"t1", reads=(read("a", 1),)))
    error = harness.error(DropMap("m"))
    assert isinstance(error, FailedPrecondition)
    assert error.field == "map"
    assert "locked by transactions in flight" in str(error)
    assert harness.value("a") == {"v": "a"}
    # Locks on other maps do not matter.
    assert harness.reply(DropMap("other")) == Ack()
    harness.step(Abort(b"t1"))
    assert harness.reply(DropMap("m")) == Ack()
    assert harness.participant.get("m", "a") is None
