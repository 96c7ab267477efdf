"""The wire form of values: JSON documents with tagged bytes and timestamps.

A value is any JSON document. Two types JSON lacks travel tagged:
``{"$bytes": "<base64>"}`` and ``{"$ts": "<ISO 8601 with offset>"}``. The grid
stores the document as received (after validation), so reads return the same bytes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson

from grid.errors import InvalidArgument

BYTES_TAG = "$bytes"
TIMESTAMP_TAG = "$ts"


def decode(data: bytes, *, what: str = "value") -> Any:
    """Parses one JSON document, naming `what` in the error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(f"{what} is not valid JSON: {error}", field=what) from None


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
