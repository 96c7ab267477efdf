"""The SDK's pipeline API: the decorator's checks, the event object, schemas, the surface."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

import shoal.pipelines
from shoal.pipelines import Event, collecting, pipeline, register_schema, registered_schemas

EXPORTED = [
    "MODES",
    "ON_ERROR",
    "Event",
    "PipelineSpec",
    "PipelineTransaction",
    "pipeline",
    "register_schema",
    "registered_schemas",
]


def apply(event, tx):
    tx.put("orders", event["order_id"], event)


def test_exports_are_pinned():
    assert shoal.pipelines.__all__ == EXPORTED


def test_the_module_imports_only_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); import shoal.pipelines; "
        "print(sorted(set(sys.modules) - before))"
    )
    # Importing the package runs shoal/__init__ (the client); measure the module alone.
    loaded = subprocess.run(
        [sys.executable, "-c", "import shoal, sys; " + code.replace("import sys; ", "")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modules = eval(loaded)
    third_party = [name for name in modules if name.split(".")[0] not in sys.stdlib_module_names]
    assert third_party == ["shoal.pipelines"]


def test_the_decorator_records_a_spec_with_defaults():
    with collecting() as found:
        decorated = pipeline(topic="orders", group="orders-to-grid")(apply)
    assert decorated is apply
    (spec,) = found.pipelines
    assert apply.__shoal_pipeline__ is spec
    assert spec.name == "orders-to-grid"
    assert spec.topics == ("orders",)
    assert spec.dead_letter_topic == "orders.dlq"
    assert (spec.batch_max, spec.batch_ms, spec.mode, spec.on_error) == (
        5000,
        100,
        "exactly_once",
        "dead_letter",
    )
    assert spec.module == __name__


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"topic": "bad topic"}, "topic must match"),
        ({"topic": []}, "at least one topic"),
        ({"group": ""}, "group must match"),
        ({"mode": "twice"}, "mode must be one of"),
        ({"on_error": "ignore"}, "on_error must be one of"),
        ({"batch_max": 0}, "batch_max must be an integer of at least 1"),
        ({"batch_ms": True}, "batch_ms must be an integer"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"dead_letter_topic": "orders"}, "must differ"),
        ({"dedup_key": ""}, "dedup_key"),
        ({"start": "middle"}, "start must be one of"),
        ({"schema": 5}, "schema must be"),
    ],
)
def test_bad_settings_are_refused_when_declared(settings, message):
    arguments = {"topic": "orders", "group": "g", **settings}
    with pytest.raises(ValueError, match=message):
        pipeline(**arguments)


def test_the_function_must_take_event_and_tx():
    with pytest.raises(TypeError, match="two arguments"):
        pipeline(topic="orders", group="g")(lambda event: None)


def test_events_offer_mapping_access_and_their_origin():
    event = Event(
        {"order_id": "o-1", "amount": 5},
        topic="orders",
        partition=2,
        offset=40,
        timestamp_ms=1_700_000_000_000,
        key=b"o-1",
        headers=[("a", b"1"), ("a", b"2"), ("b", b"3")],
    )
    assert event["order_id"] == "o-1"
    assert dict(event) == {"order_id": "o-1", "amount": 5}
    assert event.get("missing", 0) == 0
    assert "amount" in event and len(event) == 2
    assert (event.topic, event.partition, event.offset) == ("orders", 2, 40)
    assert event.key == "o-1" and event.key_bytes == b"o-1"
    assert event.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert event.headers == {"a": b"2", "b": b"3"}
    assert event.header_items == (("a", b"1"), ("a", b"2"), ("b", b"3"))
    assert event.to_dict() == {"order_id": "o-1", "amount": 5}
    assert Event({}, topic="t", partition=0, offset=0, timestamp_ms=0).key is None


def test_schemas_register_once_and_are_collected():
    with collecting() as found:
        register_schema("spec_test_event", {"id": "string"})
        register_schema("spec_test_event", {"id": "string"})
    assert found.schemas == {"spec_test_event": {"id": "string"}}
    assert registered_schemas()["spec_test_event"] == {"id": "string"}
    with pytest.raises(ValueError, match="already registered differently"):
        register_schema("spec_test_event", {"id": "int"})
    with pytest.raises(ValueError, match="not JSON-compatible"):
        register_schema("spec_test_other", {"id": object()})
