"""The recovery sweeper ends transactions whose lease expired, by the termination rule, on a
manual clock: nothing happens before the lease ends, and a second sweep changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator import config as config_module
from coordinator.clock import ManualClock
from coordinator.node import Node
from coordinator.transactions.manager import InFlight
from grid.memory.records import Op
from grid.participant import (
    ABORTED,
    COMMITTED,
    PENDING,
    PRE_COMMITTED,
    CasStatus,
    CreateStatus,
    PreCommit,
    Prepare,
    ReadStatus,
    StatusReply,
    Write,
)

LEASE_MS = 1_000


@pytest.fixture
def node(tmp_path: Path):
    clock = ManualClock()
    created = Node(
        config_module.load({"data_dir": str(tmp_path / "data"), "partitions": "4"}, environment={}),
        clock=clock,
    )
    created.create_map("m")
    yield created
    created.close()


def keys_on_two_partitions(node: Node) -> tuple[tuple[str, int], tuple[str, int]]:
    seen: dict[int, str] = {}
    for index in range(100):
        key = f"k{index}"
        seen.setdefault(node.partitioner.partition_of(key), key)
        if len(seen) == 2:
            break
    (first, first_key), (second, second_key) = sorted(seen.items())[:2]
    return (first_key, first), (second_key, second)


def stage(node: Node, txn_id: bytes, *, pre_committed: bool) -> tuple[str, str]:
    """A transaction left by a dead coordinator: prepared on two partitions, its status
    record at pending or pre_committed (and one participant pre-committed)."""
    clock = node.clock
    (first_key, first), (second_key, second) = keys_on_two_partitions(node)
    partitions = node.backend.partitions
    status = node.transactions.status_partition(txn_id)
    lease = clock.now_ms() + LEASE_MS
    partitions[status].step(CreateStatus(txn_id, (first, second), lease, clock.now_ms()))
    for key, partition in ((first_key, first), (second_key, second)):
        write = Write(Op.PUT, "m", key, b'{"n": 1}')
        partitions[partition].step(Prepare(txn_id, (), (write,), lease, status))
    if pre_committed:
        partitions[status].step(CasStatus(txn_id, PENDING, PRE_COMMITTED, clock.now_ms()))
        partitions[first].step(PreCommit(txn_id))
    return first_key, second_key


def status_of(node: Node, txn_id: bytes) -> str | None:
    reply = node.backend.partitions[node.transactions.status_partition(txn_id)].step(
        ReadStatus(txn_id)
    )
    assert isinstance(reply, StatusReply)
    return reply.state


def test_a_pre_committed_transaction_commits_everywhere_once_its_lease_expires(node) -> None:
    txn_id = b"pre-committed-01"
    first_key, second_key = stage(node, txn_id, pre_committed=True)
    report = node.sweeper.sweep()
    assert (report.committed, report.aborted) == (0, 0), "the lease has not expired"
    assert node.keyvalue.get("m", first_key) is None
    node.clock.advance_ms(LEASE_MS + 1)
    report = node.sweeper.sweep()
    assert report.committed == 1
    assert status_of(node, txn_id) == COMMITTED
    assert node.keyvalue.get("m", first_key) is not None
    assert node.keyvalue.get("m", second_key) is not None
    assert all(not partition.staged_transactions() for partition in node.backend.partitions)
    again = node.sweeper.sweep()
    assert (again.committed, again.aborted) == (0, 0)


def test_a_pending_transaction_is_swapped_to_aborted_then_aborted_everywhere(node) -> None:
    txn_id = b"pending-txn-0001"
    first_key, second_key = stage(node, txn_id, pre_committed=False)
    node.clock.advance_ms(LEASE_MS + 1)
    report = node.sweeper.sweep()
    assert report.aborted == 1
    assert status_of(node, txn_id) == ABORTED
    assert node.keyvalue.get("m", first_key) is None
    assert node.keyvalue.get("m", second_key) is None
    assert all(not partition.staged_transactions() for partition in node.backend.partitions)


def test_decided_records_are_forgotten_after_their_retention(node) -> None:
    txn_id = b"forgotten-txn-01"
    stage(node, txn_id, pre_committed=True)
    node.clock.advance_ms(LEASE_MS + 1)
    node.sweeper.sweep()
    assert status_of(node, txn_id) == COMMITTED
    node.clock.advance_ms(node.transactions.config.status_retention_ms + 1)
    assert node.sweeper.sweep().forgotten == 1
    assert status_of(node, txn_id) is None


def test_the_coordinator_driving_a_transaction_renews_its_lease_before_it_ends(node) -> None:
    """Another coordinator's sweeper knows only the lease: while this one drives a
    transaction it renews the status record's lease, and a sweep after the first lease would
    have ended finds nothing to end."""

    clock = node.clock
    txn_id = b"driven-here"
    stage(node, txn_id, pre_committed=False)
    manager = node.transactions
    lease_ms = manager.config.lease_ms
    manager._in_flight[txn_id] = InFlight(txn_id, (0, 1), clock.now_ms(), clock.now_ms() + lease_ms)
    assert manager.renew_leases() == 0, "a lease with two thirds left is not renewed yet"
    clock.advance_ms(lease_ms // 2)
    assert manager.renew_leases() == 1
    reply = node.backend.partitions[manager.status_partition(txn_id)].step(ReadStatus(txn_id))
    assert isinstance(reply, StatusReply) and reply.state == PENDING
    assert reply.lease_expires_ms == clock.now_ms() + lease_ms
    # Past the first lease, as another coordinator sees it (not in its _in_flight).
    del manager._in_flight[txn_id]
    clock.advance_ms(LEASE_MS + 1)
    node.sweeper.sweep()
    assert status_of(node, txn_id) == PENDING
    clock.advance_ms(lease_ms)
    node.sweeper.sweep()
    assert status_of(node, txn_id) == ABORTED


def test_a_renewal_lost_to_a_sweepers_decision_renews_nothing(node) -> None:
    clock = node.clock
    txn_id = b"decided-elsewhere"
    stage(node, txn_id, pre_committed=False)
    status = node.backend.partitions[node.transactions.status_partition(txn_id)]
    status.step(CasStatus(txn_id, PENDING, ABORTED, clock.now_ms()))
    manager = node.transactions
    manager._in_flight[txn_id] = InFlight(txn_id, (0, 1), clock.now_ms(), clock.now_ms())
    assert manager.renew_leases() == 0
    assert status_of(node, txn_id) == ABORTED
