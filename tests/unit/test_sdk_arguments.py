"""The SDK refuses arguments that cannot travel with InvalidArgumentError naming the
argument, before sending anything: never a raw RecursionError, UnicodeEncodeError or
protobuf ValueError. No server is needed: the client points at a closed port."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shoal import AsyncClient, Client, InvalidArgumentError

NOWHERE = "127.0.0.1:9"


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


CALLS: list[tuple[str, Callable[[Client], Any], str]] = [
    ("deep-value", lambda c: c.put("m", "k", nested(5000)), "value"),
    ("deep-schema", lambda c: c.create_map("m", schema={"a": nested(5000)}), "schema"),
    ("surrogate-map-put", lambda c: c.put("m\ud800", "k", 1), "map"),
    ("surrogate-map-get", lambda c: c.get("m\ud800", "k"), "map"),
    ("surrogate-map-create", lambda c: c.create_map("m\ud800"), "name"),
    ("surrogate-prefix", lambda c: list(c.scan("m", prefix="\ud800")), "prefix"),
    ("surrogate-statement", lambda c: c.sql("SELECT '\ud800'"), "statement"),
    ("negative-limit", lambda c: list(c.scan("m", limit=-1)), "limit"),
    ("negative-chunk", lambda c: list(c.scan("m", chunk_entries=-1)), "chunk_entries"),
    ("huge-if-version", lambda c: c.put("m", "k", 1, if_version=2**64), "if_version"),
    ("huge-if-version-delete", lambda c: c.delete("m", "k", if_version=2**64), "if_version"),
    ("negative-k", lambda c: c.sketches.top("m", "k", k=-1), "k"),
    ("map-not-text", lambda c: c.get(5, "k"), "map"),  # type: ignore[arg-type]
    ("flag-not-bool", lambda c: c.put("m", "k", 1, if_exists="yes"), "if_exists"),
    ("flag-overflows", lambda c: c.drop_map("m", if_exists=2**64), "if_exists"),
    ("items-not-pairs", lambda c: c.put_many("m", "abc"), "items"),
    ("items-not-pairs-2", lambda c: c.put_many("m", [("k", 1, 2)]), "items"),
    ("timeout-not-number", lambda c: c.sql("SELECT 1", timeout_s="soon"), "timeout_s"),
    ("timeout-nan", lambda c: c.sql("SELECT 1", timeout_s=float("nan")), "timeout_s"),
    ("chunk-not-int", lambda c: c.sketches.add("m", "k", [1], chunk_items="3"), "chunk_items"),
    ("deep-at", lambda c: c.get("m", "k", at=nested(5000)), "at"),  # type: ignore[arg-type]
    ("huge-at", lambda c: c.get("m", "k", at=2**64), "at"),
]


@pytest.mark.parametrize(
    ("call", "field"), [(c, f) for _, c, f in CALLS], ids=[i for i, _, _ in CALLS]
)
def test_bad_arguments_name_the_argument(call: Callable[[Client], Any], field: str) -> None:
    with Client(NOWHERE, timeout_s=1) as client, pytest.raises(InvalidArgumentError) as raised:
        call(client)
    assert raised.value.field == field
    assert field in raised.value.message


@pytest.mark.parametrize("timeout_s", [-1, 0, float("nan"), "10"])
def test_a_client_refuses_a_timeout_that_is_not_a_positive_number(timeout_s: Any) -> None:
    for make in (Client, AsyncClient):
        with pytest.raises(InvalidArgumentError) as raised:
            make(NOWHERE, timeout_s=timeout_s)
        assert raised.value.field == "timeout_s"


def test_the_asyncio_client_names_the_argument_too() -> None:
    async def run() -> list[str | None]:
        fields = []
        async with AsyncClient(NOWHERE, timeout_s=1) as client:
            for call in (
                lambda: client.put("m\ud800", "k", 1),
                lambda: client.put("m", "k", nested(5000)),
                lambda: client.put("m", "k", 1, if_version=2**64),
            ):
                with pytest.raises(InvalidArgumentError) as raised:
                    await call()
                fields.append(raised.value.field)
        return fields

    assert asyncio.run(run()) == ["map", "value", "if_version"]


def test_a_transaction_names_the_argument_at_the_call() -> None:
    with Client(NOWHERE, timeout_s=1) as client:
        transaction = client.transaction()
        with pytest.raises(InvalidArgumentError) as raised:
            transaction.put("m\ud800", "k", 1)
        assert raised.value.field == "map"
        with pytest.raises(InvalidArgumentError) as deep:
            transaction.put("m", "k", nested(5000))
        assert deep.value.field == "value"


@pytest.mark.parametrize(
    "metadata",
    [
        [("x-user", "ключ")],
        [("X-Upper", "v")],
        [("x-line", "a\nb")],
        [("x-bin", "text, not bytes")],
        [("grpc-timeout", "1S")],
        [("just-a-key",)],
    ],
)
def test_metadata_grpc_would_refuse_is_refused_when_the_client_is_made(metadata: Any) -> None:
    # gRPC refuses such metadata on every call with INTERNAL "Invalid metadata".
    with pytest.raises(InvalidArgumentError) as raised:
        Client(NOWHERE, metadata=metadata)
    assert raised.value.field == "metadata"
    with pytest.raises(InvalidArgumentError):
        AsyncClient(NOWHERE, metadata=metadata)


def test_good_metadata_is_kept() -> None:
    metadata = [("x-user", "alice"), ("x-token-bin", b"\x00\xff")]
    with Client(NOWHERE, metadata=metadata) as client:
        assert client._metadata == tuple(metadata)
