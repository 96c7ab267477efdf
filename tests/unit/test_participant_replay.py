"""Unit tests of grid.participant recovery: replaying the persisted records, and the
checkpoint state (state_meta / restore_meta)."""

import pytest

from grid.memory.records import Record, RecordKind, decode_record
from grid.participant import (
    ABORTED,
    PENDING,
    PRE_COMMITTED,
    Abort,
    Ack,
    Applied,
    CasStatus,
    Commit,
    Condition,
    CreateStatus,
    DropMap,
    Event,
    ForgetStatus,
    Participant,
    PreCommit,
    ReadOutcome,
    Vote,
)
from tests.unit.participant_support import (
    Harness,
    append,
    apply,
    delete,
    increment,
    prepare,
    put,
    read,
    reference,
    state_of,
)


def busy_harness() -> Harness:
    """A participant that has been through every kind of step."""
    harness = Harness()
    steps: list[Event] = [
        apply(put("a"), put("b"), request_id=b"r1"),
        apply(delete("b"), delete("ghost"), request_id=b"r-delete"),
        apply(increment("x", {"n": 2}), append("y", {"items": [1]}), request_id=b"r2"),
        apply(put("p1", map_name="people"), put("p2", map_name="people")),
        apply(put("rex", {"owner": "p1"}, map_name="pets"), reference("p1", 1), request_id=b"r3"),
        prepare(b"t1", put("c", condition=Condition("if_absent")), reads=(read("a", 1),)),
        prepare(b"t2", increment("x", {"n": 5})),
        PreCommit(b"t2"),
        Commit(b"t2"),
        prepare(b"t3", put("d"), delete("a", condition=Condition("if_version", 1))),
        Abort(b"t3"),
        prepare(b"t4", reference("p2", 1), increment("x", {"n": 1})),
        PreCommit(b"t4"),
        prepare(b"t5", reads=(read("rex", 5, map_name="pets"),), durable=True),
        CreateStatus(b"s1", (0, 1), 5_000, 10),
        CasStatus(b"s1", PENDING, PRE_COMMITTED, 20),
        CreateStatus(b"s2", (0,), 6_000, 30),
        CasStatus(b"s2", PENDING, ABORTED, 40),
        ForgetStatus(b"s2"),
        CreateStatus(b"s3", (2,), 7_000, 50),
        apply(put("gone", map_name="temporary")),
        DropMap("temporary"),
        prepare(b"t6", reads=(read("a", 1),), durable=False),
    ]
    for event in steps:
        harness.step(event)
    return harness


def test_busy_harness_reached_the_interesting_states():
    participant = busy_harness().participant
    assert set(participant.staged) == {b"t1", b"t4", b"t5", b"t6"}
    assert participant.staged[b"t4"].state == PRE_COMMITTED
    assert participant.refcounts == {("people", "p1"): 1}
    assert set(participant.statuses) == {b"s1", b"s3"}
    assert "temporary" not in participant.segments


def test_replaying_every_record_reproduces_the_state():
    harness = busy_harness()
    assert state_of(harness.replayed()) == state_of(harness.participant)


def test_replayed_participant_behaves_the_same():
    harness = busy_harness()
    replayed = Harness(harness.replayed())
    for subject in (harness, replayed):
        # Dedup answers survive recovery.
        assert subject.reply(apply(put("a", {"v": 0}), request_id=b"r1")) == Applied(
            (1, 1), replayed=True
        )
        # Locks of prepared transactions survive recovery.
        vote = subject.reply(prepare(b"t9", put("c")))
        assert isinstance(vote, Vote)
        assert not vote.yes
        # The staged writes commit after recovery too.
        assert isinstance(subject.reply(Commit(b"t1")), Applied)
        assert subject.value("c") == {"v": "c"}
        assert isinstance(subject.reply(Commit(b"t4")), Applied)
        assert subject.value("x", "c") == {"n": 8}
    assert state_of(replayed.participant) == state_of(harness.participant)


def test_replayed_reference_outcomes_match_the_first_answer():
    harness = Harness()
    harness.step(apply(put("p1", map_name="people")))
    first = harness.reply(
        apply(put("rex", {"owner": "p1"}, map_name="pets"), reference("p1", 1), request_id=b"r")
    )
    assert first == Applied((2, 1))
    replayed = Harness(harness.replayed())
    assert replayed.reply(apply(request_id=b"r")) == Applied((2, 1), replayed=True)


def test_replayed_delete_answers_keep_which_deletes_removed_a_value():
    harness = Harness()
    harness.step(apply(put("a")))
    first = harness.reply(apply(delete("ghost"), delete("a"), request_id=b"r"))
    assert first == Applied((0, 0), removed=(1,))
    for recovered in (harness.replayed(), restored(harness.participant)):
        assert Harness(recovered).reply(apply(delete("a"), request_id=b"r")) == Applied(
            (0, 0), replayed=True, removed=(1,)
        )


def test_a_commit_answer_is_remembered_by_transaction_id():
    harness = Harness()
    harness.step(apply(put("a"), put("b")))
    harness.step(prepare(b"t1", put("a", {"v": 2}), delete("b"), delete("ghost")))
    committed = harness.reply(Commit(b"t1"))
    assert committed == Applied((3, 0, 0), removed=(1,))
    assert harness.reply(ReadOutcome(b"t1")) == Applied((3, 0, 0), replayed=True, removed=(1,))
    assert harness.reply(ReadOutcome(b"unknown")) == Ack(known=False)
    for recovered in (harness.replayed(), restored(harness.participant)):
        assert Harness(recovered).reply(ReadOutcome(b"t1")) == Applied(
            (3, 0, 0), replayed=True, removed=(1,)
        )


def test_checkpoints_from_before_removed_deletes_still_restore():
    harness = Harness()
    harness.step(apply(put("a"), request_id=b"r"))
    meta = harness.participant.state_meta()
    meta["outcomes"] = [[request, versions] for request, versions, _ in meta["outcomes"]]
    recovered = Participant(0)
    recovered.restore_meta(meta)
    assert Harness(recovered).reply(apply(put("a"), request_id=b"r")) == Applied(
        (1,), replayed=True
    )


def test_replaying_twice_changes_nothing():
    harness = busy_harness()
    twice = harness.replayed()
    for payload in harness.log:
        twice.replay(decode_record(payload))
    assert state_of(twice) == state_of(harness.participant)


def test_replay_skips_records_already_reflected():
    harness = Harness()
    harness.step(apply(put("a")))
    harness.step(apply(delete("a")))
    participant = harness.replayed()
    stale = Record(RecordKind.APPLIED, 1, {}, decode_record(harness.log[0]).entries)
    participant.replay(stale)
    assert participant.get("m", "a") is None
    assert participant.lsn == 2


def test_records_older_than_a_checkpoint_do_not_revive_status_records():
    # A log the checkpoint already covers can be left behind by a crash between
    # writing a checkpoint and removing the logs it replaced.
    harness = Harness()
    harness.step(CreateStatus(b"s", (0,), 5_000, 10))
    harness.step(CasStatus(b"s", PENDING, ABORTED, 20))
    harness.step(ForgetStatus(b"s"))
    recovered = Participant(0)
    recovered.restore_meta(harness.participant.state_meta())
    recovered.replay(decode_record(harness.log[0]))
    assert recovered.statuses == {}
    assert recovered.lsn == 3


def test_replay_of_a_checkpointed_prefix_after_restore_changes_nothing():
    harness = busy_harness()
    recovered = restored(harness.participant)
    for payload in harness.log[: len(harness.log) // 2]:
        recovered.replay(decode_record(payload))
    assert state_of(recovered) == state_of(harness.participant)


def restored(participant: Participant) -> Participant:
    """A fresh participant given the entries and state_meta, as a checkpoint would."""
    fresh = Participant(participant.partition)
    for name, segment in participant.segments.items():
        fresh.segment(name).entries.update(segment.entries)
    fresh.restore_meta(participant.state_meta())
    return fresh


def test_state_meta_round_trip():
    harness = busy_harness()
    assert state_of(restored(harness.participant)) == state_of(harness.participant)


def test_state_meta_leaves_out_read_only_validations():
    meta = busy_harness().participant.state_meta()
    assert {item["txn"] for item in meta["staged"]} == {b"t1".hex(), b"t4".hex(), b"t5".hex()}
    t4 = next(item for item in meta["staged"] if item["txn"] == b"t4".hex())
    assert t4["state"] == PRE_COMMITTED
    assert meta["partition"] == 0
    assert meta["refcounts"] == [["people", "p1", 1]]


def test_state_meta_is_plain_json():
    import orjson

    meta = busy_harness().participant.state_meta()
    assert orjson.loads(orjson.dumps(meta)) == meta


def test_checkpoint_then_log_suffix_reproduces_the_state():
    harness = busy_harness()
    middle = restored(harness.participant)
    later = Harness(middle)
    original = Harness(harness.participant)
    for subject in (original, later):
        subject.step(Commit(b"t1"))
        subject.step(apply(increment("x", {"n": 1})))
        subject.step(CasStatus(b"s1", PRE_COMMITTED, "committed", 60))
    recovered = restored(harness.participant)
    for payload in later.log:
        recovered.replay(decode_record(payload))
    assert state_of(recovered) == state_of(later.participant)
    assert state_of(later.participant) == state_of(original.participant)


@pytest.mark.parametrize("cut", [1, 5, 9, 14, 20])
def test_replay_of_any_prefix_matches_the_state_at_that_point(cut):
    steps: list[Event] = [
        apply(put("a"), request_id=b"r1"),
        prepare(b"t1", put("b"), reads=(read("a", 1),)),
        PreCommit(b"t1"),
        CreateStatus(b"s", (0,), 1, 1),
        Commit(b"t1"),
        apply(increment("x", {"n": 1})),
        prepare(b"t2", put("x", {"n": 0}, map_name="c")),
        Abort(b"t2"),
        CasStatus(b"s", PENDING, ABORTED, 2),
        ForgetStatus(b"s"),
        apply(put("p", map_name="people")),
        apply(reference("p", 1)),
        prepare(b"t3", reference("p", -1)),
        Commit(b"t3"),
        apply(delete("p", map_name="people")),
        DropMap("c"),
        prepare(b"t4", delete("a")),
        PreCommit(b"t4"),
        apply(put("z")),
        CreateStatus(b"s2", (0,), 1, 1),
    ]
    harness = Harness()
    for event in steps[:cut]:
        harness.step(event)
    assert state_of(harness.replayed()) == state_of(harness.participant)
