"""Unit tests of grid.catalog: creating, altering and dropping maps, and persistence."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from coordinator.config import load
from coordinator.node import Node
from grid.catalog import Catalog, FileCatalogStore, MapDefinition, check_map_name
from grid.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from grid.schema import parse_schema


class MemoryStore:
    """A catalog store that keeps what it saved, and counts the saves."""

    def __init__(self, maps: list[dict[str, Any]] | None = None) -> None:
        self.maps = maps or []
        self.saves = 0

    def load(self) -> list[dict[str, Any]]:
        return list(self.maps)

    def save(self, maps: list[dict[str, Any]]) -> None:
        self.maps = maps
        self.saves += 1


PEOPLE = parse_schema({"name": {"type": "string", "required": True}, "age": "int"})
PETS = parse_schema({"owner": {"type": "string", "ref": "people"}})


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def catalog(store: MemoryStore) -> Catalog:
    return Catalog(store)


def test_create_returns_the_definition_and_saves(catalog, store):
    definition, created = catalog.create("people", PEOPLE, now_ms=123)
    assert created
    assert definition == MapDefinition("people", PEOPLE, 123)
    assert catalog.get("people") is definition
    assert catalog.find("people") is definition
    assert catalog.names() == ["people"]
    assert store.saves == 1
    assert store.maps == [definition.to_json()]


def test_create_schemaless_and_sketch_maps(catalog):
    catalog.create("free", None, now_ms=1)
    catalog.create("visits", None, now_ms=2, sketch={"kind": "hll", "lg_k": 12})
    assert catalog.validator("free") is None
    assert catalog.get("visits").sketch == {"kind": "hll", "lg_k": 12}
    assert catalog.names() == ["free", "visits"]
    assert [definition.name for definition in catalog.definitions()] == ["free", "visits"]


def test_duplicate_create_is_refused(catalog, store):
    catalog.create("people", PEOPLE, now_ms=1)
    with pytest.raises(AlreadyExists, match="map 'people' already exists") as caught:
        catalog.create("people", None, now_ms=2)
    assert caught.value.field == "map"
    assert caught.value.status == "ALREADY_EXISTS"
    assert store.saves == 1


def test_create_if_not_exists_returns_the_existing_map(catalog, store):
    first, _ = catalog.create("people", PEOPLE, now_ms=1)
    again, created = catalog.create("people", None, now_ms=2, if_not_exists=True)
    assert not created
    assert again is first
    assert again.schema == PEOPLE
    assert store.saves == 1


@pytest.mark.parametrize(
    "name", ["", "1abc", "has space", "sl/ash", "x" * 129, "-dash", "ü", "__reserved"]
)
def test_invalid_map_names_are_refused(catalog, store, name):
    with pytest.raises(InvalidArgument) as caught:
        catalog.create(name, None, now_ms=1)
    assert caught.value.field == "map"
    assert catalog.names() == []
    assert store.saves == 0


@pytest.mark.parametrize("name", ["a", "_x", "orders.v2", "my-map", "A" * 128])
def test_valid_map_names(name):
    check_map_name(name)


def test_reserved_map_name_message():
    with pytest.raises(InvalidArgument, match="reserved"):
        check_map_name("__key")


def test_get_of_a_missing_map_is_not_found(catalog):
    with pytest.raises(NotFound, match="map 'nope' does not exist") as caught:
        catalog.get("nope")
    assert caught.value.field == "map"
    assert catalog.find("nope") is None


def test_reference_to_a_missing_map_is_refused(catalog, store):
    with pytest.raises(InvalidArgument, match="references map 'people', which does not exist"):
        catalog.create("pets", PETS, now_ms=1)
    assert catalog.find("pets") is None
    assert store.saves == 0
    catalog.create("people", PEOPLE, now_ms=1)
    catalog.create("pets", PETS, now_ms=2)
    assert catalog.referencing("people") == [("pets", "owner")]


def test_a_map_may_reference_itself(catalog):
    tree = parse_schema({"parent": {"type": "string", "ref": "nodes"}})
    catalog.create("nodes", tree, now_ms=1)
    assert catalog.referencing("nodes") == [("nodes", "parent")]
    catalog.drop("nodes")
    assert catalog.names() == []


def test_drop_is_refused_while_referenced(catalog):
    catalog.create("people", PEOPLE, now_ms=1)
    catalog.create("pets", PETS, now_ms=2)
    with pytest.raises(FailedPrecondition, match=r"referenced by 'pets\.owner'") as caught:
        catalog.drop("people")
    assert caught.value.field == "map"
    assert catalog.find("people") is not None
    catalog.drop("pets")
    catalog.drop("people")
    assert catalog.names() == []


def test_drop_of_a_missing_map_is_not_found(catalog):
    with pytest.raises(NotFound):
        catalog.drop("ghost")


def test_drop_forgets_the_validator(catalog):
    catalog.create("people", PEOPLE, now_ms=1)
    assert catalog.validator("people") is not None
    catalog.drop("people")
    assert catalog.validator("people") is None
    catalog.create("people", None, now_ms=2)
    assert catalog.validator("people") is None


def test_validator_and_guarded_fields_follow_the_schema(catalog):
    schema = parse_schema(
        {
            "count": "int",
            "bounded": {"type": "int", "min": 0},
            "short": {"type": "string", "max_length": 3},
            "choice": {"type": "string", "enum": ["a"]},
        }
    )
    catalog.create("m", schema, now_ms=1)
    validator = catalog.validator("m")
    assert validator is not None
    assert validator.validate({"count": 1}) == {"count": 1}
    assert not catalog.is_guarded("m", "count")
    assert catalog.is_guarded("m", "bounded")
    assert catalog.is_guarded("m", "short")
    assert catalog.is_guarded("m", "choice")
    assert not catalog.is_guarded("other", "bounded")


def test_compatible_alter_bumps_the_version(catalog, store):
    catalog.create("people", PEOPLE, now_ms=5)
    wider = parse_schema(
        {"name": {"type": "string", "required": True}, "age": "int", "email": "string"}
    )
    altered = catalog.alter_schema("people", wider)
    assert altered.schema is not None
    assert altered.schema.version == 2
    assert [spec.name for spec in altered.schema.fields] == ["name", "age", "email"]
    assert altered.created_ms == 5
    assert catalog.get("people") is altered
    validator = catalog.validator("people")
    assert validator is not None
    assert validator.validate({"name": "x", "email": "e"}) == {"name": "x", "email": "e"}
    assert store.saves == 2
    again = catalog.alter_schema("people", wider)
    assert again.schema is not None
    assert again.schema.version == 3


def test_incompatible_alter_is_a_failed_precondition(catalog, store):
    catalog.create("people", PEOPLE, now_ms=1)
    narrower = parse_schema({"name": {"type": "string", "required": True}, "age": "string"})
    with pytest.raises(FailedPrecondition, match="schema change refused: field 'age'") as caught:
        catalog.alter_schema("people", narrower)
    assert caught.value.field == "age"
    assert catalog.get("people").schema == PEOPLE
    assert store.saves == 1


def test_alter_refuses_a_new_reference_to_a_missing_map(catalog):
    catalog.create("pets", parse_schema({"owner": "string"}), now_ms=1)
    with pytest.raises(FailedPrecondition, match="changing the reference"):
        catalog.alter_schema("pets", PETS)
    with_new_field = parse_schema({"owner": "string", "vet": {"type": "string", "ref": "vets"}})
    with pytest.raises(InvalidArgument, match="references map 'vets', which does not exist"):
        catalog.alter_schema("pets", with_new_field)


def test_alter_of_schemaless_or_sketch_maps_is_refused(catalog):
    catalog.create("free", None, now_ms=1)
    catalog.create("visits", None, now_ms=1, sketch={"kind": "hll"})
    with pytest.raises(FailedPrecondition, match="schemaless"):
        catalog.alter_schema("free", PEOPLE)
    with pytest.raises(InvalidArgument, match="sketch map"):
        catalog.alter_schema("visits", PEOPLE)
    with pytest.raises(NotFound):
        catalog.alter_schema("ghost", PEOPLE)


def test_file_store_round_trip(tmp_path):
    path = tmp_path / "catalog.json"
    store = FileCatalogStore(path)
    assert store.load() == []
    catalog = Catalog(store)
    catalog.create("people", PEOPLE, now_ms=10)
    catalog.create("pets", PETS, now_ms=20)
    catalog.create("visits", None, now_ms=30, sketch={"kind": "hll", "lg_k": 10})
    catalog.alter_schema(
        "people",
        parse_schema({"name": {"type": "string", "required": True}, "age": "int", "x": "int"}),
    )
    assert not path.with_suffix(".tmp").exists()
    assert set(orjson.loads(path.read_bytes())) == {"maps"}

    reloaded = Catalog(FileCatalogStore(path))
    assert reloaded.definitions() == catalog.definitions()
    people = reloaded.get("people").schema
    assert people is not None
    assert people.version == 2
    assert reloaded.get("visits").sketch == {"kind": "hll", "lg_k": 10}
    assert reloaded.referencing("people") == [("pets", "owner")]
    validator = reloaded.validator("people")
    assert validator is not None
    with pytest.raises(InvalidArgument):
        validator.validate({"age": 1})

    reloaded.drop("pets")
    assert Catalog(FileCatalogStore(path)).names() == ["people", "visits"]


def test_definition_json_round_trip():
    definition = MapDefinition("people", PEOPLE.with_version(4), 99, None)
    assert MapDefinition.from_json(definition.to_json()) == definition
    bare = MapDefinition.from_json({"name": "free"})
    assert bare == MapDefinition("free", None, 0, None)


# References through a whole node ------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path):
    config = replace(load(environment={}), data_dir=tmp_path / "data", partitions=4, fsync="off")
    created = Node(config)
    yield created
    created.close()


def test_node_refuses_to_delete_a_referenced_key(node):
    node.create_map("people", b'{"name": "string"}')
    node.create_map("pets", b'{"owner": {"type": "string", "ref": "people"}}')
    node.keyvalue.put("people", "alice", b'{"name": "Alice"}')
    node.keyvalue.put("pets", "rex", b'{"owner": "alice"}')
    with pytest.raises(FailedPrecondition, match="referenced by 1 value"):
        node.keyvalue.delete("people", "alice")
    node.keyvalue.delete("pets", "rex")
    node.keyvalue.delete("people", "alice")


def test_dropping_a_referencing_map_releases_its_references(node):
    node.create_map("people", b'{"name": "string"}')
    node.create_map("pets", b'{"owner": {"type": "string", "ref": "people"}}')
    node.keyvalue.put("people", "alice", b'{"name": "Alice"}')
    node.keyvalue.put("pets", "rex", b'{"owner": "alice"}')
    node.drop_map("pets")
    node.keyvalue.delete("people", "alice")


def test_an_empty_map_takes_any_schema(catalog, store):
    catalog.create("people", PEOPLE, now_ms=1)
    narrower = parse_schema({"name": {"type": "string", "required": True}, "age": "string"})
    with pytest.raises(FailedPrecondition, match=r"refused \(3 values stored\)"):
        catalog.alter_schema("people", narrower, stored_entries=3)
    changed = catalog.alter_schema("people", narrower, stored_entries=0)
    assert changed.schema is not None and changed.schema.by_name["age"].type == "string"


def test_a_stored_schema_this_version_refuses_names_its_map():
    # An older version stored a pattern with lookahead, which RE2 cannot run.
    stored = {"name": "legacy", "created_ms": 1, "schema": {"code": {"type": "string"}}}
    stored["schema"]["code"]["pattern"] = "(?=x)x"
    with pytest.raises(FailedPrecondition, match="map 'legacy' has a schema this version refuses"):
        Catalog(MemoryStore([stored]))


class SharedStore:
    """A versioned catalog store shared by several catalogs (a coordinator each), as
    grid/redis/catalog_store.py is, counting the reads of its version; `lost` makes it
    unreachable."""

    def __init__(self) -> None:
        self.current = 0
        self.maps: list[dict[str, Any]] = []
        self.version_reads = 0
        self.lost = False

    def load(self) -> list[dict[str, Any]]:
        return self.load_versioned()[1]

    def save(self, maps: list[dict[str, Any]]) -> None:
        self.save_if(None, maps)

    def load_versioned(self) -> tuple[int, list[dict[str, Any]]]:
        return self.current, list(self.maps)

    def save_if(self, expected_version: int | None, maps: list[dict[str, Any]]) -> int | None:
        if expected_version is not None and expected_version != self.current:
            return None
        self.current += 1
        self.maps = maps
        return self.current

    def version(self) -> int:
        if self.lost:
            raise Unavailable("the store is gone")
        self.version_reads += 1
        return self.current


def test_a_change_through_one_catalog_holds_for_another_at_its_next_confirm() -> None:
    shared = SharedStore()
    first, second = Catalog(shared), Catalog(shared)
    first.create("orders", parse_schema({"total": "int"}), now_ms=0)
    # A miss reads the store before answering NOT_FOUND.
    assert second.get("orders").schema is not None
    first.alter_schema(
        "orders", parse_schema({"total": {"type": "int", "max": 9}}), stored_entries=0
    )
    assert second.confirm() is True
    schema = second.get("orders").schema
    assert schema is not None and schema.by_name["total"].maximum == 9
    assert second.confirm() is False  # unchanged: one read of the version, no reload
    first.drop("orders")
    second.confirm()
    with pytest.raises(NotFound):
        second.get("orders")


def test_a_found_map_costs_no_store_read_and_a_lost_catalog_refuses_naming_it() -> None:
    shared = SharedStore()
    catalog = Catalog(shared)
    catalog.create("orders", None, now_ms=0)
    reads = shared.version_reads
    catalog.get("orders")
    assert shared.version_reads == reads
    shared.lost = True
    with pytest.raises(Unavailable, match="catalog cannot be read"):
        catalog.confirm()
