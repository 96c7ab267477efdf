"""Transaction status records in Ignite, with the indexes a recovery sweep reads instead of
every record (grid/redis/steps.lua's ``tu`` and ``tf``, grid.backend.sweep_statuses).

Records of a partition (grid/ignite/records.py): ``t|<txn>`` one status record (state,
participants, lease, updated); ``tu`` the undecided transactions (a JSON list: few at a time);
and a queue of the decided ones in the order they were decided, ``tq|<position>`` holding
``<updated>|<txn>``, between the meta record's ``tq`` [head, tail). A sweep reads the undecided
records, the staged transactions it asks about, and the queue from its head until a record
updated after the cutoff: the decided records kept for retries and not yet due are never read.
Forgetting the record at the head moves the head past every record already forgotten (a record
forgotten out of order leaves its slot until the head reaches it). The queue is in the order
decided, which a clock stepping back can only make later, as the memory backend orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from grid.backend import StatusView, SweepStatuses
from grid.ignite.records import PartitionRecords
from grid.protocol import (
    Ack,
    CasStatus,
    CreateStatus,
    ForgetStatus,
    ReadStatus,
    Reply,
    StatusReply,
)

FINAL = ("committed", "aborted")
# Slots read at once past the head when it moves, and at most per read of a sweep's queue (a
# sweep's reads double from 1, so it reads at most about twice the records due).
SLOTS_AT_ONCE = 4
SLOTS_READ_MAX = 64


def record_name(txn: str) -> str:
    return f"t|{txn}"


def slot_name(position: int) -> str:
    return f"tq|{position}"


def status_step(
    records: PartitionRecords,
    event: CreateStatus | CasStatus | ReadStatus | ForgetStatus,
    next_lsn: Callable[[], int],
) -> Reply:
    """One status event on the partition's records, keeping the indexes."""
    txn = event.txn_id.hex()
    if isinstance(event, CreateStatus | CasStatus):
        # With the undecided list a creation or a decision changes: one round trip, not two.
        records.get_many([record_name(txn), "tu"])
    record: dict[str, Any] | None = records.get_json(record_name(txn))
    if isinstance(event, ForgetStatus):
        if record is None:
            return Ack(known=False)
        if record["state"] in FINAL:
            records.delete(record_name(txn))
            _advance_head(records)
            next_lsn()
        return Ack()
    swapped = False
    if isinstance(event, CreateStatus) and record is None:
        record = {
            "state": "pending",
            "participants": list(event.participants),
            "lease": event.lease_expires_ms,
            "updated": event.now_ms,
        }
        records.set_json("tu", sorted({*(records.get_json("tu") or []), txn}))
        swapped = True
    elif isinstance(event, CasStatus) and record is not None and record["state"] == event.expected:
        decided_now = record["state"] not in FINAL and event.new in FINAL
        record = dict(record, state=event.new, updated=event.now_ms)
        # A lease given moves the record's lease too: how the driving coordinator renews it.
        if event.lease_expires_ms > 0:
            record["lease"] = event.lease_expires_ms
        if decided_now:
            records.set_json(
                "tu", [other for other in records.get_json("tu") or [] if other != txn]
            )
            queue = records.meta.setdefault("tq", [0, 0])
            records.set(slot_name(queue[1]), f"{event.now_ms}|{txn}")
            queue[1] += 1
        swapped = True
    if swapped:
        assert record is not None
        records.set_json(record_name(txn), record)
        next_lsn()
    if record is None:
        return StatusReply(None)
    return StatusReply(
        record["state"], tuple(record["participants"]), int(record["lease"]), swapped
    )


def _advance_head(records: PartitionRecords) -> None:
    """Moves the decided queue's head past the slots whose record is forgotten."""
    queue = records.meta.get("tq")
    if not queue:
        return
    while queue[0] < queue[1]:
        positions = range(queue[0], min(queue[0] + SLOTS_AT_ONCE, queue[1]))
        records.get_many([slot_name(position) for position in positions])
        slots = {position: records.get(slot_name(position)) for position in positions}
        txns = {position: str(slot).split("|", 1)[1] for position, slot in slots.items() if slot}
        records.get_many([record_name(txn) for txn in txns.values()])
        for position in positions:
            txn = txns.get(position)
            if txn is not None and records.get(record_name(txn)) is not None:
                return
            records.delete(slot_name(position))
            queue[0] = position + 1


class StatusReader:
    """A sweep's reads of one partition's status records through the indexes, with
    ``get_many`` reading raw records by name. Plain reads, outside any transaction (an idle
    partition costs one round trip, and no step waits for the sweep): what they may miss or
    see late, the sweeper's compare-and-set steps decide on the records as they are, and a
    slot or record forgotten meanwhile is skipped. ``reads`` counts the status records read."""

    def __init__(self, get_many: Callable[[list[str]], dict[str, Any]]) -> None:
        self._get_many = get_many
        self.reads = 0

    def _read(self, names: list[str]) -> dict[str, Any]:
        if not names:
            return {}
        # Records only: the index slots a sweep reads past the due ones are at most as many
        # again as it read (its reads double), plus one.
        self.reads += sum(name.startswith("t|") for name in names)
        return self._get_many(names)

    def sweep(self, staged: Sequence[bytes], updated_by_ms: int, limit: int) -> SweepStatuses:
        first = self._get_many(["m", "tu"])
        meta: dict[str, Any] = _json(first.get("m")) or {}
        undecided_txns: list[str] = _json(first.get("tu")) or []
        asked = [txn.hex() for txn in staged if txn.hex() not in undecided_txns]
        found = self._read([record_name(txn) for txn in [*undecided_txns, *asked]])
        undecided = _views(found, undecided_txns)
        decided_asked = [view for view in _views(found, asked) if view.state in FINAL]
        return SweepStatuses(
            undecided=undecided, staged=decided_asked, due=self._due(meta, updated_by_ms, limit)
        )

    def _due(self, meta: dict[str, Any], updated_by_ms: int, limit: int) -> list[StatusView]:
        head, tail = meta.get("tq") or (0, 0)
        due: list[StatusView] = []
        position, batch = int(head), 1
        while len(due) < limit and position < tail:
            positions = range(position, min(position + batch, int(tail)))
            slots = self._read([slot_name(each) for each in positions])
            wanted: list[str] = []
            ended = False
            for each in positions:
                slot = slots.get(slot_name(each))
                if slot is not None:
                    updated, txn = str(slot).split("|", 1)
                    if int(updated) > updated_by_ms:
                        ended = True
                        break
                    wanted.append(txn)
                position = each + 1
                if len(due) + len(wanted) >= limit:
                    break
            due.extend(
                view
                for view in _views(self._read([record_name(txn) for txn in wanted]), wanted)
                if view.state in FINAL
            )
            if ended:
                break
            batch = min(batch * 2, SLOTS_READ_MAX)
        return due[:limit]


def _json(raw: Any) -> Any:
    return None if raw is None else orjson.loads(raw)


def _views(found: dict[str, Any], txns: list[str]) -> list[StatusView]:
    views = []
    for txn in txns:
        record = _json(found.get(record_name(txn)))
        if record is None:
            continue
        views.append(
            StatusView(
                txn_id=bytes.fromhex(txn),
                state=record["state"],
                participants=tuple(record["participants"]),
                lease_expires_ms=int(record["lease"]),
                updated_ms=int(record["updated"]),
            )
        )
    return views
