"""Request building and reply reading shared by the sync and asyncio clients."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from shoal import _codec
from shoal._errors import InvalidArgumentError
from shoal.v1 import common_pb2, data_pb2


def new_id() -> bytes:
    """A request or transaction id: 16 random bytes, the key that makes retries safe."""
    return os.urandom(16)


def schema_bytes(schema: Mapping[str, Any] | None) -> bytes:
    if schema is None:
        return b""
    try:
        return json.dumps(schema).encode()
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"schema is not JSON: {error}", field="schema") from None


def condition(
    if_version: int | None = None, if_absent: bool = False, if_exists: bool = False
) -> common_pb2.Condition | None:
    chosen = (if_version is not None) + if_absent + if_exists
    if chosen == 0:
        return None
    if chosen > 1:
        raise InvalidArgumentError(
            "give at most one of if_version, if_absent and if_exists", field="condition"
        )
    if if_version is not None:
        if isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 1:
            raise InvalidArgumentError(
                "if_version must be a positive version number", field="if_version"
            )
        return common_pb2.Condition(if_version=if_version)
    if if_absent:
        return common_pb2.Condition(if_absent=True)
    return common_pb2.Condition(if_exists=True)


def check_key(key: Any, what: str = "key") -> str:
    if not isinstance(key, str):
        raise InvalidArgumentError(f"{what} must be a string, got {type(key).__name__}", field=what)
    # isascii is O(1) in CPython, so only non-ASCII keys pay for the encoding check; a
    # lone surrogate cannot travel as UTF-8 and would fail deep inside protobuf.
    if not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError:
            raise InvalidArgumentError(f"{what} is not valid Unicode text", field=what) from None
    return key


def put_many_request(
    map_name: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]
) -> data_pb2.PutManyRequest:
    pairs = items.items() if isinstance(items, Mapping) else items
    keys = []
    values = []
    for key, value in pairs:
        keys.append(check_key(key))
        values.append(_codec.encode(value))
    return data_pb2.PutManyRequest(map=map_name, keys=keys, values=values, request_id=new_id())


def get_many_request(
    map_name: str, keys: list[str], *, with_versions: bool = False, consistent: bool = False
) -> data_pb2.GetManyRequest:
    packed = "\x00".join(keys)
    # Packing is safe only when the separators are the only NULs (and no key is empty).
    if packed.count("\x00") == len(keys) - 1 and all(keys):
        return data_pb2.GetManyRequest(
            map=map_name,
            packed_keys=packed.encode(),
            with_versions=with_versions,
            consistent=consistent,
        )
    # A key holding NUL (refused by the server) or an empty key travels unpacked, so the
    # server can name it in its error.
    return data_pb2.GetManyRequest(
        map=map_name, keys=keys, with_versions=with_versions, consistent=consistent
    )


def get_many_result(keys: list[str], reply: data_pb2.GetManyResponse) -> dict[str, Any]:
    found = reply.found_indexes
    if not found:
        return {}
    decoded = _codec.decode_array(reply.values_json)
    if len(found) == len(keys):
        return dict(zip(keys, decoded, strict=True))
    return dict(zip(map(keys.__getitem__, found), decoded, strict=True))
