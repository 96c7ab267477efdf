"""A shared store's 3PC phases: sent to their partitions at once while few transactions are in
flight on the coordinator, one after the other beyond that (their steps overlap already)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator import config as config_module
from coordinator.clock import ManualClock
from coordinator.node import Node
from coordinator.transactions.faults import FaultPoints
from coordinator.transactions.manager import (
    FAN_OUT_IN_FLIGHT_MAX,
    InFlight,
    TransactionConfig,
    TransactionManager,
)
from grid.memory.records import Op
from grid.participant import Event, Prepare, Reply, Write


class Watched:
    """A partition that notes which thread sent each prepare."""

    def __init__(self, inner: Any, threads: list[str]) -> None:
        self._inner = inner
        self._threads = threads

    def step(self, event: Event) -> Reply:
        if isinstance(event, Prepare):
            self._threads.append(threading.current_thread().name)
        reply: Reply = self._inner.step(event)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    created = Node(
        config_module.load({"data_dir": str(tmp_path / "data"), "partitions": "4"}, environment={}),
        clock=ManualClock(),
    )
    created.create_map("m")
    yield created
    created.close()


def test_prepares_fan_out_only_while_few_transactions_are_in_flight(node: Node) -> None:
    threads: list[str] = []
    partitions = [Watched(partition, threads) for partition in node.backend.partitions]
    manager = TransactionManager(
        partitions,  # type: ignore[arg-type]
        node.planner,
        clock=node.clock,
        config=TransactionConfig(),
        faults=FaultPoints(),
        stories=node.stories,
        concurrent_phases=True,
    )
    keys: dict[int, str] = {}
    for index in range(100):
        keys.setdefault(node.partitioner.partition_of(f"k{index}"), f"k{index}")
    first, second = list(keys.values())[:2]
    try:
        writes = [Write(Op.PUT, "m", key, b'{"n": 1}') for key in (first, second)]
        manager.commit(b"alone", (), writes)
        assert any(name.startswith("3pc-phase") for name in threads), threads
        threads.clear()
        now = node.clock.now_ms()
        for index in range(FAN_OUT_IN_FLIGHT_MAX):
            busy = b"busy-%d" % index
            manager._in_flight[busy] = InFlight(busy, (0, 1), now, now + 10_000)
        manager.commit(b"among-many", (), writes)
        here = threading.current_thread().name
        assert threads == [here, here], "prepares fanned out with many transactions in flight"
    finally:
        manager.close()
