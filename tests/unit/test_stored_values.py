"""What may be stored: well-formed tags and 64-bit integers only, so every stored value
reads back as written; increments stay in range whatever order concurrent ones commit."""

from typing import Any

import orjson
import pytest

from grid import values
from grid.errors import InvalidArgument
from grid.participant import Applied, Commit, Failed, PreCommit, Vote
from tests.unit.participant_support import Harness, apply, increment, prepare

INT_MAX = 2**63 - 1


def refusal(raw: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        values.check_document(raw, orjson.loads(raw))
    return caught.value


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        ({"$ts": "yesterday"}, "value", "malformed timestamp tag"),
        ({"a": {"$bytes": "abc"}}, "value.a", "malformed bytes tag"),
        ([1, {"$bytes": "!!!!"}], "value[1]", "is not base64"),
        ({"a": [{"$ts": 5}]}, "value.a[0]", "is not ISO 8601"),
    ],
)
def test_malformed_tags_are_refused_naming_where(document: Any, field: str, fragment: str):
    error = refusal(orjson.dumps(document))
    assert error.field == field
    assert fragment in error.message


@pytest.mark.parametrize(
    "raw",
    [
        b"18446744073709551616",
        b'{"a": [1, 1' + b"0" * 30 + b"]}",
        b"-9223372036854775809",
        # A large value is searched another way (RE2): the same rule holds.
        b'{"s": "' + b"x" * 10_000 + b'", "n": 18446744073709551616}',
    ],
)
def test_integers_beyond_64_bits_are_refused(raw: bytes):
    assert "outside the 64-bit range" in refusal(raw).message


@pytest.mark.parametrize(
    "document",
    [
        {"$ts": "2026-11-01T10:00:00+00:00", "note": "two keys: plain data"},
        {"$bytes": "aGVsbG8="},
        {"id": "12345678901234567890123", "big": 1e30, "edge": INT_MAX, "low": -(2**63)},
        [1.5e-3000000000000000000000, "\\"],
    ],
)
def test_well_formed_values_pass(document: Any):
    raw = orjson.dumps(document)
    values.check_document(raw, orjson.loads(raw))


def test_an_increment_past_64_bits_is_refused():
    harness = Harness()
    assert isinstance(harness.reply(apply(increment("x", {"n": INT_MAX - 1}))), Applied)
    error = harness.error(apply(increment("x", {"n": 2})))
    assert isinstance(error, InvalidArgument)
    assert error.field == "n"
    assert harness.value("x", "c") == {"n": INT_MAX - 1}
    assert isinstance(harness.reply(apply(increment("x", {"n": 1}))), Applied)
    assert harness.value("x", "c") == {"n": INT_MAX}


def test_increments_in_flight_count_towards_the_range():
    # Two increments each fit on their own; prepared together, no commit order may
    # overflow, so the second is refused while the first is in flight.
    harness = Harness()
    harness.reply(apply(increment("x", {"n": INT_MAX - 10})))
    assert harness.reply(prepare(b"t1", increment("x", {"n": 6}))) == Vote(True)
    vote = harness.reply(prepare(b"t2", increment("x", {"n": 6})))
    assert isinstance(vote, Vote) and not vote.yes
    assert "64-bit integer range with the increments in flight" in vote.reason
    assert harness.reply(prepare(b"t3", increment("x", {"n": -20}))) == Vote(True)
    harness.reply(PreCommit(b"t1"))
    assert isinstance(harness.reply(Commit(b"t1")), Applied)
    assert harness.value("x", "c") == {"n": INT_MAX - 4}
    reply = harness.reply(apply(increment("x", {"n": 4})))
    assert not isinstance(reply, Failed), reply
    assert harness.value("x", "c") == {"n": INT_MAX}
