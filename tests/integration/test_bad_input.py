"""Bad input: each kind gets its documented status and message naming the field at fault,
the server keeps serving, and nothing acknowledged before it changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from shoal import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    ShoalError,
    Versioned,
)
from shoal.v1 import admin_pb2, admin_pb2_grpc, data_pb2, data_pb2_grpc

pytestmark = pytest.mark.integration

ACCOUNTS_SCHEMA = {
    "owner": "string",
    "balance": {"type": "int", "min": 0},
    "active": "bool",
}
KEY_BYTES_MAX = 1024
VALUE_BYTES_MAX = 1024 * 1024
BATCH_ENTRIES_MAX = 10_000
TIMEOUT_S = 30


@dataclass
class Acknowledged:
    """Values written and acknowledged before the bad input, and a check that they hold."""

    client: Client
    accounts: str
    free: str
    versions: dict[tuple[str, str], Versioned]

    def assert_unchanged(self) -> None:
        # The server still answers, and every acknowledged value and version is as it was.
        assert self.client.cluster_info().backend == "memory"
        for (map_name, key), expected in self.versions.items():
            assert self.client.get_versioned(map_name, key) == expected, (map_name, key)
        for map_name in (self.accounts, self.free):
            stored = {key: value for key, value in self.client.scan(map_name)}
            assert stored == {
                key: versioned.value
                for (name, key), versioned in self.versions.items()
                if name == map_name
            }
            assert self.client.describe_map(map_name).entries == len(stored)
        assert self.client.describe_map(self.accounts).schema_version == 1


@pytest.fixture
def acknowledged(client: Client, map_name: str) -> Acknowledged:
    accounts = f"{map_name}_accounts"
    free = f"{map_name}_free"
    client.create_map(accounts, schema=ACCOUNTS_SCHEMA)
    client.create_map(free)
    client.put(accounts, "alice", {"owner": "Alice", "balance": 100, "active": True})
    client.put(accounts, "alice", {"owner": "Alice", "balance": 90, "active": True})
    client.put(accounts, "bob", {"owner": "Bob", "balance": 0})
    client.put_many(free, {f"item-{index}": {"n": index} for index in range(20)})
    client.put(free, "k" * KEY_BYTES_MAX, "the longest key allowed")
    versions = {}
    for map_name_, key in [
        (accounts, "alice"),
        (accounts, "bob"),
        (free, "k" * KEY_BYTES_MAX),
        *((free, f"item-{index}") for index in range(20)),
    ]:
        found = client.get_versioned(map_name_, key)
        assert found is not None
        versions[(map_name_, key)] = found
    return Acknowledged(client, accounts, free, versions)


@pytest.fixture
def channel(shoal_server: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shoal_server) as opened:
        yield opened


def expect(
    error_type: type[ShoalError], call: Callable[[], Any], *, field: str | None = None
) -> ShoalError:
    with pytest.raises(error_type) as raised:
        call()
    if field is not None:
        assert raised.value.field == field, raised.value
    assert raised.value.message
    return raised.value


# Keys -------------------------------------------------------------------------------


OVERSIZE_KEYS = {
    "ascii": "k" * (KEY_BYTES_MAX + 1),
    "multibyte": "😀" * (KEY_BYTES_MAX // 4 + 1),  # 257 characters, 1028 UTF-8 bytes.
}


@pytest.mark.parametrize("key", OVERSIZE_KEYS.values(), ids=OVERSIZE_KEYS.keys())
def test_oversize_key(acknowledged: Acknowledged, key: str) -> None:
    client, free = acknowledged.client, acknowledged.free
    size = len(key.encode())
    calls: list[Callable[[], Any]] = [
        lambda: client.put(free, key, 1),
        lambda: client.get(free, key),
        lambda: client.get_many(free, ["item-1", key]),
        lambda: client.delete(free, key),
        lambda: client.put_many(free, {"item-1": "changed", key: 1}),
    ]
    for call in calls:
        error = expect(InvalidArgumentError, call, field="key")
        assert f"{size} bytes" in error.message
        assert str(KEY_BYTES_MAX) in error.message
    acknowledged.assert_unchanged()


def test_the_largest_key_is_accepted(acknowledged: Acknowledged) -> None:
    client, free = acknowledged.client, acknowledged.free
    multibyte = "😀" * (KEY_BYTES_MAX // 4)
    client.put(free, multibyte, "ok")
    assert client.get(free, multibyte) == "ok"
    assert client.delete(free, multibyte)


@pytest.mark.parametrize("key", ["", "a\x00b"], ids=["empty", "nul"])
def test_malformed_key(acknowledged: Acknowledged, key: str) -> None:
    client, free = acknowledged.client, acknowledged.free
    expect(InvalidArgumentError, lambda: client.put(free, key, 1), field="key")
    expect(InvalidArgumentError, lambda: client.get(free, key), field="key")
    expect(InvalidArgumentError, lambda: client.get_many(free, ["item-1", key]), field="key")
    expect(InvalidArgumentError, lambda: client.put_many(free, {"item-1": 0, key: 1}), field="key")
    acknowledged.assert_unchanged()


def test_nul_in_a_key_never_shifts_get_many_results(acknowledged: Acknowledged) -> None:
    """Regression: the SDK packed keys with NUL separators even when a key held a NUL, so
    the server saw different keys and the client paired values with the wrong keys."""
    client, free = acknowledged.client, acknowledged.free
    client.put(free, "b", "value of b")
    for keys in (["a\x00b", "x"], ["x", "a\x00b"], ["item-1", "a\x00b", "b"]):
        with pytest.raises(InvalidArgumentError) as raised:
            client.get_many(free, keys)
        assert raised.value.field == "key"
    assert client.get_many(free, ["x", "b"]) == {"b": "value of b"}
    assert client.delete(free, "b")
    acknowledged.assert_unchanged()


def test_unencodable_key_is_a_typed_error(acknowledged: Acknowledged) -> None:
    """Regression: a lone surrogate raised UnicodeEncodeError from protobuf, untyped."""
    client, free = acknowledged.client, acknowledged.free
    key = "bad\ud800key"
    expect(InvalidArgumentError, lambda: client.put(free, key, 1), field="key")
    expect(InvalidArgumentError, lambda: client.get(free, key), field="key")
    expect(InvalidArgumentError, lambda: client.get_many(free, ["item-1", key]), field="key")
    expect(InvalidArgumentError, lambda: client.put_many(free, {key: 1}), field="key")
    acknowledged.assert_unchanged()


# Values -----------------------------------------------------------------------------


def test_oversize_value(acknowledged: Acknowledged) -> None:
    client, accounts, free = acknowledged.client, acknowledged.accounts, acknowledged.free
    # A JSON string of n characters is n + 2 bytes: this one is one byte over the limit.
    too_big = "x" * (VALUE_BYTES_MAX - 1)
    error = expect(InvalidArgumentError, lambda: client.put(free, "item-1", too_big), field="value")
    assert str(VALUE_BYTES_MAX) in error.message
    expect(
        InvalidArgumentError,
        lambda: client.put(accounts, "alice", {"owner": too_big}),
        field="value",
    )
    expect(
        InvalidArgumentError,
        lambda: client.put_many(free, {"item-2": "fine", "item-3": too_big}),
        field="value",
    )
    with pytest.raises(InvalidArgumentError), client.transaction() as transaction:
        transaction.put(free, "item-4", too_big)
    acknowledged.assert_unchanged()
    # Exactly at the limit is accepted.
    at_limit = "x" * (VALUE_BYTES_MAX - 2)
    client.put(free, "largest", at_limit)
    assert client.get(free, "largest") == at_limit
    assert client.delete(free, "largest")


@pytest.mark.parametrize(
    ("value", "field", "rule"),
    [
        ({"owner": 5}, "owner", "type"),
        ({"owner": "x", "balance": 1.5}, "balance", "type"),
        ({"owner": "x", "balance": "5"}, "balance", "type"),
        ({"owner": "x", "balance": True}, "balance", "type"),
        ({"owner": "x", "balance": 2**63}, "balance", "type"),
        ({"owner": "x", "active": "yes"}, "active", "type"),
        ({"owner": "x", "balance": -1}, "balance", "min"),
        ({"owner": "x", "nickname": "y"}, "nickname", "unknown_field"),
        ("just a string", "$", "type"),
        ([{"owner": "x"}], "$", "type"),
    ],
    ids=[
        "string-got-int",
        "int-got-float",
        "int-got-string",
        "int-got-bool",
        "int-over-64-bits",
        "bool-got-string",
        "below-min",
        "unknown-field",
        "not-an-object",
        "list",
    ],
)
def test_schema_violations(acknowledged: Acknowledged, value: Any, field: str, rule: str) -> None:
    client, accounts = acknowledged.client, acknowledged.accounts
    for call in (
        lambda: client.put(accounts, "alice", value),
        lambda: client.put(accounts, "carol", value),
        lambda: client.put_many(accounts, {"carol": {"owner": "Carol"}, "dave": value}),
        lambda: client.transact(lambda transaction: transaction.put(accounts, "alice", value)),
    ):
        error = expect(InvalidArgumentError, call, field=field)
        assert error.rule == rule
        assert f"'{field}'" in error.message
        assert f"rule: {rule}" in error.message
    assert client.get(accounts, "carol") is None
    acknowledged.assert_unchanged()


def test_a_bad_value_in_a_batch_writes_nothing(acknowledged: Acknowledged) -> None:
    client, accounts = acknowledged.client, acknowledged.accounts
    batch: dict[str, Any] = {f"new-{index}": {"owner": f"o{index}"} for index in range(200)}
    batch["new-150"] = {"owner": "x", "balance": -5}
    expect(InvalidArgumentError, lambda: client.put_many(accounts, batch), field="balance")
    assert client.get_many(accounts, list(batch)) == {}
    acknowledged.assert_unchanged()


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"NaN", b'{"owner": "x"} trailing', b"[1, 2", b'"\xff"'],
    ids=["garbage", "empty", "nan", "trailing", "truncated", "invalid-utf8"],
)
def test_invalid_json_through_raw_grpc(
    acknowledged: Acknowledged, channel: grpc.Channel, raw: bytes
) -> None:
    data = data_pb2_grpc.DataStub(channel)
    for map_name in (acknowledged.free, acknowledged.accounts):
        with pytest.raises(grpc.RpcError) as raised:
            data.Put(data_pb2.PutRequest(map=map_name, key="alice", value=raw), timeout=TIMEOUT_S)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not valid JSON" in raised.value.details()
        trailing = dict(raised.value.trailing_metadata() or ())
        assert trailing.get("shoal-field") == "value"
        assert trailing.get("shoal-trace-id")
        with pytest.raises(grpc.RpcError) as raised:
            data.PutMany(
                data_pb2.PutManyRequest(
                    map=map_name, keys=["item-1", "fresh"], values=[b'{"owner": "x"}', raw]
                ),
                timeout=TIMEOUT_S,
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    acknowledged.assert_unchanged()


def test_unpaired_batch_through_raw_grpc(acknowledged: Acknowledged, channel: grpc.Channel) -> None:
    data = data_pb2_grpc.DataStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        data.PutMany(
            data_pb2.PutManyRequest(map=acknowledged.free, keys=["item-1", "b"], values=[b"1"]),
            timeout=TIMEOUT_S,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    acknowledged.assert_unchanged()


def test_values_json_cannot_carry_are_refused_before_sending(acknowledged: Acknowledged) -> None:
    client, free = acknowledged.client, acknowledged.free
    for value in (float("nan"), float("inf"), object(), {1: "non-string key"}.keys()):
        with pytest.raises(InvalidArgumentError):
            client.put(free, "item-1", value)
    acknowledged.assert_unchanged()


# Maps and schemas -------------------------------------------------------------------


def test_unknown_map(acknowledged: Acknowledged, map_name: str) -> None:
    client = acknowledged.client
    missing = f"{map_name}_missing"
    calls: list[Callable[[], Any]] = [
        lambda: client.get(missing, "k"),
        lambda: client.get_versioned(missing, "k"),
        lambda: client.get_many(missing, ["k"]),
        lambda: client.put(missing, "k", 1),
        lambda: client.put_many(missing, {"k": 1}),
        lambda: client.delete(missing, "k"),
        lambda: list(client.scan(missing)),
        lambda: client.describe_map(missing),
        lambda: client.drop_map(missing),
        lambda: client.alter_schema(missing, {"x": "int"}),
        lambda: client.transact(lambda transaction: transaction.put(missing, "k", 1)),
    ]
    for call in calls:
        error = expect(NotFoundError, call, field="map")
        assert missing in error.message
    assert missing not in {info.name for info in client.list_maps()}
    acknowledged.assert_unchanged()


@pytest.mark.parametrize(
    ("schema", "field", "fragment"),
    [
        ({"x": "strnig"}, "schema.x", "strnig"),
        ({"x": {"type": "int", "min": 5, "max": 1}}, "schema.x", "min 5 exceeds max 1"),
        ([{"name": "x", "type": "int"}, 1], "schema", "JSON object"),
        ({}, "schema", "at least one field"),
        ({"x": {"type": "int", "bogus": 1}}, "schema.x", "bogus"),
        ({"x": {"type": "string", "pattern": "("}}, "schema.x", "regular expression"),
        ({"x": {"type": "string", "min": 1}}, "schema.x", "min/max"),
        ({"x": {"type": "int", "default": "s"}}, "schema.x", "default"),
        ({"x": {"type": "int", "required": "yes"}}, "schema.x", "required"),
        ({"x": 5}, "schema.x", "type name or an object"),
        ({"x": {"type": "string", "ref": "no_such_map_anywhere"}}, "x", "does not exist"),
    ],
    ids=[
        "unknown-type",
        "min-over-max",
        "not-an-object",
        "no-fields",
        "unknown-property",
        "bad-regex",
        "min-on-string",
        "bad-default",
        "required-not-bool",
        "field-not-described",
        "ref-to-missing-map",
    ],
)
def test_malformed_schema(
    acknowledged: Acknowledged, map_name: str, schema: Any, field: str, fragment: str
) -> None:
    client = acknowledged.client
    created = f"{map_name}_new"
    error = expect(InvalidArgumentError, lambda: client.create_map(created, schema=schema))
    assert error.field == field
    assert fragment in error.message
    expect(NotFoundError, lambda: client.describe_map(created))
    # Altering to a malformed schema is refused too (as malformed, or as incompatible when
    # that check comes first) and changes nothing.
    with pytest.raises((InvalidArgumentError, FailedPreconditionError)):
        client.alter_schema(acknowledged.accounts, schema)
    acknowledged.assert_unchanged()


@pytest.mark.parametrize("raw", [b"{bad", b"[1,", b"\xff"], ids=["garbage", "truncated", "binary"])
def test_schema_that_is_not_json_through_raw_grpc(
    acknowledged: Acknowledged, channel: grpc.Channel, map_name: str, raw: bytes
) -> None:
    admin = admin_pb2_grpc.AdminStub(channel)
    created = f"{map_name}_new"
    for call in (
        lambda: admin.CreateMap(
            admin_pb2.CreateMapRequest(name=created, schema_json=raw), timeout=TIMEOUT_S
        ),
        lambda: admin.AlterMapSchema(
            admin_pb2.AlterMapSchemaRequest(name=acknowledged.accounts, schema_json=raw),
            timeout=TIMEOUT_S,
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "schema is not valid JSON" in raised.value.details()
        assert dict(raised.value.trailing_metadata() or ()).get("shoal-field") == "schema"
    expect(NotFoundError, lambda: acknowledged.client.describe_map(created))
    acknowledged.assert_unchanged()


@pytest.mark.parametrize("name", ["bad name", "__reserved", "", "x" * 200, "1starts-with-digit"])
def test_bad_map_name(acknowledged: Acknowledged, name: str) -> None:
    expect(InvalidArgumentError, lambda: acknowledged.client.create_map(name), field="map")
    acknowledged.assert_unchanged()


def test_duplicate_create_map(acknowledged: Acknowledged) -> None:
    client = acknowledged.client
    for schema in (None, ACCOUNTS_SCHEMA, {"other": "int"}):
        with pytest.raises(AlreadyExistsError) as raised:
            client.create_map(acknowledged.accounts, schema=schema)
        assert raised.value.field == "map"
        assert acknowledged.accounts in raised.value.message
    described = client.describe_map(acknowledged.accounts)
    assert described.schema is not None
    assert [field["name"] for field in described.schema["fields"]] == [
        "owner",
        "balance",
        "active",
    ]
    acknowledged.assert_unchanged()


def test_incompatible_schema_change_is_refused(acknowledged: Acknowledged) -> None:
    client = acknowledged.client
    error = expect(
        FailedPreconditionError,
        lambda: client.alter_schema(acknowledged.accounts, {**ACCOUNTS_SCHEMA, "owner": "int"}),
        field="owner",
    )
    assert "type" in error.message
    expect(
        FailedPreconditionError,
        lambda: client.alter_schema(acknowledged.free, {"x": "int"}),
        field="schema",
    )
    acknowledged.assert_unchanged()


# Limits -----------------------------------------------------------------------------


def test_batch_over_the_limit(acknowledged: Acknowledged) -> None:
    client, free = acknowledged.client, acknowledged.free
    too_many: dict[str, Any] = {f"batch-{i}": i for i in range(BATCH_ENTRIES_MAX + 1)}
    too_many["item-1"] = "overwritten?"
    error = expect(ResourceExhaustedError, lambda: client.put_many(free, too_many))
    assert str(BATCH_ENTRIES_MAX) in error.message
    expect(ResourceExhaustedError, lambda: client.get_many(free, list(too_many)))

    def huge(transaction: Any) -> None:
        for key, value in too_many.items():
            transaction.put(free, key, value)

    expect(ResourceExhaustedError, lambda: client.transact(huge))
    assert client.get_many(free, ["batch-0", f"batch-{BATCH_ENTRIES_MAX}"]) == {}
    acknowledged.assert_unchanged()
    # Exactly at the limit is accepted.
    at_limit = {f"batch-{index}": index for index in range(BATCH_ENTRIES_MAX)}
    assert len(client.put_many(free, at_limit)) == BATCH_ENTRIES_MAX
    assert len(client.get_many(free, list(at_limit))) == BATCH_ENTRIES_MAX


# Referential integrity --------------------------------------------------------------


def test_referential_integrity(client: Client, map_name: str) -> None:
    customers = f"{map_name}_customers"
    orders = f"{map_name}_orders"
    client.create_map(customers, schema={"name": "string"})
    client.create_map(
        orders,
        schema={"customer": {"type": "string", "ref": customers}, "total": "int"},
    )

    # An order may not reference a customer that does not exist.
    error = expect(
        FailedPreconditionError,
        lambda: client.put(orders, "o1", {"customer": "bob", "total": 10}),
    )
    assert "bob" in error.message
    assert client.get(orders, "o1") is None
    expect(
        FailedPreconditionError,
        lambda: client.put_many(orders, {"o1": {"customer": "bob", "total": 10}}),
    )
    assert client.get(orders, "o1") is None

    bob = client.put(customers, "bob", {"name": "Bob"})
    order = client.put(orders, "o1", {"customer": "bob", "total": 10})
    assert client.get(orders, "o1") == {"customer": "bob", "total": 10}

    # A referenced customer cannot be deleted, nor its map dropped.
    error = expect(FailedPreconditionError, lambda: client.delete(customers, "bob"))
    assert "referenced" in error.message
    error = expect(FailedPreconditionError, lambda: client.drop_map(customers), field="map")
    assert orders in error.message
    assert client.get_versioned(customers, "bob") == Versioned({"name": "Bob"}, bob)
    assert client.get_versioned(orders, "o1") == Versioned({"customer": "bob", "total": 10}, order)

    # Once the order is gone, the customer may go.
    assert client.delete(orders, "o1") is True
    assert client.delete(customers, "bob") is True
    assert client.get(customers, "bob") is None

    # Moving a reference releases the old target.
    client.put(customers, "ann", {"name": "Ann"})
    client.put(customers, "cy", {"name": "Cy"})
    client.put(orders, "o2", {"customer": "ann", "total": 1})
    client.put(orders, "o2", {"customer": "cy", "total": 1})
    assert client.delete(customers, "ann") is True
    expect(FailedPreconditionError, lambda: client.delete(customers, "cy"))

    # The referencing map must go first; then the referenced one may be dropped.
    assert client.drop_map(orders) is True
    assert client.drop_map(customers) is True
