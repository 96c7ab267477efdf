"""Finding pipelines in directories, files and modules, and resolving their schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.pipelines.discovery import PipelineLoadError, load_definitions
from coordinator.pipelines.registry import PipelineRegistry, resolve
from grid.errors import NotFound
from tests.support.pipelines import open_node

ORDERS = """
from shoal.pipelines import pipeline, register_schema

register_schema("discovery_order", {"order_id": {"type": "string", "required": True}})

@pipeline(topic="orders", group="discovery-orders", schema="discovery_order")
def apply(event, tx):
    tx.put("orders", event["order_id"], event)
"""

PAYMENTS = """
from shoal.pipelines import pipeline
from helpers import MAP

@pipeline(topic="payments", group="discovery-payments", schema="accounts",
          mode="at_least_once", dedup_key="id")
def apply(event, tx):
    tx.increment(MAP, event["account"], "balance", event["amount"])
"""


@pytest.fixture
def node(tmp_path: Path):
    created = open_node(tmp_path / "data")
    yield created
    created.close()


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_a_directory_gives_every_pipeline_of_its_modules(tmp_path, node):
    folder = write(
        tmp_path / "pipelines",
        {
            "orders.py": ORDERS,
            "payments.py": PAYMENTS,
            "helpers.py": "MAP = 'accounts'\n",
            "_private.py": "raise RuntimeError('never imported')\n",
            "notes.txt": "not python",
        },
    )
    node.create_map(
        "accounts", b'{"account": "string", "amount": "int", "balance": "int", "id": "string"}'
    )
    definitions = load_definitions(str(folder))
    assert sorted(spec.name for spec in definitions.pipelines) == [
        "discovery-orders",
        "discovery-payments",
    ]
    assert "discovery_order" in definitions.schemas
    registry = PipelineRegistry(resolve(definitions, node.catalog))
    assert registry.names() == ["discovery-orders", "discovery-payments"]
    assert registry.get("discovery-orders").schema_source == "registered"
    payments = registry.get("discovery-payments")
    assert payments.schema_source == "map"
    assert payments.spec.mode == "at_least_once"
    with pytest.raises(NotFound, match="no pipeline named 'nope'"):
        registry.get("nope")


def test_a_file_and_a_module_name_load_too(tmp_path, node, monkeypatch):
    folder = write(tmp_path / "mods", {"orders_module.py": ORDERS})
    definitions = load_definitions(str(folder / "orders_module.py"))
    assert [spec.name for spec in definitions.pipelines] == ["discovery-orders"]
    monkeypatch.syspath_prepend(str(folder))
    again = load_definitions("orders_module")
    assert [spec.name for spec in again.pipelines] == ["discovery-orders"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is not python", "cannot load pipeline module"),
        ("raise RuntimeError('boom')", "RuntimeError: boom"),
        (ORDERS.replace('group="discovery-orders"', 'group="bad group"'), "group must match"),
    ],
)
def test_broken_modules_are_reported_with_their_path(tmp_path, text, message):
    folder = write(tmp_path / "broken", {"broken.py": text})
    with pytest.raises(PipelineLoadError, match=message):
        load_definitions(str(folder))


def test_missing_sources_are_reported(tmp_path):
    with pytest.raises(PipelineLoadError, match="does not exist"):
        load_definitions(str(tmp_path / "nothing.py"))
    with pytest.raises(PipelineLoadError, match="cannot import pipeline module"):
        load_definitions("no_such_pipeline_module_anywhere")


def test_unknown_or_invalid_schemas_and_duplicates_are_refused(tmp_path, node):
    unknown = write(
        tmp_path / "a",
        {"a.py": ORDERS.replace('schema="discovery_order"', 'schema="no_such_schema"')},
    )
    with pytest.raises(PipelineLoadError, match="no event schema 'no_such_schema'"):
        resolve(load_definitions(str(unknown)), node.catalog)
    invalid = write(
        tmp_path / "b",
        {"b.py": ORDERS.replace('schema="discovery_order"', 'schema={"x": "complex"}')},
    )
    with pytest.raises(PipelineLoadError, match=r"x\.type must be one of"):
        resolve(load_definitions(str(invalid)), node.catalog)
    twice = write(
        tmp_path / "c",
        {"c1.py": ORDERS, "c2.py": ORDERS.replace("discovery-orders", "other-group")},
    )
    definitions = load_definitions(str(twice))
    resolve(definitions, node.catalog)
    same_group = write(
        tmp_path / "d",
        {
            "d1.py": ORDERS,
            "d2.py": ORDERS.replace("def apply", "def apply_again").replace(
                '@pipeline(topic="orders"', '@pipeline(name="second", topic="orders"'
            ),
        },
    )
    with pytest.raises(PipelineLoadError, match="share the consumer group"):
        resolve(load_definitions(str(same_group)), node.catalog)


def test_an_event_schema_pattern_that_needs_backtracking_is_refused(tmp_path, node):
    # Event patterns run on every event: like map patterns they must match in linear time.
    source = ORDERS.replace(
        'schema="discovery_order"',
        'schema={"order_id": {"type": "string", "pattern": "(?!x)o-[0-9]+"}}',
    )
    folder = write(tmp_path / "lookahead", {"lookahead.py": source})
    with pytest.raises(PipelineLoadError, match=r"order_id\.pattern is not a regular expression"):
        resolve(load_definitions(str(folder)), node.catalog)
