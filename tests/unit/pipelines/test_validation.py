"""Validation and the dead-letter format: every rejection names stage, rule, field, message."""

from __future__ import annotations

import pytest

from coordinator.pipelines.deadletter import (
    HEADER_FIELD,
    HEADER_MESSAGE,
    HEADER_PIPELINE,
    HEADER_RULE,
    HEADER_SOURCE,
    HEADER_STAGE,
    HEADER_TIMESTAMP,
    DeadLetter,
    outbox_key,
    reasons_of,
)
from coordinator.pipelines.validation import (
    EventValidator,
    Rejection,
    decode_payload,
    dedup_key_of,
    missing_reference,
    rejection_from_error,
)
from grid.errors import FailedPrecondition, ValidationError
from grid.schema import parse_schema

ORDER = parse_schema(
    {
        "order_id": {"type": "string", "required": True, "pattern": "^o-[0-9]+$"},
        "region": {"type": "string", "enum": ["eu", "us"], "default": "eu"},
        "amount": {"type": "int", "min": 0, "max": 1000},
        "customer": {"type": "string", "ref": "customers"},
    }
)


def test_payloads_that_are_not_json_are_rejected_at_decode():
    assert decode_payload(b'{"a": 1}') == ({"a": 1}, None)
    document, rejection = decode_payload(b"{oops")
    assert document is None
    assert rejection is not None
    assert (rejection.stage, rejection.rule, rejection.field) == ("decode", "json", "$")
    assert "not JSON" in rejection.message
    assert decode_payload(None)[1] == Rejection("decode", "json", "$", "the record has no value")


def test_the_dedup_key_is_the_named_field_as_text():
    assert dedup_key_of({"id": "e1"}, "id") == ("e1", None)
    assert dedup_key_of({"id": 7}, "id") == ("7", None)
    for document in ({}, {"id": None}, {"id": [1]}, ["id"]):
        key, rejection = dedup_key_of(document, "id")
        assert key is None
        assert rejection is not None and (rejection.rule, rejection.field) == ("dedup_key", "id")


@pytest.mark.parametrize(
    ("document", "rule", "field"),
    [
        ({"region": "eu"}, "required", "order_id"),
        ({"order_id": "x-1"}, "pattern", "order_id"),
        ({"order_id": "o-1", "region": "mars"}, "enum", "region"),
        ({"order_id": "o-1", "amount": -1}, "min", "amount"),
        ({"order_id": "o-1", "amount": 5000}, "max", "amount"),
        ({"order_id": "o-1", "amount": "ten"}, "type", "amount"),
        ({"order_id": "o-1", "colour": "red"}, "unknown_field", "colour"),
        (["not", "an", "object"], "type", "$"),
    ],
)
def test_schema_failures_become_rejections_naming_rule_and_field(document, rule, field):
    validator = EventValidator(ORDER, "order_event")
    checked, rejection = validator.check(document)
    assert checked is None
    assert rejection is not None
    assert (rejection.stage, rejection.rule, rejection.field) == ("validate", rule, field)
    assert rejection.message


def test_a_valid_event_gets_its_defaults_and_lists_its_references():
    validator = EventValidator(ORDER, "order_event")
    checked, rejection = validator.check({"order_id": "o-1", "customer": "c9"})
    assert rejection is None
    assert checked == {"order_id": "o-1", "customer": "c9", "region": "eu"}
    assert validator.has_references
    assert validator.references(checked) == [("customer", "customers", "c9")]
    assert validator.references({"order_id": "o-2"}) == []
    assert missing_reference("customer", "customers", "c9") == Rejection(
        "validate", "ref", "customer", "'c9' is not a key of map 'customers'"
    )


def test_exceptions_become_rejections():
    assert rejection_from_error(ZeroDivisionError("division by zero"), "apply") == Rejection(
        "apply", "exception", "", "ZeroDivisionError: division by zero"
    )
    rejected = rejection_from_error(ValidationError("balance", "min", "-1 is below 0"), "apply")
    assert (rejected.rule, rejected.field) == ("min", "balance")
    failed = rejection_from_error(FailedPrecondition("'m/k' exists", field="m/k"), "commit")
    assert (failed.stage, failed.rule, failed.field) == ("commit", "failed_precondition", "m/k")


def test_dead_letters_keep_the_original_and_add_reason_headers():
    letter = DeadLetter(
        pipeline="orders",
        topic="orders",
        partition=3,
        offset=41,
        timestamp_ms=1_700_000_000_000,
        key=b"o-1",
        value=b'{"order_id": "o-1", "amount": -1}',
        headers=(("traceparent", b"00-abc"), (HEADER_RULE, b"stale")),
        rejection=Rejection("validate", "min", "amount", "-1 is below the minimum 0"),
    )
    headers = letter.kafka_headers()
    assert headers[0] == ("traceparent", b"00-abc")
    assert reasons_of(headers) == {
        HEADER_PIPELINE: "orders",
        HEADER_STAGE: "validate",
        HEADER_RULE: "min",
        HEADER_FIELD: "amount",
        HEADER_MESSAGE: "-1 is below the minimum 0",
        HEADER_SOURCE: "orders/3/41",
        HEADER_TIMESTAMP: "1700000000000",
    }
    # An older reason header on the original (a re-processed dead letter) is replaced.
    assert [value for name, value in headers if name == HEADER_RULE] == [b"min"]
    import orjson

    assert DeadLetter.from_json(orjson.loads(letter.to_json())) == letter
    assert outbox_key("g", "orders", 3, 41) == "g/orders/3/00000000000000000041"


def test_dead_letters_of_records_without_key_or_value_round_trip():
    import orjson

    letter = DeadLetter("p", "t", 0, 0, 0, None, None, (), Rejection("decode", "json", "$", "no"))
    assert DeadLetter.from_json(orjson.loads(letter.to_json())) == letter
