"""Values on the wire: JSON documents, with bytes and datetimes in tagged form.

``bytes`` travel as ``{"$bytes": "<base64>"}`` and ``datetime`` as
``{"$ts": "<ISO 8601>"}`` (naive datetimes are taken as UTC); reads turn the tags
back into Python values.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from shoal._errors import InvalidArgumentError

BYTES_TAG = "$bytes"
TIMESTAMP_TAG = "$ts"
_TAG_MARKER = b'"$'

try:  # orjson, when installed (pip install shoal-client[fast]), parses several times faster.
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


def _tagged(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES_TAG: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return {TIMESTAMP_TAG: value.astimezone(UTC).isoformat()}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-compatible")


_tagging_encoder = json.JSONEncoder(
    separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=_tagged
)


def encode(value: Any, *, what: str = "value") -> bytes:
    """The wire form of a value; raises InvalidArgumentError for what JSON cannot carry."""
    try:
        return _tagging_encoder.encode(value).encode()
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"{what} cannot be sent: {error}", field=what) from None
    except RecursionError:
        raise InvalidArgumentError(f"{what} is nested too deeply to send", field=what) from None


def _untag(value: Any) -> Any:
    if type(value) is dict:
        if len(value) == 1:
            # The server refuses malformed tags, but a value stored before it did must
            # still read: a tag that does not decode comes back as the plain object.
            if BYTES_TAG in value and isinstance(value[BYTES_TAG], str):
                try:
                    return base64.b64decode(value[BYTES_TAG], validate=True)
                except ValueError:
                    return value
            if TIMESTAMP_TAG in value and isinstance(value[TIMESTAMP_TAG], str):
                try:
                    instant = datetime.fromisoformat(value[TIMESTAMP_TAG])
                except ValueError:
                    return value
                return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
        return {key: _untag(item) for key, item in value.items()}
    if type(value) is list:
        return [_untag(item) for item in value]
    return value


def decode(data: bytes) -> Any:
    value = _loads(data)
    if _TAG_MARKER in data:
        return _untag(value)
    return value


def decode_many(values: Sequence[bytes]) -> list[Any]:
    """Decodes a batch with one parse: much faster than one parse per value."""
    if not values:
        return []
    return decode_array(b"[" + b",".join(values) + b"]")


def decode_array(joined: bytes) -> list[Any]:
    """Decodes a JSON array of values."""
    decoded: list[Any] = _loads(joined)
    if _TAG_MARKER in joined:
        return [_untag(value) for value in decoded]
    return decoded
