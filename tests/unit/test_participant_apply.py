"""Unit tests of one-phase application in grid.participant: versions, dedup, conditions,
reads, commutative updates and reference counts."""

import orjson
import pytest

from grid.entry import value_of
from grid.errors import Conflict, FailedPrecondition, InvalidArgument, ValidationError
from grid.memory.records import Entry, Op, RecordKind
from grid.participant import Applied, Condition, Participant, Write
from grid.schema import Validator, parse_schema
from tests.unit.participant_support import (
    Harness,
    append,
    apply,
    delete,
    increment,
    put,
    read,
    reference,
)


def test_put_persists_then_replies_with_the_lsn_as_version():
    harness = Harness()
    step = harness.step(apply(put("a"), put("b")))
    assert step.reply == Applied((1, 1))
    [record] = step.records
    assert record.kind == RecordKind.APPLIED
    assert record.lsn == 1
    assert record.entries == [
        Entry(Op.PUT, "m", "a", b'{"v":"a"}'),
        Entry(Op.PUT, "m", "b", b'{"v":"b"}'),
    ]
    assert record.meta == {}
    assert harness.participant.lsn == 1
    assert harness.value("a") == {"v": "a"}
    assert harness.version("a") == 1


def test_each_apply_takes_the_next_lsn():
    harness = Harness()
    assert harness.reply(apply(put("a"))) == Applied((1,))
    assert harness.reply(apply(put("a", {"v": 2}))) == Applied((2,))
    assert harness.version("a") == 2
    assert harness.value("a") == {"v": 2}


def test_stored_value_is_the_bytes_received():
    harness = Harness()
    raw = b'{ "spaced" : [1, 2] }'
    harness.step(apply(Write(Op.PUT, "m", "k", raw)))
    entry = harness.participant.get("m", "k")
    assert entry is not None
    assert value_of(entry) == raw


def test_delete_reports_version_zero_and_removes_the_key():
    harness = Harness()
    harness.step(apply(put("a")))
    step = harness.step(apply(delete("a")))
    assert step.reply == Applied((0,), removed=(0,))
    assert step.records[0].entries == [Entry(Op.DELETE, "m", "a")]
    assert harness.participant.get("m", "a") is None
    assert harness.participant.lsn == 2


def test_delete_of_a_missing_key_still_succeeds():
    harness = Harness()
    assert harness.reply(apply(delete("ghost"))) == Applied((0,))


def test_writes_to_one_key_apply_in_order():
    harness = Harness()
    step = harness.step(apply(put("a", {"v": 1}), delete("a"), put("a", {"v": 3})))
    assert step.reply == Applied((1, 0, 1), removed=(1,))
    assert harness.value("a") == {"v": 3}


def test_removed_names_only_deletes_that_found_a_value():
    harness = Harness()
    harness.step(apply(put("a"), put("b")))
    step = harness.step(apply(delete("ghost"), delete("b"), delete("b"), put("c"), delete("a")))
    assert step.reply == Applied((0, 0, 0, 2, 0), removed=(1, 4))


# Request ids ------------------------------------------------------------------------


def test_repeated_request_id_returns_the_first_answer():
    harness = Harness()
    first = harness.step(apply(put("a"), delete("b"), request_id=b"r1"))
    assert first.reply == Applied((1, 0))
    assert first.records[0].meta == {"request": b"r1".hex()}
    harness.step(apply(put("x")))
    again = harness.step(apply(put("a", {"v": "other"}), request_id=b"r1"))
    assert again.reply == Applied((1, 0), replayed=True)
    assert again.records == []
    assert harness.participant.lsn == 2
    assert harness.value("a") == {"v": "a"}


def test_empty_request_id_is_not_deduplicated():
    harness = Harness()
    assert harness.reply(apply(put("a"))) == Applied((1,))
    assert harness.reply(apply(put("a"))) == Applied((2,))


def test_failed_request_is_not_remembered():
    harness = Harness()
    harness.error(apply(put("a", condition=Condition("if_exists")), request_id=b"r"))
    assert harness.reply(apply(put("a"), request_id=b"r")) == Applied((1,))


def test_remembered_outcomes_are_bounded_oldest_first():
    harness = Harness(Participant(0, outcomes_max=2))
    for request in (b"r1", b"r2", b"r3"):
        harness.step(apply(put("a"), request_id=request))
    assert list(harness.participant.outcomes) == [b"r2", b"r3"]
    assert harness.reply(apply(put("a"), request_id=b"r3")) == Applied((3,), replayed=True)
    assert harness.reply(apply(put("a"), request_id=b"r1")) == Applied((4,))


# Conditions -------------------------------------------------------------------------


def test_if_absent():
    harness = Harness()
    assert harness.reply(apply(put("a", condition=Condition("if_absent")))) == Applied((1,))
    error = harness.error(apply(put("a", {"v": 2}, condition=Condition("if_absent"))))
    assert isinstance(error, FailedPrecondition)
    assert (error.field, error.target) == ("key", ("m", "a"))
    assert "if_absent" in str(error)
    assert harness.value("a") == {"v": "a"}
    assert harness.participant.lsn == 1


def test_if_exists():
    harness = Harness()
    error = harness.error(apply(put("a", condition=Condition("if_exists"))))
    assert isinstance(error, FailedPrecondition)
    assert "does not exist (condition if_exists)" in str(error)
    assert harness.participant.get("m", "a") is None
    harness.step(apply(put("a")))
    assert harness.reply(apply(delete("a", condition=Condition("if_exists")))) == Applied(
        (0,), removed=(0,)
    )


def test_if_version():
    harness = Harness()
    harness.step(apply(put("a")))
    harness.step(apply(put("b")))
    error = harness.error(apply(put("a", {"v": 9}, condition=Condition("if_version", 2))))
    assert isinstance(error, FailedPrecondition)
    assert "is at version 1, not 2 (condition if_version)" in str(error)
    ok = harness.reply(apply(put("a", {"v": 9}, condition=Condition("if_version", 1))))
    assert ok == Applied((3,))
    # Version 0 means "absent".
    assert harness.reply(apply(put("new", condition=Condition("if_version", 0)))) == Applied((4,))


def test_failed_condition_writes_nothing_of_the_batch():
    harness = Harness()
    harness.step(apply(put("a")))
    harness.error(apply(put("b"), put("a", condition=Condition("if_absent"))))
    assert harness.participant.get("m", "b") is None
    assert harness.participant.lsn == 1


def test_conditions_see_earlier_writes_of_the_same_batch():
    harness = Harness()
    step = harness.step(apply(put("a"), put("a", {"v": 2}, condition=Condition("if_version", 1))))
    assert step.reply == Applied((1, 1))
    error = harness.error(apply(delete("b"), put("b", condition=Condition("if_exists"))))
    assert isinstance(error, FailedPrecondition)


# Reads ------------------------------------------------------------------------------


def test_read_at_the_current_version_validates():
    harness = Harness()
    harness.step(apply(put("a")))
    step = harness.step(apply(put("b"), reads=(read("a", 1), read("missing", 0))))
    assert step.reply == Applied((2,))


def test_stale_read_is_a_conflict():
    harness = Harness()
    harness.step(apply(put("a")))
    harness.step(apply(put("a")))
    error = harness.error(apply(put("b"), reads=(read("a", 1),)))
    assert isinstance(error, Conflict)
    assert error.status == "ABORTED"
    assert (error.field, error.target) == ("key", ("m", "a"))
    assert "read version 1, now 2" in str(error)
    assert harness.participant.get("m", "b") is None


def test_read_of_a_deleted_key_is_a_conflict():
    harness = Harness()
    harness.step(apply(put("a")))
    harness.step(apply(delete("a")))
    assert isinstance(harness.error(apply(put("b"), reads=(read("a", 1),))), Conflict)


# Increments and appends -----------------------------------------------------------------


def test_increment_creates_and_adds():
    harness = Harness()
    harness.step(apply(increment("x", {"n": 2, "f": 0.5})))
    harness.step(apply(increment("x", {"n": 3, "f": 1})))
    assert harness.value("x", "c") == {"n": 5, "f": 1.5}


def test_increment_keeps_other_fields():
    harness = Harness()
    harness.step(apply(put("x", {"n": 1, "name": "kept"}, map_name="c")))
    step = harness.step(apply(increment("x", {"n": -4})))
    assert harness.value("x", "c") == {"n": -3, "name": "kept"}
    # The log holds the resolved value, so replay never recomputes an increment.
    assert step.records[0].entries[0].op == Op.PUT
    assert orjson.loads(step.records[0].entries[0].value) == {"n": -3, "name": "kept"}


def test_append_creates_and_extends_lists():
    harness = Harness()
    harness.step(apply(append("y", {"items": [1]})))
    harness.step(apply(append("y", {"items": [2, 3], "other": []})))
    assert harness.value("y", "l") == {"items": [1, 2, 3], "other": []}


def test_updates_in_one_batch_accumulate():
    harness = Harness()
    step = harness.step(apply(increment("x", {"n": 1}), increment("x", {"n": 1})))
    assert step.reply == Applied((1, 1))
    assert harness.value("x", "c") == {"n": 2}


@pytest.mark.parametrize(
    ("stored", "update", "message"),
    [
        (None, increment("x", {"n": "1"}), "must be a number"),
        (None, increment("x", {"n": True}), "must be a number"),
        ({"n": "text"}, increment("x", {"n": 1}), "cannot increment 'c/x' field 'n': it holds str"),
        ({"n": True}, increment("x", {"n": 1}), "it holds bool"),
        ([1, 2], increment("x", {"n": 1}), "holds a list, not an object"),
        (None, increment("x", {}), "must be a non-empty object"),
        (None, Write(Op.INCREMENT, "c", "x", b"[1]"), "must be a non-empty object"),
        (None, Write(Op.INCREMENT, "c", "x", b"{nope"), "is not valid JSON"),
        (None, append("x", {"items": 1}, map_name="c"), "must be a list of items"),
        ({"items": "s"}, append("x", {"items": [1]}, map_name="c"), "cannot append"),
    ],
)
def test_update_type_errors_are_invalid_arguments(stored, update, message):
    harness = Harness()
    if stored is not None:
        harness.step(apply(put("x", stored, map_name="c")))
    lsn = harness.participant.lsn
    error = harness.error(apply(update))
    assert isinstance(error, InvalidArgument)
    assert message in str(error)
    assert harness.participant.lsn == lsn


def test_updates_are_validated_against_the_schema():
    validator = Validator(parse_schema({"n": {"type": "int", "max": 3}}))
    participant = Participant(0, validators=lambda name: validator if name == "c" else None)
    harness = Harness(participant)
    assert harness.reply(apply(increment("x", {"n": 3}))) == Applied((1,))
    error = harness.error(apply(increment("x", {"n": 1})))
    assert isinstance(error, ValidationError)
    assert (error.field, error.rule) == ("n", "max")
    assert harness.value("x", "c") == {"n": 3}
    # Maps without a validator take anything.
    assert harness.reply(apply(increment("x", {"n": 100}, map_name="free"))) == Applied((2,))


def test_sketch_add_uses_the_sketch_hook():
    seen = []

    def sketch_apply(map_name, current, items):
        seen.append((map_name, current, items))
        return (current or b"") + items

    harness = Harness(Participant(0, sketch_apply=sketch_apply))
    harness.step(apply(Write(Op.SKETCH_ADD, "s", "k", b"ab")))
    harness.step(apply(Write(Op.SKETCH_ADD, "s", "k", b"cd")))
    entry = harness.participant.get("s", "k")
    assert entry is not None
    assert value_of(entry) == b"abcd"
    assert seen == [("s", None, b"ab"), ("s", b"ab", b"cd")]


def test_sketch_add_without_a_sketch_map_is_refused():
    harness = Harness()
    error = harness.error(apply(Write(Op.SKETCH_ADD, "plain", "k", b"x")))
    assert isinstance(error, InvalidArgument)
    assert "not a sketch map" in str(error)


# References -----------------------------------------------------------------------------


def test_reference_needs_the_key_to_exist():
    harness = Harness()
    error = harness.error(apply(reference("p1", 1)))
    assert isinstance(error, FailedPrecondition)
    assert "referenced key 'people/p1' does not exist" in str(error)
    assert harness.participant.refcounts == {}


def test_referenced_key_cannot_be_deleted_until_released():
    harness = Harness()
    harness.step(apply(put("p1", map_name="people")))
    step = harness.step(apply(put("rex", {"owner": "p1"}, map_name="pets"), reference("p1", 1)))
    assert step.reply == Applied((2, 1))
    assert step.records[0].entries[1] == Entry(Op.REFERENCE, "people", "p1", b"1")
    assert harness.participant.refcounts == {("people", "p1"): 1}
    harness.step(apply(reference("p1", 1)))
    assert harness.participant.refcounts == {("people", "p1"): 2}

    error = harness.error(apply(delete("p1", map_name="people")))
    assert isinstance(error, FailedPrecondition)
    assert "referenced by 2 value(s)" in str(error)
    assert harness.participant.get("people", "p1") is not None

    harness.step(apply(reference("p1", -1)))
    harness.error(apply(delete("p1", map_name="people")))
    harness.step(apply(reference("p1", -1)))
    assert harness.participant.refcounts == {}
    assert harness.reply(apply(delete("p1", map_name="people"))) == Applied((0,), removed=(0,))


def test_overwriting_a_referenced_key_is_allowed():
    harness = Harness()
    harness.step(apply(put("p1", map_name="people")))
    harness.step(apply(reference("p1", 1)))
    assert harness.reply(apply(put("p1", {"v": 2}, map_name="people"))) == Applied((3,))


def test_reference_added_and_delete_in_one_batch_is_refused():
    harness = Harness()
    harness.step(apply(put("p1", map_name="people")))
    error = harness.error(apply(reference("p1", 1), delete("p1", map_name="people")))
    assert isinstance(error, FailedPrecondition)
    assert harness.participant.refcounts == {}


def test_reference_to_a_key_created_in_the_same_batch():
    harness = Harness()
    step = harness.step(apply(put("p1", map_name="people"), reference("p1", 1)))
    assert step.reply == Applied((1, 1))
    assert harness.participant.refcounts == {("people", "p1"): 1}


def test_release_and_delete_in_one_batch():
    harness = Harness()
    harness.step(apply(put("p1", map_name="people")))
    harness.step(apply(reference("p1", 1)))
    step = harness.step(apply(reference("p1", -1), delete("p1", map_name="people")))
    assert step.reply == Applied((1, 0), removed=(1,))
    assert harness.participant.refcounts == {}
    assert harness.participant.get("people", "p1") is None
