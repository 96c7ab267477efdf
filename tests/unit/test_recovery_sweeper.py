"""The recovery sweeper ends transactions whose lease expired, by the termination rule, on a
manual clock: nothing happens before the lease ends, and a second sweep changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator import config as config_module
from coordinator.clock import ManualClock
from coordinator.node import Node
from coordinator.transactions import recovery
from coordinator.transactions.manager import InFlight
from grid.backend import StatusView
from grid.entry import version_of
from grid.memory.partition import MemoryPartition
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


def decide_many(
    node: Node, count: int, *, state: str = COMMITTED, name: str = "retained"
) -> list[bytes]:
    """`count` transactions decided at the clock's time, as retries would find them."""
    now = node.clock.now_ms()
    txn_ids = [f"{name}-{index:06d}".encode() for index in range(count)]
    for txn_id in txn_ids:
        partition = node.backend.partitions[node.transactions.status_partition(txn_id)]
        partition.step(CreateStatus(txn_id, (partition.index,), now + LEASE_MS, now))
        partition.step(CasStatus(txn_id, PENDING, state, now))
    return txn_ids


class Touched:
    """Counts the status records the memory partitions turn into views for the sweeper."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.views = 0
        original = MemoryPartition._status_view

        def counted(partition: MemoryPartition, txn_id: bytes) -> StatusView:
            self.views += 1
            return original(partition, txn_id)

        def refused(partition: MemoryPartition) -> list[StatusView]:
            raise AssertionError("the sweeper must not list every status record")

        monkeypatch.setattr(MemoryPartition, "_status_view", counted)
        monkeypatch.setattr(MemoryPartition, "status_records", refused)


def test_a_sweep_reads_no_retained_decided_record_before_it_is_due(node, monkeypatch) -> None:
    retained = decide_many(node, 300)
    undecided = b"undecided-txn-01"
    stage(node, undecided, pre_committed=False)
    touched = Touched(monkeypatch)
    report = node.sweeper.sweep()
    # Only the undecided record (read once as undecided, its lease not yet over).
    assert touched.views == 1
    assert report.forgotten == 0
    node.clock.advance_ms(LEASE_MS + 1)
    touched.views = 0
    assert node.sweeper.sweep().aborted == 1
    assert touched.views == 1
    touched.views = 0
    node.sweeper.sweep()
    assert touched.views == 0
    # Every retained record still answers a retried commit.
    assert {status_of(node, txn_id) for txn_id in retained} == {COMMITTED}


def test_decided_records_are_forgotten_in_slices_once_due(node, monkeypatch) -> None:
    retention_ms = node.transactions.config.status_retention_ms
    early = decide_many(node, 40)
    node.clock.advance_ms(retention_ms // 2)
    late = decide_many(node, 40, state=ABORTED, name="late")
    monkeypatch.setattr(recovery, "FORGET_SLICE", 3)
    node.clock.advance_ms(retention_ms // 2)
    # Due: the early ones only. Not yet due records still answer retried commits.
    touched = Touched(monkeypatch)
    forgotten = node.sweeper.sweep().forgotten
    partitions = len(node.backend.partitions)
    assert 0 < forgotten <= 3 * partitions
    assert touched.views == forgotten
    while forgotten < len(early):
        forgotten += node.sweeper.sweep().forgotten
    assert forgotten == len(early)
    assert node.sweeper.sweep().forgotten == 0
    assert {status_of(node, txn_id) for txn_id in early} == {None}
    assert {status_of(node, txn_id) for txn_id in late} == {ABORTED}
    node.clock.advance_ms(retention_ms // 2 + 1)
    while node.sweeper.sweep().forgotten:
        pass
    assert {status_of(node, txn_id) for txn_id in late} == {None}


def test_a_decided_record_a_participant_still_holds_is_finished_then_forgotten(node) -> None:
    """The coordinator decided (the record says committed) and died before committing on the
    participants: the record is read through the staged transaction, the commit finished,
    and the record forgotten only after its retention."""
    txn_id = b"held-decided-001"
    first_key, _ = stage(node, txn_id, pre_committed=True)
    partition = node.backend.partitions[node.transactions.status_partition(txn_id)]
    partition.step(CasStatus(txn_id, PRE_COMMITTED, COMMITTED, node.clock.now_ms()))
    report = node.sweeper.sweep()
    assert report.committed == 1
    assert report.forgotten == 0
    assert node.keyvalue.get("m", first_key) is not None
    assert all(not partition.staged_transactions() for partition in node.backend.partitions)
    assert status_of(node, txn_id) == COMMITTED
    node.clock.advance_ms(node.transactions.config.status_retention_ms + 1)
    assert node.sweeper.sweep().forgotten == 1
    assert status_of(node, txn_id) is None


def test_the_status_indexes_come_back_after_a_restart(tmp_path: Path) -> None:
    """Replay (and a checkpoint's restore) rebuild the indexes the sweeper reads."""
    settings = {"data_dir": str(tmp_path / "data"), "partitions": "4"}
    clock = ManualClock()
    first = Node(config_module.load(settings, environment={}), clock=clock)
    first.create_map("m")
    decided = decide_many(first, 20)
    first.backend.partitions[0].checkpoint()
    decided += decide_many(first, 1, state=ABORTED, name="after-checkpoint")
    undecided = b"undecided-txn-02"
    stage(first, undecided, pre_committed=False)
    first.close()
    again = Node(config_module.load(settings, environment={}), clock=clock)
    try:
        # A sole node's start-up sweep found the undecided record through its index.
        assert status_of(again, undecided) == ABORTED
        decided.append(undecided)
        partitions = again.backend.partitions
        assert [view.txn_id for p in partitions for view in p.undecided_statuses()] == []
        kept = [view.txn_id for p in partitions for view in p.decided_statuses(clock.now_ms(), 99)]
        assert sorted(kept) == sorted(decided)
        clock.advance_ms(again.transactions.config.status_retention_ms + 1)
        assert again.sweeper.sweep().forgotten == len(decided)
    finally:
        again.close()


def test_a_sweep_racing_a_live_commit_finishes_it_on_every_participant(node, monkeypatch) -> None:
    """On a shared store another coordinator's sweeper finishes a decided transaction while
    its own coordinator still drives it. The sweep reads the partitions' staged lists one by
    one, so it can miss a partition the transaction was prepared on after that partition was
    read. Finishing only the partitions it saw committed the transaction on one partition and
    released its commit number, and the driver then committed the other partition at a later
    number, after other commits: two partitions ordered the same appends differently."""
    txn_id = b"racing-commit-01"
    (first_key, first), (second_key, second) = keys_on_two_partitions(node)
    partitions = node.backend.partitions
    clock = node.clock
    status = node.transactions.status_partition(txn_id)
    lease = clock.now_ms() + LEASE_MS
    partitions[status].step(CreateStatus(txn_id, (first, second), lease, clock.now_ms()))

    def prepare(partition: int, key: str) -> None:
        write = Write(Op.PUT, "m", key, b'{"n": 1}')
        partitions[partition].step(Prepare(txn_id, (), (write,), lease, status))

    prepare(second, second_key)
    read_staged = partitions[second].staged_transactions

    def driver_moves_on_meanwhile() -> list[object]:
        # The sweep read `first` before the prepare reached it; the driver goes on to decide.
        prepare(first, first_key)
        partitions[status].step(CasStatus(txn_id, PENDING, PRE_COMMITTED, clock.now_ms()))
        partitions[status].step(CasStatus(txn_id, PRE_COMMITTED, COMMITTED, clock.now_ms()))
        return list(read_staged())

    monkeypatch.setattr(partitions[second], "staged_transactions", driver_moves_on_meanwhile)
    node.sweeper.sweep()
    monkeypatch.undo()
    one = node.keyvalue.get("m", first_key)
    other = node.keyvalue.get("m", second_key)
    assert one is not None and other is not None, "committed on one participant only"
    assert version_of(one) == version_of(other), "one commit, two versions"
    assert all(not partition.staged_transactions() for partition in partitions)
