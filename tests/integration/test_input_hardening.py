"""Hostile input through the SDK and raw gRPC: each gets its documented status naming the
field at fault (never INTERNAL), and the server keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shoal import (
    AsyncClient,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    Transaction,
)
from shoal.v1 import data_pb2, data_pb2_grpc
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

AWKWARD_KEYS = ["ключ", "line\nbreak", "nul\x00inside", "tab\tand ünïcödé 🐟"]


@pytest.fixture
def channel(shoal_server: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shoal_server) as opened:
        yield opened


def assert_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_backtracking_pattern_cannot_hang_the_server(
    client: Client, map_name: str, channel: grpc.Channel
) -> None:
    client.create_map(map_name, schema={"a": {"type": "string", "pattern": "(a+)+$"}})
    with pytest.raises(InvalidArgumentError) as raised:
        client.put(map_name, "k", {"a": "a" * 40 + "!"})
    assert (raised.value.field, raised.value.rule) == ("a", "pattern")
    assert_serving(channel)
    with pytest.raises(InvalidArgumentError) as refused:
        client.create_map(f"{map_name}_2", schema={"a": {"type": "string", "pattern": "(?=a)a"}})
    assert refused.value.field == "schema.a"


@pytest.mark.parametrize("key", [key for key in AWKWARD_KEYS if "\x00" not in key])
def test_errors_naming_any_key_reach_the_client(client: Client, map_name: str, key: str) -> None:
    client.create_map(map_name)
    client.put(map_name, key, 1)
    with pytest.raises(FailedPreconditionError) as exists:
        client.put(map_name, key, 2, if_absent=True)
    assert key in exists.value.message
    with pytest.raises(FailedPreconditionError) as stale:
        client.delete(map_name, key, if_version=12345)
    assert key in stale.value.message
    assert client.get(map_name, key) == 1


def test_a_missing_reference_and_a_field_name_with_nul_are_reported(
    client: Client, map_name: str
) -> None:
    target = f"{map_name}_target"
    client.create_map(target)
    client.create_map(map_name, schema={"owner": {"type": "string", "ref": target}})
    with pytest.raises(FailedPreconditionError) as missing:
        client.put(map_name, "k", {"owner": "ключ\n"})
    assert "ключ" in missing.value.message
    with pytest.raises(InvalidArgumentError) as unknown:
        client.put(map_name, "k", {"a\x00": 1})
    assert unknown.value.field == "a\x00"
    assert unknown.value.rule == "unknown_field"
    with pytest.raises(InvalidArgumentError) as bad_field:
        client.create_map(f"{map_name}_2", schema={"ключ": "string"})
    assert bad_field.value.field == "schema.ключ"


def test_transact_retries_a_conflict_on_a_non_ascii_key(
    client: Client, shoal_server: str, map_name: str
) -> None:
    key = "ключ\n"
    client.create_map(map_name)
    client.put(map_name, key, {"n": 1})
    attempts: list[int] = []
    with Client(shoal_server) as other:

        def add_one(transaction: Transaction) -> int:
            current: int = transaction.get(map_name, key)["n"]
            attempts.append(current)
            if len(attempts) == 1:
                other.put(map_name, key, {"n": 100})
            transaction.put(map_name, key, {"n": current + 1})
            return current + 1

        assert client.transact(add_one) == 101
    assert attempts == [1, 100]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"$ts": "yesterday"}, "value"),
        ({"a": {"$bytes": "abc"}}, "value.a"),
        ({"a": [{"$bytes": "!!!!"}]}, "value.a[0]"),
        ({"n": 2**64}, "value"),
        (10**30, "value"),
    ],
)
def test_values_that_would_not_read_back_are_refused(
    client: Client, map_name: str, value: object, field: str
) -> None:
    client.create_map(map_name)
    client.put(map_name, "fine", {"n": 2**63 - 1, "t": {"$ts": "2026-11-01T00:00:00+00:00"}})
    with pytest.raises(InvalidArgumentError) as raised:
        client.put(map_name, "bad", value)
    assert raised.value.field == field
    with pytest.raises(InvalidArgumentError):
        client.put_many(map_name, {"other": 1, "bad": value})
    assert client.get(map_name, "bad") is None
    assert client.get_many(map_name, ["fine", "bad"])["fine"]["n"] == 2**63 - 1
    assert [key for key, _ in client.scan(map_name)] == ["fine"]


def test_an_increment_past_64_bits_is_refused(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", {"n": 2**63 - 2})

    def bump(transaction: Transaction, amount: int) -> None:
        transaction.increment(map_name, "k", "n", amount)

    client.transact(bump, 1)
    with pytest.raises(InvalidArgumentError) as raised:
        client.transact(bump, 1)
    assert raised.value.field == "n"
    assert "64-bit integer range" in raised.value.message
    assert client.get(map_name, "k") == {"n": 2**63 - 1}


def test_get_many_with_packed_keys_that_are_not_utf8(
    client: Client, map_name: str, channel: grpc.Channel
) -> None:
    client.create_map(map_name)
    stub = data_pb2_grpc.DataStub(channel)
    for packed in (b"a\x00\xff\xfe", b"\xc3", b"ok\x00\xed\xa0\x80"):
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetMany(data_pb2.GetManyRequest(map=map_name, packed_keys=packed), timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "packed_keys" in (raised.value.details() or "")
    assert_serving(channel)


def test_undecodable_bodies_are_invalid_argument_with_one_log_line(
    fresh_server: ServerProcess,
) -> None:
    fresh_server.start()
    bodies = [b"\xff\xff\xff\xff", b"\x0a\x02\xff\xfe", b"\x0a\x05ab"]
    methods = ["/shoal.v1.Data/Get", "/shoal.v1.Data/Scan", "/shoal.v1.Query/Execute"]
    with grpc.insecure_channel(fresh_server.target) as opened:
        for method in methods:
            call = (
                opened.unary_stream(method)
                if method.endswith(("Scan", "Execute"))
                else opened.unary_unary(method)
            )
            for body in bodies:
                with pytest.raises(grpc.RpcError) as raised:
                    reply = call(body, timeout=10)
                    if not isinstance(reply, bytes):
                        list(reply)
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
                assert "not a valid message" in (raised.value.details() or "")
        assert_serving(opened)
    log = fresh_server.log_tail(lines=10_000)
    assert "Traceback" not in log
    assert "deserializing" not in log
    refused = [line for line in log.splitlines() if "not a valid message" in line]
    assert len(refused) == len(bodies) * len(methods)


def test_a_schema_with_too_many_fields_is_refused_on_arrival(client: Client, map_name: str) -> None:
    with pytest.raises(ResourceExhaustedError) as refused:
        client.create_map(map_name, schema={f"f{index}": "string" for index in range(10_000)})
    assert refused.value.field == "schema"
    assert "schema_fields_max" in refused.value.message
    assert map_name not in {info.name for info in client.list_maps()}


def test_a_transaction_past_the_key_limit_is_refused_at_the_read_that_passes_it(
    client: Client, map_name: str
) -> None:
    keys_max = client.cluster_info().limits["transaction_keys_max"]
    client.create_map(map_name)
    transaction = client.transaction()
    # Writes are buffered locally, so the limit is reached without thousands of calls;
    # the last step is a read, which is a call.
    for index in range(keys_max - 1):
        transaction.put(map_name, f"k{index}", index)
    assert transaction.get(map_name, "last-read") is None
    with pytest.raises(ResourceExhaustedError) as refused:
        transaction.get(map_name, "one-too-many")
    assert refused.value.field == "transaction"
    assert "transaction_keys_max" in refused.value.message
    with pytest.raises(InvalidArgumentError):
        transaction.commit()
    assert client.get(map_name, "k0") is None


def test_an_empty_map_takes_a_stricter_schema(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema={"n": {"type": "int", "min": 0}})
    assert client.alter_schema(map_name, {"n": {"type": "int", "min": 10}}).schema_version == 2
    client.put(map_name, "k", {"n": 10})
    with pytest.raises(FailedPreconditionError) as refused:
        client.alter_schema(map_name, {"n": {"type": "int", "min": 20}})
    assert refused.value.field == "n"
    assert "1 values stored" in refused.value.message


def test_error_fields_name_a_field_or_argument_never_a_key(client: Client, map_name: str) -> None:
    customers = f"{map_name}_customers"
    client.create_map(customers)
    client.create_map(map_name, schema={"owner": {"type": "string", "ref": customers}})
    with pytest.raises(FailedPreconditionError) as missing:
        client.put(map_name, "o1", {"owner": "nobody"})
    assert missing.value.field == "owner"
    assert f"'{customers}/nobody' does not exist" in missing.value.message
    client.put(customers, "c1", {})
    client.put(map_name, "o1", {"owner": "c1"})
    with pytest.raises(FailedPreconditionError) as referenced:
        client.delete(customers, "c1")
    assert referenced.value.field == "key"
    with pytest.raises(FailedPreconditionError) as exists:
        client.put(customers, "c1", {}, if_absent=True)
    assert exists.value.field == "key"
    assert f"'{customers}/c1' exists" in exists.value.message
    with pytest.raises(InvalidArgumentError) as malformed:
        client.create_map(f"{map_name}_t", schema={"at": "timestamp"})
        client.put(f"{map_name}_t", "k", {"at": {"$ts": "yesterday"}})
    assert "expected timestamp, got timestamp" not in malformed.value.message
    assert malformed.value.field == "at"


def test_an_async_transaction_past_the_key_limit_is_refused_at_the_read(
    shoal_server: str, map_name: str
) -> None:
    async def run() -> ResourceExhaustedError:
        async with AsyncClient(shoal_server) as client:
            keys_max = (await client.cluster_info()).limits["transaction_keys_max"]
            await client.create_map(map_name)
            transaction = client.transaction()
            for index in range(keys_max):
                transaction.put(map_name, f"k{index}", index)
            with pytest.raises(ResourceExhaustedError) as refused:
                await transaction.get(map_name, "one-too-many")
            return refused.value

    refused = asyncio.run(run())
    assert refused.field == "transaction"


def test_sql_parameters_and_sketch_parameters_past_64_bits_are_refused(
    client: Client, map_name: str
) -> None:
    # Both travel as JSON: 2**70 would arrive as a float, silently changed.
    with pytest.raises(InvalidArgumentError) as sql:
        client.sql("SELECT ?", [2**70]).fetchall()
    assert sql.value.field == "params"
    assert client.sql("SELECT ?", [2**63 - 1]).fetchall() == [(2**63 - 1,)]
    with pytest.raises(InvalidArgumentError) as sketch:
        client.sketches.create(map_name, kind="reservoir", k=2**70)
    assert sketch.value.field == "params_json"
    assert "outside the 64-bit range" in sketch.value.message


def test_an_error_quoting_a_huge_input_still_reaches_the_client(
    client: Client, map_name: str
) -> None:
    # gRPC drops an answer whose metadata passes 16 KiB: the client saw RESOURCE_EXHAUSTED
    # "Stream removed" instead of the error, its message and its field.
    client.create_map(map_name, schema={"a": {"type": "string", "enum": ["x"]}})
    with pytest.raises(InvalidArgumentError) as refused:
        client.put(map_name, "k", {"a": "ю" * 500_000})
    assert (refused.value.field, refused.value.rule) == ("a", "enum")
    assert "characters in all)" in refused.value.message
    with pytest.raises(NotFoundError) as missing:
        client.get("m" * 100_000, "k")
    assert missing.value.field == "map"


def test_the_asyncio_client_reads_binary_error_details(shoal_server: str, map_name: str) -> None:
    async def refused() -> tuple[str | None, str | None]:
        async with AsyncClient(shoal_server) as client:
            await client.create_map(map_name)
            with pytest.raises(InvalidArgumentError) as bad_field:
                await client.create_map(f"{map_name}_2", schema={"ключ\n": "string"})
            await client.put(map_name, "ключ", 1)
            with pytest.raises(FailedPreconditionError) as exists:
                await client.put(map_name, "ключ", 2, if_absent=True)
            return bad_field.value.field, exists.value.field

    assert asyncio.run(refused()) == ("schema.ключ\n", "key")
