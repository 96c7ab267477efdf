"""A plain write's answer comes from its own commit: a delete that waited for a
transaction's lock answers for the state it found when it committed, not before."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coordinator.clock import SystemClock
from coordinator.config import load
from coordinator.node import Node
from coordinator.pipelines.offsets import SYSTEM_MAPS
from grid.entry import version_of
from grid.errors import Conflict
from grid.memory.records import Op
from grid.participant import ApplyOnePhase, Commit, Prepare, Write

TXN = b"concurrent-txn-01"


class WaitingClock(SystemClock):
    """The system clock, telling when a plain write starts waiting for a lock."""

    def __init__(self) -> None:
        self.waiting = threading.Event()

    def sleep_s(self, seconds: float) -> None:
        self.waiting.set()
        time.sleep(seconds)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    config = replace(load(environment={}), data_dir=tmp_path, partitions=4, fsync="off")
    opened = Node(config, clock=WaitingClock())
    for name in SYSTEM_MAPS:
        opened.catalog.create_system(name, now_ms=opened.clock.now_ms())
    # Long enough that the delete below is still waiting when the transaction commits.
    opened.transactions.config = replace(opened.transactions.config, plain_write_wait_ms=60_000)
    opened.create_map("m")
    yield opened
    opened.close()


def delete_behind_a_transaction(node: Node, transaction_write: Write) -> bool:
    """Deletes `m/k` while a prepared transaction holds its lock; commits the transaction
    once the delete waits, and returns the delete's answer."""
    partition = node.backend.partitions[node.partitioner.partition_of("k")]
    lease_ms = node.clock.now_ms() + 60_000
    partition.step(Prepare(TXN, (), (transaction_write,), lease_ms, partition.index))
    answers: list[bool] = []
    deleting = threading.Thread(target=lambda: answers.append(node.keyvalue.delete("m", "k")))
    deleting.start()
    clock = node.clock
    assert isinstance(clock, WaitingClock)
    assert clock.waiting.wait(30), "the delete must wait for the transaction's lock"
    with node.transactions.sequence.commit() as version:
        partition.step(Commit(TXN, version))
    deleting.join(30)
    [answer] = answers
    return answer


def test_a_delete_answers_false_when_a_transaction_removed_the_key_first(node: Node) -> None:
    node.keyvalue.put("m", "k", b'{"v":1}')
    assert delete_behind_a_transaction(node, Write(Op.DELETE, "m", "k")) is False
    assert node.keyvalue.get("m", "k") is None


def test_a_delete_answers_true_when_a_transaction_created_the_key_first(node: Node) -> None:
    assert delete_behind_a_transaction(node, Write(Op.PUT, "m", "k", b'{"v":2}')) is True
    assert node.keyvalue.get("m", "k") is None


def test_a_retried_delete_returns_the_first_answer(node: Node) -> None:
    node.keyvalue.put("m", "k", b'{"v":1}')
    assert node.keyvalue.delete("m", "k", request_id=b"delete-request-1") is True
    node.keyvalue.put("m", "k", b'{"v":2}')
    # The retry applies nothing: the key written since stays.
    assert node.keyvalue.delete("m", "k", request_id=b"delete-request-1") is True
    assert node.keyvalue.get("m", "k") is not None
    assert node.keyvalue.delete("m", "k", request_id=b"delete-request-2") is True
    assert node.keyvalue.delete("m", "k", request_id=b"delete-request-3") is False


def test_a_batch_waits_for_a_transaction_lock_as_a_plain_write_does(node: Node) -> None:
    # put_many meets the lock of a prepared transaction on one of its keys: it waits
    # (as put does) instead of failing, and writes after the transaction commits.
    partition = node.backend.partitions[node.partitioner.partition_of("k")]
    lease_ms = node.clock.now_ms() + 60_000
    write = Write(Op.PUT, "m", "k", b'{"v":"transaction"}')
    partition.step(Prepare(TXN, (), (write,), lease_ms, partition.index))
    keys = ["k", *(f"other-{index}" for index in range(20))]
    versions: list[list[int]] = []
    batch = threading.Thread(
        target=lambda: versions.append(
            node.keyvalue.put_many("m", keys, [b'{"v":"batch"}'] * len(keys))
        )
    )
    batch.start()
    clock = node.clock
    assert isinstance(clock, WaitingClock)
    assert clock.waiting.wait(30), "the batch must wait for the transaction's lock"
    with node.transactions.sequence.commit() as version:
        partition.step(Commit(TXN, version))
    batch.join(30)
    [answer] = versions
    for key, version in zip(keys, answer, strict=True):
        entry = node.keyvalue.get("m", key)
        assert entry is not None and entry.startswith(b'{"v":"batch"}'), key
        assert version_of(entry) == version


def test_shares_applied_before_a_locked_one_are_durable_when_the_batch_fails(
    tmp_path: Path,
) -> None:
    # A retry answers those shares from memory (their request ids) and writes nothing:
    # with fsync=always they must be on disk before the first attempt reports failure.
    config = replace(load(environment={}), data_dir=tmp_path, partitions=4, fsync="always")
    opened = Node(config)
    try:
        for name in SYSTEM_MAPS:
            opened.catalog.create_system(name, now_ms=opened.clock.now_ms())
        opened.create_map("m")
        locked = opened.partitioner.partition_of("k")
        other_key = next(
            f"o{index}"
            for index in range(100)
            if opened.partitioner.partition_of(f"o{index}") != locked
        )
        free = opened.partitioner.partition_of(other_key)
        partitions = opened.backend.partitions
        lease_ms = opened.clock.now_ms() + 60_000
        partitions[locked].step(
            Prepare(TXN, (), (Write(Op.PUT, "m", "k", b"{}"),), lease_ms, locked)
        )
        shares = [
            (free, ApplyOnePhase(b"batch-free", (), (Write(Op.PUT, "m", other_key, b"{}"),))),
            (locked, ApplyOnePhase(b"batch-locked", (), (Write(Op.PUT, "m", "k", b"{}"),))),
        ]
        with pytest.raises(Conflict):
            opened.transactions.apply_shares(shares)
        log_file = partitions[free]._log  # type: ignore[attr-defined]
        assert log_file is not None and not log_file.dirty
    finally:
        opened.close()
