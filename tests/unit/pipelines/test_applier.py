"""The batch applier against a grid in the test process (no Kafka): exactly-once commits,
dedup, dead letters, isolation of refused events, cuts, fencing and trace context."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from coordinator.pipelines.deadletter import DEAD_LETTERS_MAP, outbox_key
from coordinator.pipelines.offsets import OFFSETS_MAP, OffsetsRecord, offsets_key
from coordinator.pipelines.progress import BLOCKED
from grid.entry import value_of, version_of
from tests.support.pipelines import (
    Record,
    applier_for,
    batch_of,
    build_pipeline,
    declare,
    open_node,
    records,
)

ORDER_SCHEMA = {
    "id": {"type": "string", "required": True},
    "region": {"type": "string", "enum": ["eu", "us"]},
    "amount": {"type": "int", "min": 0},
    "customer": {"type": "string", "ref": "customers"},
}
GROUP = "events-to-grid"


def orders(event, tx):
    tx.put("orders", event["id"], event)
    tx.increment("totals", event["region"], {"amount": event["amount"], "count": 1})


def order(number: int, region: str = "eu", amount: int = 1, **extra) -> dict:
    return {"id": f"e{number}", "region": region, "amount": amount, **extra}


@pytest.fixture
def node(tmp_path: Path):
    created = open_node(tmp_path / "data")
    for name in ("orders", "totals", "customers"):
        created.create_map(name)
    yield created
    created.close()


def value(node, map_name: str, key: str):
    entry = node.keyvalue.get(map_name, key)
    return None if entry is None else orjson.loads(value_of(entry))


def offsets(node, partition: int, topic: str = "events") -> OffsetsRecord:
    entry = node.keyvalue.get(OFFSETS_MAP, offsets_key(GROUP, topic, partition))
    return OffsetsRecord.from_json(orjson.loads(value_of(entry)))


def make(node, function=orders, **settings):
    settings.setdefault("schema", "order_event")
    schemas = {"order_event": ORDER_SCHEMA}
    return applier_for(node, build_pipeline(node, declare(function, schemas, **settings)))


def test_a_batch_commits_effects_and_offsets_in_one_transaction(node):
    applier = make(node)
    results = applier.sync({("events", 0): 1, ("events", 1): 1})
    assert [result.next_offset for result in results] == [None, None]
    first = records("events", 0, 0, [order(0), order(1, "us", 5)])
    second = records("events", 1, 7, [order(2, amount=2)])
    result = applier.apply(batch_of(1, (first, 1), (second, 1)))
    assert (result.applied, result.rejected, result.transactions) == (3, 0, 1)
    assert result.committed == {("events", 0): 2, ("events", 1): 8}
    assert value(node, "totals", "eu") == {"amount": 3, "count": 2}
    assert value(node, "orders", "e1") == order(1, "us", 5)
    assert offsets(node, 0).offset == 2 and offsets(node, 1).offset == 8
    assert offsets(node, 0).owner == "test"
    # A new consumer of the partitions (after a restart) starts where the grid says.
    again = make(node)
    assert [result.next_offset for result in again.sync({("events", 0): 1})] == [2]


def test_duplicates_are_skipped_within_batches_across_batches_and_after_restarts(node):
    applier = make(node, dedup_key="id", dedup_window=100)
    applier.sync({("events", 0): 1})
    batch = records("events", 0, 0, [order(0), order(1), order(0), order(2)])
    result = applier.apply(batch_of(1, (batch, 1)))
    assert (result.applied, result.duplicates) == (3, 1)
    result = applier.apply(batch_of(2, (records("events", 0, 4, [order(1), order(3)]), 1)))
    assert (result.applied, result.duplicates) == (1, 1)
    restarted = make(node, dedup_key="id", dedup_window=100)
    restarted.sync({("events", 0): 1})
    result = restarted.apply(batch_of(3, (records("events", 0, 6, [order(2), order(4)]), 1)))
    assert (result.applied, result.duplicates) == (1, 1)
    assert value(node, "totals", "eu") == {"amount": 5, "count": 5}
    assert offsets(node, 0).dedup_segments == [0, 4, 6]


def test_the_dedup_window_is_bounded_and_its_segments_expire(node):
    applier = make(node, dedup_key="id", dedup_window=4)
    applier.sync({("events", 0): 1})
    for step in range(5):
        start = step * 2
        batch = records("events", 0, start, [order(start), order(start + 1)])
        assert applier.apply(batch_of(step, (batch, 1))).applied == 2
    assert offsets(node, 0).dedup_segments == [6, 8]
    assert node.keyvalue.get("__dedup", f"{GROUP}/events/0/{0:020d}") is None
    # e0 fell out of the window: a repeat this late is applied again (a bounded window).
    result = applier.apply(batch_of(9, (records("events", 0, 10, [order(0), order(9)]), 1)))
    assert (result.applied, result.duplicates) == (1, 1)


def test_rejected_events_go_to_the_outbox_once_with_their_reason(node):
    applier = make(node, dedup_key="id")
    applier.sync({("events", 0): 1})
    batch = records(
        "events",
        0,
        0,
        [order(0), b"{broken", order(1, amount=-3), order(2, region="mars"), order(1, amount=-3)],
        key=b"k",
        headers=[("origin", b"test")],
    )
    result = applier.apply(batch_of(1, (batch, 1)))
    assert (result.applied, result.rejected, result.duplicates) == (1, 3, 1)
    letters = result.dead_letters[("events", 0)]
    assert [
        (letter.offset, letter.rejection.rule, letter.rejection.field) for letter in letters
    ] == [
        (1, "json", "$"),
        (2, "min", "amount"),
        (3, "enum", "region"),
    ]
    assert letters[1].value == batch[2].value and letters[1].headers == (("origin", b"test"),)
    stored = node.keyvalue.get(DEAD_LETTERS_MAP, outbox_key(GROUP, "events", 0, 2))
    assert orjson.loads(value_of(stored))["rule"] == "min"
    assert offsets(node, 0).outbox == [1, 2, 3]
    # Once the publisher confirms them, the next commit deletes them and keeps the floor.
    applier.confirm(("events", 0), [1, 2], 17)
    applier.apply(batch_of(2, (records("events", 0, 5, [order(5)]), 1)))
    assert offsets(node, 0).outbox == [3]
    assert offsets(node, 0).dead_letter_floor == 17
    assert node.keyvalue.get(DEAD_LETTERS_MAP, outbox_key(GROUP, "events", 0, 2)) is None
    # A restart finds the unconfirmed entry again.
    (synced,) = make(node).sync({("events", 0): 1})
    assert [letter.offset for letter in synced.pending] == [3]
    assert synced.dead_letter_floor == 17


def test_references_must_name_existing_keys(node):
    def with_customer(event, tx):
        if event["id"] == "e2":
            tx.put("customers", "new", {"name": "created by an earlier event of the batch"})
        orders(event, tx)

    node.keyvalue.put("customers", "c1", b'{"name": "C"}')
    applier = make(node, with_customer)
    applier.sync({("events", 0): 1})
    batch = records(
        "events",
        0,
        0,
        [
            order(0, customer="c1"),
            order(1, customer="c404"),
            order(2),
            order(3, customer="new"),
        ],
    )
    result = applier.apply(batch_of(1, (batch, 1)))
    assert (result.applied, result.rejected) == (3, 1)
    (letter,) = result.dead_letters[("events", 0)]
    assert (letter.rejection.rule, letter.rejection.field) == ("ref", "customer")
    assert "'c404' is not a key of map 'customers'" in letter.rejection.message


def test_exceptions_in_user_code_dead_letter_the_event_or_stop_the_pipeline(node):
    def fragile(event, tx):
        if event["amount"] == 13:
            raise RuntimeError("unlucky")
        orders(event, tx)

    lenient = make(node, fragile)
    lenient.sync({("events", 0): 1})
    result = lenient.apply(
        batch_of(1, (records("events", 0, 0, [order(0), order(1, amount=13), order(2)]), 1))
    )
    assert (result.applied, result.rejected) == (2, 1)
    (letter,) = result.dead_letters[("events", 0)]
    assert (letter.rejection.stage, letter.rejection.rule) == ("apply", "exception")
    assert letter.rejection.message == "RuntimeError: unlucky"

    strict = make(node, fragile, on_error="stop", group="strict", topic="strict")
    strict.sync({("strict", 0): 1})
    batch = records("strict", 0, 0, [order(10), order(11, amount=13)])
    result = strict.apply(batch_of(2, (batch, 1)))
    assert result.stopped is not None and "unlucky" in result.stopped
    assert result.applied == 0 and result.resync == {("strict", 0)}
    assert value(node, "orders", "e10") is None  # the whole batch was abandoned
    assert strict.apply(batch_of(3, (batch, 1))).dropped == 2  # until synced again
    strict.sync({("strict", 0): 2})
    assert not strict.stopped


def test_an_event_the_grid_refuses_at_commit_is_isolated(node):
    def insert_once(event, tx):
        tx.put("orders", event["id"], event, if_absent=True)

    node.keyvalue.put("orders", "e1", b'{"id": "e1"}')
    applier = make(node, insert_once)
    applier.sync({("events", 0): 1})
    result = applier.apply(
        batch_of(1, (records("events", 0, 0, [order(0), order(1), order(2)]), 1))
    )
    assert (result.applied, result.rejected) == (2, 1)
    (letter,) = result.dead_letters[("events", 0)]
    assert (letter.offset, letter.rejection.stage, letter.rejection.rule) == (
        1,
        "commit",
        "failed_precondition",
    )
    assert value(node, "orders", "e2") == order(2)
    assert offsets(node, 0).offset == 3


def test_batches_beyond_the_transaction_key_limit_are_cut(tmp_path):
    small = open_node(tmp_path / "small", transaction_keys_max=100)
    try:
        for name in ("orders", "totals", "customers"):
            small.create_map(name)
        applier = make(small)
        applier.sync({("events", 0): 1})
        batch = records("events", 0, 0, [order(number) for number in range(500)])
        result = applier.apply(batch_of(1, (batch, 1)))
        assert result.applied == 500
        assert result.transactions >= 6
        assert value(small, "totals", "eu") == {"amount": 500, "count": 500}
        assert offsets(small, 0).offset == 500
    finally:
        small.close()


def test_records_fetched_at_another_epoch_or_already_applied_are_skipped(node):
    applier = make(node)
    applier.sync({("events", 0): 2})
    assert applier.apply(batch_of(1, (records("events", 0, 0, [order(0)]), 1))).dropped == 1
    applier.apply(batch_of(2, (records("events", 0, 0, [order(0), order(1)]), 2)))
    result = applier.apply(
        batch_of(3, (records("events", 0, 0, [order(0), order(1), order(2)]), 2))
    )
    assert (result.stale, result.applied) == (2, 1)
    assert value(node, "totals", "eu") == {"amount": 3, "count": 3}


def test_zombie_fencing_only_one_batch_per_offset_range_commits(node):
    """Two consumers believe they own partition 0 (a rebalance the first missed)."""
    first, second = make(node), make(node)
    first.sync({("events", 0): 1})
    second.sync({("events", 0): 1})
    batch = records("events", 0, 0, [order(number) for number in range(10)])
    assert first.apply(batch_of(1, (batch, 1))).applied == 10
    fenced = second.apply(batch_of(1, (batch, 1)))
    assert (fenced.applied, fenced.resync) == (0, {("events", 0)})
    assert second.states[("events", 0)].epoch == BLOCKED
    assert value(node, "totals", "eu") == {"amount": 10, "count": 10}
    # The second syncs (as after its rebalance) and goes on from the grid's offset.
    (synced,) = second.sync({("events", 0): 2})
    assert synced.next_offset == 10
    more = records("events", 0, 0, [order(number) for number in range(20)])
    assert second.apply(batch_of(2, (more, 2))).applied == 10
    # Now the first is the zombie.
    assert first.apply(batch_of(2, (more[10:], 1))).resync == {("events", 0)}
    assert value(node, "totals", "eu") == {"amount": 20, "count": 20}
    assert offsets(node, 0).offset == 20


def test_zombie_fencing_under_concurrency_applies_every_event_once(node):
    """Two consumers race over the same partition for many batches, resyncing when fenced."""
    events = records("events", 0, 0, [order(number) for number in range(600)])
    appliers = [make(node), make(node)]
    committed_ranges: list[tuple[int, int]] = []
    lock = threading.Lock()

    def consume(applier) -> None:
        epoch = 1
        (synced,) = applier.sync({("events", 0): epoch})
        position = synced.next_offset or 0
        batch_id = 0
        while position < len(events):
            batch_id += 1
            chunk = events[position : position + 25]
            result = applier.apply(batch_of(batch_id, (chunk, epoch)))
            if result.resync:
                epoch += 1
                (synced,) = applier.sync({("events", 0): epoch})
                position = synced.next_offset or 0
                continue
            if result.committed:
                with lock:
                    committed_ranges.append((position, result.committed[("events", 0)]))
                position = result.committed[("events", 0)]

    threads = [threading.Thread(target=consume, args=(applier,)) for applier in appliers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert value(node, "totals", "eu") == {"amount": 600, "count": 600}
    covered = sorted(committed_ranges)
    for (_, end), (start, _) in itertools.pairwise(covered):
        assert start == end, f"offset ranges overlap or leave a gap: {covered}"
    assert offsets(node, 0).offset == 600


def test_the_batch_span_is_a_child_of_the_records_traceparent(node):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    resolved = build_pipeline(node, declare(orders, {"order_event": ORDER_SCHEMA}))
    applier = applier_for(node, resolved, tracer=provider.get_tracer("tests"))
    applier.sync({("events", 0): 1})
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    batch = [
        Record("events", 0, 0, orjson.dumps(order(0))),
        Record("events", 0, 1, orjson.dumps(order(1)), headers=[("traceparent", parent.encode())]),
        Record("events", 0, 2, orjson.dumps(order(2)), headers=[("traceparent", other.encode())]),
    ]
    applier.apply(batch_of(1, (batch, 1)))
    (span,) = exporter.get_finished_spans()
    assert span.name == "shoal.pipeline.batch"
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert [f"{link.context.trace_id:032x}" for link in span.links] == ["1" * 32]
    assert span.attributes["shoal.events"] == 3
    assert span.attributes["shoal.outcome"] == "committed"
    provider.shutdown()


def test_at_least_once_mode_applies_shares_then_bookkeeping(node):
    applier = make(node, mode="at_least_once", dedup_key="id")
    applier.sync({("events", 0): 1})
    batch = records("events", 0, 0, [order(n, region=("eu", "us")[n % 2]) for n in range(40)])
    result = applier.apply(batch_of(1, (batch, 1)))
    assert result.applied == 40
    assert value(node, "totals", "eu") == {"amount": 20, "count": 20}
    assert offsets(node, 0).offset == 40
    entry = node.keyvalue.get(OFFSETS_MAP, offsets_key(GROUP, "events", 0))
    assert applier.states[("events", 0)].version == version_of(entry)


def test_a_missing_map_stops_the_batch_for_a_retry_instead_of_dead_lettering(node):
    def to_nowhere(event, tx):
        tx.put("not_created_yet", event["id"], event)

    applier = make(node, to_nowhere)
    applier.sync({("events", 0): 1})
    batch = records("events", 0, 0, [order(0), order(1)])
    result = applier.apply(batch_of(1, (batch, 1)))
    assert result.stopped is not None and "not_created_yet" in result.stopped
    assert result.retry_after_s == 5.0
    assert (result.applied, result.rejected) == (0, 0)
    node.create_map("not_created_yet")
    applier.sync({("events", 0): 2})
    assert applier.apply(batch_of(2, (batch, 2))).applied == 2


def test_lines_logged_while_a_batch_is_applied_name_the_pipeline_and_batch(node):
    import logging

    from coordinator.telemetry import TraceIdFilter

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    handler.addFilter(TraceIdFilter())
    logger = logging.getLogger("coordinator.pipelines.applier")
    logger.addHandler(handler)

    def fragile(event, tx):
        raise RuntimeError("unlucky")

    try:
        strict = make(node, fragile, on_error="stop", group="logged", topic="logged")
        strict.sync({("logged", 0): 1})
        strict.apply(batch_of(7, (records("logged", 0, 0, [order(1)]), 1)))
    finally:
        logger.removeHandler(handler)
    stopped = [record for record in seen if "stopped" in record.getMessage()]
    assert stopped, [record.getMessage() for record in seen]
    assert {(record.pipeline, record.batch_id) for record in stopped} == {(strict.spec.name, "7")}
