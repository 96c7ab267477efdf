"""The batch transaction user code writes through: layers per event, coalescing, checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from coordinator.pipelines.transaction import BatchTransaction, encode_value
from grid.errors import InvalidArgument, NotFound, ValidationError
from grid.memory.records import Op
from shoal.pipelines import Event
from tests.support.pipelines import open_node


@pytest.fixture
def node(tmp_path: Path):
    created = open_node(tmp_path / "data")
    created.create_map("orders")
    created.create_map("totals")
    created.create_map("accounts", b'{"owner": "string", "balance": {"type": "int", "min": 0}}')
    yield created
    created.close()


def commit(node, transaction: BatchTransaction) -> None:
    node.transactions.commit(b"t" * 16, transaction.reads(), transaction.writes())


def test_reads_see_the_batch_and_the_event_writes(node):
    node.keyvalue.put("totals", "eu", b'{"total": 10}')
    transaction = BatchTransaction(node)
    transaction.begin_event()
    transaction.increment("totals", "eu", "total", 5)
    assert transaction.get("totals", "eu") == {"total": 15}
    transaction.put("orders", "o1", {"amount": 3})
    assert transaction.get("orders", "o1") == {"amount": 3}
    transaction.end_event(True)
    transaction.begin_event()
    transaction.increment("totals", "eu", {"total": 1, "count": 1})
    assert transaction.get("totals", "eu") == {"total": 16, "count": 1}
    assert transaction.get_many("orders", ["o1", "o2"]) == {"o1": {"amount": 3}}
    transaction.end_event(True)
    # The stored value was read once, and only that read is validated at commit.
    assert [(read.map, read.key) for read in transaction.reads()] == [
        ("totals", "eu"),
        ("orders", "o2"),
    ]
    commit(node, transaction)
    assert orjson.loads(node.keyvalue.get("totals", "eu")[:-8]) == {"total": 16, "count": 1}


def test_a_failed_event_leaves_no_trace(node):
    transaction = BatchTransaction(node)
    transaction.begin_event()
    transaction.put("orders", "o1", {"amount": 1})
    transaction.end_event(True)
    transaction.begin_event()
    transaction.put("orders", "o1", {"amount": 999})
    transaction.increment("totals", "eu", "total", 1)
    transaction.get("orders", "o9")
    transaction.end_event(False)
    assert transaction.get("orders", "o1") == {"amount": 1}
    # Only the put of o1: the failed event's writes and its read of o9 are gone.
    assert transaction.size == 1
    assert {write.key for write in transaction.writes()} == {"o1"}


def test_writes_coalesce_as_events_join(node):
    transaction = BatchTransaction(node)
    for amount in (1, 2, 3):
        transaction.begin_event()
        transaction.increment("totals", "eu", "total", amount)
        transaction.append("orders", "log", "items", [amount])
        transaction.put("orders", f"o{amount}", {"amount": amount})
        transaction.put("orders", "latest", {"amount": amount})
        transaction.end_event(True)
    writes = {(write.map, write.key): write for write in transaction.writes()}
    assert len(transaction.writes()) == 6
    assert writes[("totals", "eu")].op == Op.INCREMENT
    assert orjson.loads(writes[("totals", "eu")].value) == {"total": 6}
    assert orjson.loads(writes[("orders", "log")].value) == {"items": [1, 2, 3]}
    assert orjson.loads(writes[("orders", "latest")].value) == {"amount": 3}
    assert transaction.size == 6


def test_conditional_writes_are_kept_in_order(node):
    node.keyvalue.put("orders", "o1", b'{"amount": 1}')
    transaction = BatchTransaction(node)
    transaction.begin_event()
    transaction.put("orders", "o1", {"amount": 2}, if_version=1)
    transaction.put("orders", "o1", {"amount": 3})
    transaction.end_event(True)
    assert [write.condition is not None for write in transaction.writes()] == [True, False]


def test_bad_writes_fail_at_once(node):
    transaction = BatchTransaction(node)
    transaction.begin_event()
    with pytest.raises(NotFound):
        transaction.put("nope", "k", {})
    with pytest.raises(InvalidArgument, match="belongs to the system"):
        transaction.put("__offsets", "k", {})
    with pytest.raises(ValidationError, match="below the minimum"):
        transaction.put("accounts", "a", {"owner": "A", "balance": -1})
    with pytest.raises(InvalidArgument, match="must be a number"):
        transaction.increment("totals", "eu", "total", "lots")
    with pytest.raises(InvalidArgument, match="only int and float fields increment"):
        transaction.increment("accounts", "a", "owner", 1)
    with pytest.raises(InvalidArgument, match="at most one of"):
        transaction.put("orders", "o", {}, if_absent=True, if_exists=True)
    with pytest.raises(InvalidArgument, match="not a sketch map"):
        transaction.sketch_add("orders", "o", "item")
    with pytest.raises(InvalidArgument, match="cannot be stored"):
        transaction.put("orders", "o", {"x": object()})
    with pytest.raises(InvalidArgument, match="key must be a non-empty string"):
        transaction.put("orders", "", {})


def test_values_travel_as_the_sdk_sends_them():
    instant = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = Event({"a": 1}, topic="t", partition=0, offset=0, timestamp_ms=0)
    assert orjson.loads(encode_value({"at": instant, "raw": b"\x00", "event": event})) == {
        "at": {"$ts": "2024-01-02T03:04:05+00:00"},
        "raw": {"$bytes": "AA=="},
        "event": {"a": 1},
    }
    assert orjson.loads(encode_value(event)) == {"a": 1}
