"""The synchronous SDK against a real server: the README example and every core call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from grid.partitioner import Partitioner
from shoal import (
    Client,
    ClusterInfo,
    FailedPreconditionError,
    MapInfo,
    NotFoundError,
    Versioned,
)

pytestmark = pytest.mark.integration

ACCOUNTS_SCHEMA = {"owner": "string", "balance": {"type": "int", "min": 0}}


def test_readme_example(client: Client, map_name: str) -> None:
    info = client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
    assert isinstance(info, MapInfo)
    assert info.name == map_name
    assert info.schema_version == 1

    version = client.put(map_name, "alice", {"owner": "Alice", "balance": 100})
    assert version >= 1
    assert client.get(map_name, "alice") == {"owner": "Alice", "balance": 100}
    assert client.get_many(map_name, ["alice", "bob"]) == {
        "alice": {"owner": "Alice", "balance": 100}
    }
    assert client.delete(map_name, "alice") is True
    assert client.get(map_name, "alice") is None
    assert client.delete(map_name, "alice") is False


def test_get_of_a_missing_key_returns_none(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    assert client.get(map_name, "missing") is None
    assert client.get_versioned(map_name, "missing") is None


def test_get_many_returns_only_the_keys_found(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put_many(map_name, {f"key-{index}": index for index in range(0, 20, 2)})
    asked = [f"key-{index}" for index in range(20)]
    assert client.get_many(map_name, asked) == {f"key-{index}": index for index in range(0, 20, 2)}
    assert client.get_many(map_name, []) == {}
    assert client.get_many(map_name, ["nobody", "nowhere"]) == {}


def test_versions_increase_on_every_change(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    seen = [client.put(map_name, "k", {"step": 0})]
    seen.append(client.put(map_name, "k", {"step": 1}))
    seen.append(client.put(map_name, "k", {"step": 1}))  # The same value is still a change.
    seen.append(client.put_many(map_name, {"k": {"step": 2}, "other": 0})[0])
    seen.append(client.put(map_name, "k", {"step": 3}, if_version=seen[-1]))
    with client.transaction() as transaction:
        transaction.put(map_name, "k", {"step": 4})
    assert transaction.result is not None
    seen.append(transaction.result.versions[0])
    assert client.delete(map_name, "k")
    seen.append(client.put(map_name, "k", {"step": 5}))
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen), f"a version repeated: {seen}"
    assert client.get_versioned(map_name, "k") == Versioned({"step": 5}, seen[-1])


def test_put_if_version(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    first = client.put(map_name, "k", "one")
    second = client.put(map_name, "k", "two", if_version=first)
    assert second > first
    with pytest.raises(FailedPreconditionError):
        client.put(map_name, "k", "three", if_version=first)
    assert client.get_versioned(map_name, "k") == Versioned("two", second)
    with pytest.raises(FailedPreconditionError):
        client.put(map_name, "never-written", "x", if_version=first)
    assert client.get(map_name, "never-written") is None


def test_put_if_absent(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    version = client.put(map_name, "k", "first", if_absent=True)
    with pytest.raises(FailedPreconditionError):
        client.put(map_name, "k", "second", if_absent=True)
    assert client.get_versioned(map_name, "k") == Versioned("first", version)


def test_put_if_exists(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    with pytest.raises(FailedPreconditionError):
        client.put(map_name, "k", "nope", if_exists=True)
    assert client.get(map_name, "k") is None
    first = client.put(map_name, "k", "first")
    second = client.put(map_name, "k", "second", if_exists=True)
    assert second > first
    assert client.get(map_name, "k") == "second"


def test_put_many_returns_versions_in_order(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    items = {f"item-{index}": {"n": index} for index in range(50)}
    versions = client.put_many(map_name, items)
    assert len(versions) == len(items)
    for key, version in zip(items, versions, strict=True):
        assert client.get_versioned(map_name, key) == Versioned(items[key], version)
    # Pairs work as well as a mapping, and a second write of a key gets a newer version.
    again = client.put_many(map_name, [("item-0", {"n": -1}), ("item-1", {"n": -2})])
    assert again[0] > versions[0]
    assert again[1] > versions[1]


def test_scan_with_prefix_and_limit_over_several_partitions(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    wanted = {f"user:{index:03d}": {"index": index} for index in range(120)}
    client.put_many(map_name, wanted)
    client.put_many(map_name, {f"order:{index}": index for index in range(30)})
    partitions = client.cluster_info().partitions
    assert len({Partitioner(partitions).partition_of(key) for key in wanted}) > 1

    # Small chunks so the stream carries several of them.
    scanned = list(client.scan(map_name, prefix="user:", chunk_entries=7))
    assert len(scanned) == len(wanted)
    assert dict(scanned) == wanted

    everything = dict(client.scan(map_name))
    assert len(everything) == 150

    limited = list(client.scan(map_name, prefix="user:", limit=9))
    assert len(limited) == 9
    assert all(wanted[key] == value for key, value in limited)

    assert list(client.scan(map_name, prefix="nobody:")) == []


def test_list_and_describe_maps(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
    client.put_many(
        map_name,
        {name: {"owner": name.title(), "balance": 1} for name in ("ann", "bo", "cy")},
    )
    listed = {info.name: info for info in client.list_maps()}
    assert map_name in listed
    assert listed[map_name].entries == 3

    described = client.describe_map(map_name)
    assert described.entries == 3
    assert described.memory_bytes > 0
    assert described.schema is not None
    assert {spec["name"]: spec["type"] for spec in described.schema["fields"]} == {
        "owner": "string",
        "balance": "int",
    }
    client.delete(map_name, "bo")
    assert client.describe_map(map_name).entries == 2


def test_drop_map(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", 1)
    assert client.drop_map(map_name) is True
    assert map_name not in {info.name for info in client.list_maps()}
    with pytest.raises(NotFoundError):
        client.get(map_name, "k")
    with pytest.raises(NotFoundError):
        client.drop_map(map_name)
    assert client.drop_map(map_name, if_exists=True) is False
    # The name is free again, and the new map starts empty.
    client.create_map(map_name)
    assert client.get(map_name, "k") is None


def test_create_map_if_not_exists(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
    again = client.create_map(map_name, if_not_exists=True)
    assert again.schema_version == 1
    assert again.schema is not None


def test_alter_schema_compatible(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
    client.put(map_name, "alice", {"owner": "Alice", "balance": 5})
    altered = client.alter_schema(
        map_name,
        {**ACCOUNTS_SCHEMA, "email": "string", "tier": {"type": "string", "default": "basic"}},
    )
    assert altered.schema_version == 2
    assert client.describe_map(map_name).schema_version == 2
    client.put(map_name, "bob", {"owner": "Bob", "balance": 0, "email": "bob@example.com"})
    assert client.get(map_name, "bob") == {
        "owner": "Bob",
        "balance": 0,
        "email": "bob@example.com",
        "tier": "basic",
    }
    assert client.get(map_name, "alice") == {"owner": "Alice", "balance": 5}


@pytest.mark.parametrize(
    ("new_schema", "named_field"),
    [
        ({"owner": "int", "balance": {"type": "int", "min": 0}}, "owner"),
        ({**ACCOUNTS_SCHEMA, "id": {"type": "string", "required": True}}, "id"),
        ({"owner": "string"}, "balance"),
        ({"owner": "string", "balance": {"type": "int", "min": 10}}, "balance"),
    ],
    ids=["type-change", "required-without-default", "field-removed", "minimum-raised"],
)
def test_alter_schema_incompatible(
    client: Client, map_name: str, new_schema: dict[str, object], named_field: str
) -> None:
    client.create_map(map_name, schema=ACCOUNTS_SCHEMA)
    client.put(map_name, "alice", {"owner": "Alice", "balance": 5})
    with pytest.raises(FailedPreconditionError) as raised:
        client.alter_schema(map_name, new_schema)
    assert raised.value.field == named_field
    assert named_field in raised.value.message
    described = client.describe_map(map_name)
    assert described.schema_version == 1
    assert client.get(map_name, "alice") == {"owner": "Alice", "balance": 5}


def test_cluster_info(client: Client, shoal_server: str) -> None:
    info = client.cluster_info()
    assert isinstance(info, ClusterInfo)
    assert info.backend == "memory"
    assert info.partitions == 64
    assert info.fsync in ("always", "batch", "off")
    assert info.node_id
    assert info.version
    assert info.uptime_ms >= 0
    assert info.maps >= 0
    assert info.limits["key_bytes_max"] == 1024
    assert info.limits["value_bytes_max"] == 1024 * 1024
    assert info.limits["batch_entries_max"] == 10_000


def test_bytes_and_datetimes_round_trip(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    instant = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    elsewhere = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    value = {
        "blob": bytes(range(256)),
        "empty": b"",
        "at": instant,
        "local": elsewhere,
        "nested": [{"raw": b"\x00\xff"}, instant],
    }
    client.put(map_name, "k", value)
    read = client.get(map_name, "k")
    assert read == value
    assert type(read["blob"]) is bytes
    assert read["at"].tzinfo is not None
    assert read["local"] == elsewhere  # The same instant, returned in UTC.
    client.put(map_name, "raw", b"just bytes")
    assert client.get(map_name, "raw") == b"just bytes"


def test_bytes_and_timestamps_in_a_schema(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema={"photo": "bytes", "taken": "timestamp"})
    value = {"photo": b"\x89PNG", "taken": datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC)}
    client.put(map_name, "k", value)
    assert client.get(map_name, "k") == value


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2**63 - 1,
        -(2**63),
        1.0,
        -0.0,
        0.1,
        1e300,
        True,
        False,
        None,
        "",
        "héllo wörld 😀",
        [],
        {},
        [1, 1.0, "1", True, None, [2], {"x": 3}],
        {"int": 1, "float": 1.5, "whole_float": 2.0, "nested": {"deep": [0, 0.0, False]}},
    ],
    ids=repr,
)
def test_values_keep_their_exact_json_types(client: Client, map_name: str, value: object) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", value)
    versioned = client.get_versioned(map_name, "k")
    assert versioned is not None
    _assert_same_typed(versioned.value, value)
    _assert_same_typed(client.get_many(map_name, ["k"])["k"], value)
    _assert_same_typed(dict(client.scan(map_name))["k"], value)


def _assert_same_typed(got: object, expected: object) -> None:
    """Equal, and of the same types all the way down (1 is not 1.0, True is not 1)."""
    assert type(got) is type(expected), f"{got!r} is not typed like {expected!r}"
    if isinstance(expected, dict):
        assert isinstance(got, dict)
        assert list(got) == list(expected)
        for key, item in expected.items():
            _assert_same_typed(got[key], item)
    elif isinstance(expected, list):
        assert isinstance(got, list)
        assert len(got) == len(expected)
        for got_item, expected_item in zip(got, expected, strict=True):
            _assert_same_typed(got_item, expected_item)
    elif isinstance(expected, float):
        assert repr(got) == repr(expected)  # Tells -0.0 from 0.0.
    else:
        assert got == expected


def test_hash_tag_keys_share_a_partition(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    partitioner = Partitioner(client.cluster_info().partitions)
    tagged = ["{user:42}.profile", "{user:42}.cart", "orders-{user:42}", "{user:42}"]
    assert len({partitioner.partition_of(key) for key in tagged}) == 1

    client.put_many(map_name, {key: {"key": key} for key in tagged})
    client.put_many(map_name, {f"{{user:{index}}}.profile": index for index in range(40)})
    for key in tagged:
        assert client.get(map_name, key) == {"key": key}
    # A scan goes partition by partition, so keys sharing a tag arrive together.
    scanned = [key for key, _ in client.scan(map_name)]
    positions = sorted(scanned.index(key) for key in tagged)
    assert positions == list(range(positions[0], positions[0] + len(tagged)))

    # A transaction over keys of one tag touches one partition and commits.
    with client.transaction() as transaction:
        for key in tagged:
            transaction.put(map_name, key, {"key": key, "done": True})
    assert client.get_many(map_name, tagged) == {key: {"key": key, "done": True} for key in tagged}
