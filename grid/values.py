"""The wire form of values: JSON documents with tagged bytes and timestamps.

A value is any JSON document. Two types JSON lacks travel tagged:
``{"$bytes": "<base64>"}`` and ``{"$ts": "<ISO 8601 with offset>"}``. The grid
stores the document as received (after validation), so reads return the same bytes.

`check_document` guards what is stored, so that every stored value reads back as it
was written: a one-key object whose key is a tag must be a well-formed tag, and an
integer must fit in 64 signed bits (JSON parsers, the SDK's included, turn larger
integers into floats, silently changing them).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import re2

from grid.errors import InvalidArgument

BYTES_TAG = "$bytes"
TIMESTAMP_TAG = "$ts"
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# Every integer of 18 digits or fewer fits in 64 bits: only a value holding a longer run
# of digits needs its numbers looked at. Python's re looks for the run at every position
# (about 40 ms for a 1 MB value); RE2 scans in one pass but costs more per call, so it
# takes the large values.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_LARGE = re2.compile(rb"[0-9]{19}")
_LARGE_VALUE_BYTES = 4096
# Strings (skipped whole, so digits inside them are not numbers) or numbers; group 1 is
# the integer part, group 2 the fraction and exponent (empty for an integer).
_STRING_OR_NUMBER = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+)((?:\.\d+)?(?:[eE][+-]?\d+)?)')


def decode(data: bytes, *, what: str = "value") -> Any:
    """Parses one JSON document, naming `what` in the error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(f"{what} is not valid JSON: {error}", field=what) from None


def check_document(data: bytes, document: Any, *, what: str = "value") -> None:
    """Raises InvalidArgument naming `what` unless the document (parsed from `data`) holds
    only well-formed tags and integers that fit in 64 signed bits."""
    finder = _LONG_DIGITS if len(data) < _LARGE_VALUE_BYTES else _LONG_DIGITS_LARGE
    if finder.search(data) is not None:
        for match in _STRING_OR_NUMBER.finditer(data):
            literal = match.group(1)
            if literal is None or match.group(2):
                continue
            # A literal longer than 20 characters is out of range; not converted, since
            # int() refuses (and would be slow on) thousands of digits.
            if len(literal) > 20 or not INT_MIN <= int(literal) <= INT_MAX:
                shown = literal if len(literal) <= 40 else literal[:37] + b"..."
                raise InvalidArgument(
                    f"{what} holds the integer {shown.decode()}, outside the 64-bit range "
                    f"[{INT_MIN}, {INT_MAX}]; send it as a string or a float",
                    field=what,
                )
    if b'"$' in data:
        _check_tags(document, what)


def _check_tags(document: Any, what: str) -> None:
    # Iterative: a document may nest as deep as the JSON parser allows.
    pending: list[tuple[str, Any]] = [(what, document)]
    while pending:
        path, item = pending.pop()
        if type(item) is dict:
            if len(item) == 1 and (BYTES_TAG in item or TIMESTAMP_TAG in item):
                _check_tag(path, item)
                continue
            pending.extend((f"{path}.{name}", child) for name, child in item.items())
        elif type(item) is list:
            pending.extend((f"{path}[{index}]", child) for index, child in enumerate(item))


def _check_tag(path: str, item: dict[str, Any]) -> None:
    if BYTES_TAG in item:
        if tagged_bytes(item) is None:
            raise InvalidArgument(
                f'{path} is a malformed bytes tag: {{"$bytes": ...}} holds text that is not '
                f"base64: {item[BYTES_TAG]!r}",
                field=path,
            )
    elif tagged_timestamp(item) is None:
        raise InvalidArgument(
            f'{path} is a malformed timestamp tag: {{"$ts": ...}} holds text that is not '
            f"ISO 8601: {item[TIMESTAMP_TAG]!r}",
            field=path,
        )


def encode(value: Any) -> bytes:
    return orjson.dumps(value)


def tagged_bytes(value: Any) -> bytes | None:
    """The bytes a ``{"$bytes": ...}`` document holds, or None when it is not one."""
    if type(value) is dict and len(value) == 1 and BYTES_TAG in value:
        text = value[BYTES_TAG]
        if isinstance(text, str):
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                return None
    return None


def tagged_timestamp(value: Any) -> datetime | None:
    """The instant a ``{"$ts": ...}`` document holds (UTC), or None when it is not one."""
    if type(value) is dict and len(value) == 1 and TIMESTAMP_TAG in value:
        text = value[TIMESTAMP_TAG]
        if isinstance(text, str):
            try:
                instant = datetime.fromisoformat(text)
            except ValueError:
                return None
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=UTC)
            return instant.astimezone(UTC)
    return None


def timestamp_document(instant: datetime) -> dict[str, str]:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return {TIMESTAMP_TAG: instant.astimezone(UTC).isoformat()}


def bytes_document(data: bytes) -> dict[str, str]:
    return {BYTES_TAG: base64.b64encode(data).decode("ascii")}
