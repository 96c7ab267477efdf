"""The ledger of batches: outcomes per offset committed with each batch, bounded and expiring."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from coordinator.pipelines import ledger as ledger_module
from coordinator.pipelines.ledger import (
    LedgerEntry,
    LedgerPosition,
    decode_runs,
    encode_outcomes,
    ledger_writes,
    read_ledger,
)
from coordinator.pipelines.offsets import OFFSETS_MAP, OffsetsRecord, offsets_key
from grid.entry import value_of
from grid.memory.records import Op
from tests.support.pipelines import (
    Record,
    applier_for,
    batch_of,
    build_pipeline,
    declare,
    open_node,
    records,
)

GROUP = "events-to-grid"


def test_outcomes_are_run_length_encoded_with_gaps():
    text = encode_outcomes(10, 17, {10: "a", 11: "a", 12: "r", 14: "d", 15: "a", 16: "a"})
    assert text == "a2r1-1d1a2"
    assert list(decode_runs(text)) == [("a", 2), ("r", 1), ("-", 1), ("d", 1), ("a", 2)]
    entry = LedgerEntry(10, 17, text, "t", 0)
    assert [code for _, code in entry.codes()] == list("aar-daa")
    assert [offset for offset, _ in entry.codes()] == list(range(10, 17))


def test_the_ring_is_bounded_and_old_entries_expire(monkeypatch):
    monkeypatch.setattr(ledger_module, "LEDGER_SLOTS", 4)
    store: dict[tuple[str, str], bytes] = {}

    def entry_of(map_name: str, key: str) -> bytes | None:
        stored = store.get((map_name, key))
        return None if stored is None else stored + (1).to_bytes(8, "big")

    position = LedgerPosition()
    for number in range(6):
        entry = LedgerEntry(number * 10, number * 10 + 10, "a10", f"t{number}", 1_000)
        writes, position = ledger_writes("g", "t", 0, entry, position, entry_of, now_ms=2_000)
        for write in writes:
            if write.op == Op.PUT:
                store[(write.map, write.key)] = write.value
            else:
                store.pop((write.map, write.key), None)
    # Six entries through four slots: the two oldest were overwritten, the floor rose.
    assert (position.seq, position.oldest, position.floor) == (6, 2, 20)
    kept = read_ledger("g", "t", 0, position, entry_of)
    assert [entry.first for entry in kept] == [20, 30, 40, 50]
    # Past the retention, the next batch drops the oldest ones (a few per batch).
    late = ledger_module.LEDGER_RETENTION_MS + 5_000
    entry = LedgerEntry(60, 70, "a10", "t6", late)
    writes, position = ledger_writes("g", "t", 0, entry, position, entry_of, now_ms=late)
    deleted = [write for write in writes if write.op == Op.DELETE]
    assert len(deleted) == ledger_module.EXPIRE_PER_BATCH
    # (One more was overwritten: entries 2, then 3 and 4 expired.)
    assert (position.floor, position.oldest) == (50, 5)


@pytest.fixture
def node(tmp_path: Path):
    created = open_node(tmp_path / "data")
    created.create_map("orders")
    yield created
    created.close()


def test_each_batch_records_what_it_did_with_every_offset(node):
    def apply(event, tx):
        if event["n"] < 0:
            raise ValueError("negative")
        tx.put("orders", event["id"], event)

    applier = applier_for(node, build_pipeline(node, declare(apply, dedup_key="id")))
    applier.sync({("events", 0): 1})
    batch = records(
        "events", 0, 5, [{"id": "a", "n": 1}, {"id": "b", "n": -1}, {"id": "a", "n": 1}]
    )
    # Offset 8 is not delivered (a transaction marker stands there).
    batch.append(Record("events", 0, 9, b'{"id": "c", "n": 2}'))
    result = applier.apply(batch_of(1, (batch, 1)))
    assert (result.applied, result.rejected, result.duplicates) == (2, 1, 1)
    stored = node.keyvalue.get(OFFSETS_MAP, offsets_key(GROUP, "events", 0))
    record = OffsetsRecord.from_json(orjson.loads(value_of(stored)))
    assert (record.applied, record.rejected, record.duplicates) == (2, 1, 1)
    assert (record.ledger_seq, record.ledger_floor) == (1, 5)

    def entry_of(map_name: str, key: str) -> bytes | None:
        return node.keyvalue.get(map_name, key)

    position = LedgerPosition(record.ledger_seq, record.ledger_oldest, record.ledger_floor)
    (entry,) = read_ledger(GROUP, "events", 0, position, entry_of)
    assert (entry.first, entry.next) == (5, 10)
    assert [code for _, code in entry.codes()] == list("ard-a")
