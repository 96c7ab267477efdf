"""Request building and reply reading shared by the sync and asyncio clients."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from shoal import _codec
from shoal._errors import InvalidArgumentError
from shoal.v1 import common_pb2, data_pb2

Message = TypeVar("Message")

# The range of each protobuf integer type, to say what a field takes.
_INTEGER_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "fixed32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "fixed64": (0, 2**64 - 1),
}


def build(message_type: type[Message], /, **fields: Any) -> Message:
    """The request message, or InvalidArgumentError naming the argument protobuf refused
    (a negative count, a version past 64 bits, text with a lone surrogate, a wrong type),
    instead of the raw ValueError, TypeError or UnicodeEncodeError from deep inside it."""
    try:
        return message_type(**fields)
    except (ValueError, TypeError, OverflowError) as error:  # UnicodeEncodeError: ValueError
        for name, value in fields.items():
            try:
                message_type(**{name: value})
            except (ValueError, TypeError, OverflowError) as culprit:
                raise InvalidArgumentError(
                    _refusal(message_type, name, value, culprit), field=name
                ) from None
        raise error


def _refusal(message_type: Any, name: str, value: Any, error: Exception) -> str:
    if isinstance(error, UnicodeEncodeError):
        return f"{name} is not valid Unicode text ({error.reason} at position {error.start})"
    descriptor = message_type.DESCRIPTOR.fields_by_name.get(name)
    type_name = _type_name(descriptor)
    if type_name in _INTEGER_RANGES and isinstance(value, int) and not isinstance(value, bool):
        low, high = _INTEGER_RANGES[type_name]
        return f"{name} must be between {low} and {high}, got {value}"
    shown = type(value).__name__
    if type_name is not None:
        return f"{name} must be {type_name}, got {shown}"
    return f"{name} was refused ({shown}): {error}"


def _type_name(descriptor: Any) -> str | None:
    if descriptor is None:
        return None
    for type_name in (*_INTEGER_RANGES, "string", "bytes", "bool", "double", "float"):
        if descriptor.type == getattr(descriptor, f"TYPE_{type_name.upper()}", None):
            return type_name
    return None


_METADATA_KEY_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def check_metadata(
    metadata: Iterable[tuple[str, Any]] | None,
) -> tuple[tuple[str, Any], ...] | None:
    """Metadata sent with every call, as gRPC accepts it (it refuses any other call by call
    with INTERNAL "Invalid metadata"): lowercase keys of letters, digits and ``-_.``;
    printable ASCII values, or bytes for keys ending in ``-bin``."""
    if not metadata:
        return None
    checked = tuple(metadata)
    for entry in checked:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise InvalidArgumentError(
                f"metadata must be (key, value) pairs, got {entry!r}", field="metadata"
            )
        key, value = entry
        if (
            not isinstance(key, str)
            or not key
            or key.startswith("grpc-")
            or not set(key) <= _METADATA_KEY_CHARACTERS
        ):
            raise InvalidArgumentError(
                f"metadata key {key!r} must be lowercase letters, digits and -_. "
                "(and not start with grpc-)",
                field="metadata",
            )
        if key.endswith("-bin"):
            if not isinstance(value, bytes):
                raise InvalidArgumentError(
                    f"metadata {key!r} ends in -bin, so its value must be bytes",
                    field="metadata",
                )
        elif not (isinstance(value, str) and value.isascii() and value.isprintable()):
            raise InvalidArgumentError(
                f"metadata {key!r} must have printable ASCII text as its value (use a key "
                f"ending in -bin for other bytes), got {value!r}",
                field="metadata",
            )
    return checked


def check_seconds(seconds: Any, what: str) -> float:
    """A duration in seconds given by the caller: a positive, finite number."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds < float("inf")
    ):
        shown = repr(seconds) if isinstance(seconds, int | float) else type(seconds).__name__
        raise InvalidArgumentError(
            f"{what} must be a positive number of seconds, got {shown}", field=what
        )
    return float(seconds)


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
    except RecursionError:
        raise InvalidArgumentError("schema is nested too deeply to send", field="schema") from None


def condition(
    if_version: int | None = None, if_absent: bool = False, if_exists: bool = False
) -> common_pb2.Condition | None:
    for name, flag in (("if_absent", if_absent), ("if_exists", if_exists)):
        if not isinstance(flag, bool):
            raise InvalidArgumentError(
                f"{name} must be True or False, got {type(flag).__name__}", field=name
            )
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
        return build(common_pb2.Condition, if_version=if_version)
    if if_absent:
        return build(common_pb2.Condition, if_absent=True)
    return build(common_pb2.Condition, if_exists=True)


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


def check_keys(keys: Iterable[Any]) -> list[str]:
    """The keys as a list, each checked as `check_key` does.

    A batch of plain ASCII strings (the usual case) is checked with one join and one
    `isascii` in C instead of a Python call per key: on a get_many of 1,000 keys the
    per-key checks were a tenth of the client's time.
    """
    key_list = list(keys)
    try:
        if "".join(key_list).isascii() and all(type(key) is str for key in key_list):
            return key_list
    except TypeError:
        pass  # a key that is not a string: check_key names it
    return [check_key(key) for key in key_list]


def put_many_request(
    map_name: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]
) -> data_pb2.PutManyRequest:
    # Typed as the pairs it should be; a caller may pass anything.
    given: Any = items
    pairs = given.items() if isinstance(given, Mapping) else given
    keys = []
    values = []
    if isinstance(pairs, str | bytes) or not isinstance(pairs, Iterable):
        raise InvalidArgumentError(
            "items must be a mapping of key to value, or (key, value) pairs", field="items"
        )
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidArgumentError(
                f"items must be (key, value) pairs, got {type(pair).__name__}", field="items"
            )
        key, value = pair
        keys.append(check_key(key))
        values.append(_codec.encode(value))
    return build(
        data_pb2.PutManyRequest, map=map_name, keys=keys, values=values, request_id=new_id()
    )


def get_many_request(
    map_name: str, keys: list[str], *, with_versions: bool = False, consistent: bool = False
) -> data_pb2.GetManyRequest:
    packed = "\x00".join(keys)
    # Packing is safe only when the separators are the only NULs (and no key is empty).
    if packed.count("\x00") == len(keys) - 1 and all(keys):
        return build(
            data_pb2.GetManyRequest,
            map=map_name,
            packed_keys=packed.encode(),
            with_versions=with_versions,
            consistent=consistent,
        )
    # A key holding NUL (refused by the server) or an empty key travels unpacked, so the
    # server can name it in its error.
    return build(
        data_pb2.GetManyRequest,
        map=map_name,
        keys=keys,
        with_versions=with_versions,
        consistent=consistent,
    )


def get_many_result(keys: list[str], reply: data_pb2.GetManyResponse) -> dict[str, Any]:
    found = reply.found_indexes
    if not found:
        return {}
    decoded = _codec.decode_array(reply.values_json)
    if len(found) == len(keys):
        return dict(zip(keys, decoded, strict=True))
    return dict(zip(map(keys.__getitem__, found), decoded, strict=True))
