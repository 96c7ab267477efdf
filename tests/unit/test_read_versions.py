"""Read versions on a node with a manual clock: the window in time, forgetting, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from coordinator import config as config_module
from coordinator.clock import ManualClock
from coordinator.node import Node
from grid.entry import value_of
from grid.errors import InvalidArgument, ReadVersionTooOld
from grid.memory.records import Op
from grid.participant import Write

WINDOW_MS = 1_000


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    created = Node(
        config_module.load(
            {
                "data_dir": str(tmp_path / "data"),
                "partitions": "4",
                "fsync": "off",
                "mvcc_window_ms": str(WINDOW_MS),
            },
            environment={},
        ),
        clock=ManualClock(),
    )
    created.create_map("m")
    yield created
    created.close()


def put(node: Node, key: str, n: int) -> int:
    write = Write(Op.PUT, "m", key, orjson.dumps({"n": n}))
    return node.transactions.commit(f"{key}-{n}".encode(), [], [write]).versions[0]


def value_at(node: Node, key: str, version: int) -> object:
    entry = node.keyvalue.get("m", key, read_version=version)
    return None if entry is None else orjson.loads(value_of(entry))


def test_versions_are_readable_within_the_window_and_refused_after_it(node: Node) -> None:
    clock = node.clock
    assert isinstance(clock, ManualClock)
    first = put(node, "k", 1)
    read_version = node.transactions.read_version()
    assert read_version == first
    for n in range(2, 50):
        put(node, "k", n)
        clock.advance_ms(10)
    # 490 ms later: inside the window, the old state is there.
    assert node.transactions.read_version(read_version) == read_version
    assert value_at(node, "k", read_version) == {"n": 1}
    clock.advance_ms(WINDOW_MS)
    put(node, "k", 50)
    with pytest.raises(ReadVersionTooOld, match="read version too old"):
        node.transactions.read_version(read_version)
    latest = node.transactions.read_version()
    assert value_at(node, "k", latest) == {"n": 50}


def test_a_read_version_from_the_future_is_refused(node: Node) -> None:
    put(node, "k", 1)
    with pytest.raises(InvalidArgument, match="read_version"):
        node.transactions.read_version(node.transactions.read_version() + 5)


def test_forgetting_drops_versions_past_the_window_and_publishes_metrics(node: Node) -> None:
    clock = node.clock
    assert isinstance(clock, ManualClock)
    for n in range(20):
        put(node, "a", n)
        put(node, "b", n)
    kept = node.transactions.forget_versions()
    assert kept.kept == 38, "19 overwritten states of each key, all within the window"
    assert node.metrics.value("shoal_versions_kept") == 38
    clock.advance_ms(WINDOW_MS + 100)
    node.transactions.forget_versions()  # samples the visible version now
    clock.advance_ms(WINDOW_MS + 100)
    after = node.transactions.forget_versions()
    assert after.kept == 0 and after.kept_bytes == 0
    assert after.dropped_by_age == 38
    assert node.metrics.value("shoal_versions_dropped", reason="age") == 38
