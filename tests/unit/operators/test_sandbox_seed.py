"""A sandbox's seed: production's maps at one read version, written as a data directory the
memory backend opens as it is (checkpoints, catalog, reference counts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from coordinator import config as config_module
from coordinator.node import Node
from coordinator.operators.sandbox_seed import Production, seeded_definitions, write_seed
from grid.entry import value_of
from grid.errors import InvalidArgument, NotFound
from grid.memory.records import Op
from grid.participant import Write


def open_node(data_dir: Path) -> Node:
    return Node(
        config_module.load(
            {"data_dir": str(data_dir), "partitions": "4", "fsync": "off"}, environment={}
        )
    )


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Node]:
    node = open_node(tmp_path / "production")
    yield node
    node.close()


def view(node: Node) -> Production:
    return Production(
        catalog=node.catalog,
        partitions=node.backend.partitions,
        partitioner=node.partitioner,
        reading=node.transactions.reading,
        now_ms=node.clock.now_ms,
    )


def put(node: Node, map_name: str, key: str, value: object) -> int:
    write = Write(Op.PUT, map_name, key, orjson.dumps(value))
    return node.transactions.commit(f"{map_name}-{key}-{value}".encode(), [], [write]).versions[0]


def contents(node: Node, map_name: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for partition in node.backend.partitions:
        for key, entry in partition.items(map_name):
            found[key] = orjson.loads(value_of(entry))
    return found


def test_seed_opens_as_the_same_maps_at_the_read_version(production: Node, tmp_path: Path) -> None:
    production.create_map("customers", orjson.dumps({"name": "string"}))
    production.create_map(
        "orders", orjson.dumps({"customer": {"type": "string", "ref": "customers"}})
    )
    production.create_map("other")
    for index in range(50):
        put(production, "customers", f"c{index}", {"name": f"n{index}"})
    for index in range(120):
        put(production, "orders", f"o{index}", {"customer": f"c{index % 7}"})
    put(production, "other", "x", {"n": 1})
    expected = {name: contents(production, name) for name in ("customers", "orders")}
    version = production.transactions.read_version()
    reported: list[tuple[str, int, int]] = []

    # Only orders is named: customers comes too, since orders references it.
    definitions = seeded_definitions(production.catalog, ["orders"])
    assert [item.name for item in definitions] == ["customers", "orders"]
    result = write_seed(
        tmp_path / "sandbox",
        view(production),
        definitions,
        lambda phase, done, total: reported.append((phase, done, total)),
    )
    # Written after the seed's read version: not in the seed.
    put(production, "customers", "late", {"name": "late"})

    assert result.version == version
    assert result.entries == 170
    assert reported[-1] == ("seeding", 170, 170)
    sandbox = open_node(tmp_path / "sandbox")
    try:
        assert sorted(sandbox.catalog.names()) == ["customers", "orders"]
        for name, items in expected.items():
            assert contents(sandbox, name) == items
        # New commits in the sandbox come after the seed's version.
        assert put(sandbox, "customers", "new", {"name": "new"}) > version
        # The reference counts came along: a referenced customer cannot be deleted.
        counts = {}
        for partition in sandbox.backend.partitions:
            counts.update(partition.participant.refcounts)
        expected_counts = {}
        for partition in production.backend.partitions:
            expected_counts.update(partition.participant.refcounts)
        assert counts == expected_counts
        assert counts[("customers", "c0")] == len([i for i in range(120) if i % 7 == 0])
    finally:
        sandbox.close()


def test_system_maps_are_never_seeded(production: Node) -> None:
    production.create_map("orders")
    # As the pipelines, replays and backfills keep their bookkeeping: in the catalog.
    production.catalog.create_system("__offsets", now_ms=0)
    assert [item.name for item in seeded_definitions(production.catalog, [])] == ["orders"]
    with pytest.raises(InvalidArgument) as refused:
        seeded_definitions(production.catalog, ["__offsets"])
    assert refused.value.field == "maps"


def test_seed_of_an_unknown_map_is_refused_naming_it(production: Node) -> None:
    with pytest.raises(NotFound) as refused:
        seeded_definitions(production.catalog, ["missing"])
    assert "missing" in refused.value.message
    assert refused.value.field == "maps"
