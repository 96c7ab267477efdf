"""Read versions held by readers reading now: kept past the window, let go after; the byte
budget still wins, and an SQL snapshot then starts again at a fresh read version."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from coordinator import config as config_module
from coordinator.clock import ManualClock
from coordinator.node import Node
from coordinator.sql.snapshot import CAPTURE_ATTEMPTS, Snapshots
from grid.backend import PartitionStore
from grid.entry import value_of
from grid.errors import ReadVersionTooOld
from grid.memory.records import Op
from grid.participant import Write

WINDOW_MS = 1_000


def open_node(tmp_path: Path, **settings: str) -> Node:
    node = Node(
        config_module.load(
            {
                "data_dir": str(tmp_path / "data"),
                "partitions": "2",
                "fsync": "off",
                "mvcc_window_ms": str(WINDOW_MS),
                **settings,
            },
            environment={},
        ),
        clock=ManualClock(),
    )
    node.create_map("m")
    return node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    created = open_node(tmp_path)
    yield created
    created.close()


def put(node: Node, key: str, n: int) -> None:
    write = Write(Op.PUT, "m", key, orjson.dumps({"n": n}))
    node.transactions.commit(os.urandom(16), [], [write])


def values_at(node: Node, version: int) -> dict[str, object]:
    """Every key of the map as of `version`, read the way a snapshot reads (no window check)."""
    return {
        key: orjson.loads(value_of(entry))["n"]
        for partition in node.backend.partitions
        for key, entry in partition.items_at("m", version)
    }


def pass_the_window(node: Node) -> None:
    """Moves the node's clock past the window twice, forgetting at each step, so the
    horizon samples a version and then reaches it."""
    clock = node.clock
    assert isinstance(clock, ManualClock)
    for _ in range(2):
        clock.advance_ms(WINDOW_MS + 100)
        node.transactions.forget_versions()


def test_a_held_read_version_keeps_its_states_past_the_window_until_released(
    node: Node,
) -> None:
    for key in ("a", "b", "c"):
        put(node, key, 0)
    with node.transactions.reading() as version:
        assert node.transactions.readers.oldest() == version
        for n in range(1, 20):
            put(node, "a", n)
            put(node, "b", n)
        pass_the_window(node)
        put(node, "a", 20)  # a commit forgets by age as it goes, too
        assert values_at(node, version) == {"a": 0, "b": 0, "c": 0}
        assert node.transactions.forget_versions().dropped_by_age == 0
    assert node.transactions.readers.oldest() is None
    pass_the_window(node)
    stats = node.transactions.forget_versions()
    assert stats.kept == 0 and stats.dropped_by_age == 39
    with pytest.raises(ReadVersionTooOld):
        values_at(node, version)


def test_the_oldest_of_several_held_versions_holds_the_horizon(node: Node) -> None:
    put(node, "a", 0)
    with node.transactions.reading() as first:
        put(node, "a", 1)
        with node.transactions.reading() as second:
            put(node, "a", 2)
            assert node.transactions.readers.oldest() == first
        pass_the_window(node)
        assert values_at(node, first) == {"a": 0}
        assert values_at(node, second) == {"a": 1}
    pass_the_window(node)
    with pytest.raises(ReadVersionTooOld):
        values_at(node, first)


def test_a_hold_is_released_when_the_reader_fails_or_its_stream_is_closed(node: Node) -> None:
    put(node, "a", 0)
    with pytest.raises(RuntimeError, match="reader failed"), node.transactions.reading():
        raise RuntimeError("reader failed")
    assert node.transactions.readers.oldest() is None

    def stream() -> Iterator[int]:
        with node.transactions.reading() as version:
            while True:
                yield version

    chunks = stream()
    version = next(chunks)
    assert node.transactions.readers.oldest() == version
    chunks.close()  # what gRPC does to a handler's generator when the client goes away
    assert node.transactions.readers.oldest() is None


def test_a_refused_requested_version_is_not_held(node: Node) -> None:
    put(node, "a", 0)
    old = node.transactions.read_version()
    put(node, "a", 1)
    pass_the_window(node)
    with pytest.raises(ReadVersionTooOld), node.transactions.reading(old):
        pass
    assert node.transactions.readers.oldest() is None


class Interleaved:
    """A partition whose map reads first run `before` (once per call while it returns
    True): how a busy writer lands between a snapshot's read version and its reads."""

    def __init__(self, partition: PartitionStore, before: Callable[[], None]) -> None:
        self._partition = partition
        self._before = before
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._partition, name)

    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        self.reads += 1
        self._before()
        return self._partition.items_at(map_name, version)


def test_the_byte_budget_still_wins_and_the_snapshot_retries_at_a_fresh_version(
    tmp_path: Path,
) -> None:
    # One overwritten state fits the budget; a second forces the older out.
    node = open_node(tmp_path, partitions="1", mvcc_window_bytes_max="200")
    try:
        put(node, "a", 0)
        put(node, "b", 0)
        busy = {"rounds": 1}

        def writer() -> None:
            if busy["rounds"]:
                busy["rounds"] -= 1
                for n in range(1, 4):
                    put(node, "a", n)
                node.transactions.forget_versions()

        partition = Interleaved(node.backend.partitions[0], writer)
        definition = node.catalog.find("m")
        assert definition is not None
        snapshots = Snapshots([partition], node.transactions)  # type: ignore[list-item]
        taken = snapshots.capture([definition])
        assert partition.reads == 2, "the first capture was refused, the second succeeded"
        rows = taken["m"].table.to_pylist()
        assert len(rows) == 2
        assert node.transactions.readers.oldest() is None
        stats = node.transactions.forget_versions()
        assert stats.dropped_by_budget >= 1 and stats.dropped_by_age == 0

        # A writer that beats every attempt: the caller gets "read version too old".
        busy["rounds"] = CAPTURE_ATTEMPTS
        partition.reads = 0
        put(node, "b", 1)  # the cached image is stale: the capture reads the partition
        with pytest.raises(ReadVersionTooOld):
            snapshots.capture([definition])
        assert partition.reads == CAPTURE_ATTEMPTS
        assert node.transactions.readers.oldest() is None
    finally:
        node.close()
