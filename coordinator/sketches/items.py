"""The wire forms of a batch of sketch items, and what the server makes of each.

A SKETCH_ADD write carries its batch as bytes in one of three forms, told apart by
the first byte (JSON text never starts with a control character):

- a JSON array of items (the form transactions use): any JSON values, and bytes in
  the tagged form ``{"$bytes": "<base64>"}``, which hashed kinds read as bytes;
- ``0x01`` then UTF-8 strings separated by NUL bytes: a batch of strings with no JSON
  to write or parse, the fast path of ``Sketches.Add``;
- ``0x02`` then little-endian IEEE 754 doubles: a batch of numbers for kll.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from grid import values
from grid.errors import InvalidArgument
from grid.sketches import SketchKind

PACKED_STRINGS = 0x01
PACKED_DOUBLES = 0x02
# A sketch that keeps items (topk keeps their texts, a reservoir their JSON) keeps
# none larger than this, so the size of such a sketch has a bound fixed by its spec.
STORED_ITEM_BYTES_MAX = 1024
_BYTES_TAG = b'"$bytes"'
_HASHED_KINDS = (SketchKind.HYPERLOGLOG, SketchKind.COUNT_MIN, SketchKind.BLOOM, SketchKind.TOP_K)


Items = list[Any] | npt.NDArray[np.float64]


def decode_items(value: bytes, kind: SketchKind) -> Items:
    """Return the items of a batch in its wire form, or raise InvalidArgument naming `items`."""
    if not value:
        raise InvalidArgument("items: the batch is empty; give at least one item", field="items")
    form = value[0]
    if form == PACKED_STRINGS:
        try:
            texts = value[1:].decode("utf-8").split("\x00")
        except UnicodeDecodeError as error:
            raise InvalidArgument(f"items: not UTF-8 text: {error}", field="items") from None
        if kind is SketchKind.TOP_K:
            _check_text_sizes(texts)
        elif kind is SketchKind.RESERVOIR:
            _check_json_sizes(texts)
        return texts
    if form == PACKED_DOUBLES:
        if (len(value) - 1) % 8:
            raise InvalidArgument(
                f"items: {len(value) - 1} bytes of doubles is not a multiple of 8", field="items"
            )
        # A copy: the view would start one byte in, unaligned for the C++ update.
        numbers = np.frombuffer(value, dtype="<f8", offset=1).astype(np.float64)
        if kind is SketchKind.KLL:
            return numbers
        return numbers.tolist()  # type: ignore[no-any-return]
    try:
        items = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(f"items: not a JSON array: {error}", field="items") from None
    if not isinstance(items, list):
        raise InvalidArgument(
            f"items: must be a JSON array of items, not {type(items).__name__}", field="items"
        )
    if kind is not SketchKind.KLL:
        # Items are kept (reservoir) or hashed as given: an integer past 64 bits would be
        # a float already, silently changed, and a malformed tag would not read back.
        # KLL takes numbers as floats anyway.
        try:
            values.check_document(value, items, what="items")
        except InvalidArgument as error:
            # The argument at fault is the batch; the message says which item.
            raise InvalidArgument(error.message, field="items") from None
    if kind in _HASHED_KINDS and _BYTES_TAG in value:
        items = [_untag_bytes(item) for item in items]
    if kind is SketchKind.RESERVOIR:
        _check_json_sizes(items)
    elif kind is SketchKind.TOP_K:
        _check_text_sizes(items)
    return items


def item_count(value: bytes) -> int:
    """How many items a batch in its wire form holds (parsing JSON only when it must)."""
    if not value:
        return 0
    if value[0] == PACKED_STRINGS:
        return value.count(b"\x00") + 1
    if value[0] == PACKED_DOUBLES:
        return (len(value) - 1) // 8
    try:
        items = orjson.loads(value)
    except orjson.JSONDecodeError:
        return 0
    return len(items) if isinstance(items, list) else 0


def _untag_bytes(item: Any) -> Any:
    if type(item) is dict and len(item) == 1 and isinstance(item.get("$bytes"), str):
        try:
            return base64.b64decode(item["$bytes"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("items: a $bytes item is not base64", field="items") from None
    return item


def _check_text_sizes(items: list[Any]) -> None:
    # A character takes at most 4 UTF-8 bytes, so short batches need no encoding.
    longest = max((len(item) for item in items if isinstance(item, str)), default=0)
    if longest * 4 <= STORED_ITEM_BYTES_MAX:
        return
    for index, item in enumerate(items):
        if isinstance(item, str) and len(item.encode("utf-8", "surrogatepass")) > (
            STORED_ITEM_BYTES_MAX
        ):
            raise InvalidArgument(
                f"items: item {index} is longer than {STORED_ITEM_BYTES_MAX} bytes, "
                "the most a topk sketch keeps",
                field="items",
            )


def _check_json_sizes(items: list[Any]) -> None:
    for index, item in enumerate(items):
        try:
            size = len(orjson.dumps(item))
        except TypeError:
            try:
                # orjson refuses ints past 64 bits, which JSON (and the reservoir) allow.
                size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
            except (TypeError, ValueError, RecursionError):
                # Not JSON: the sketch names the item and the reason.
                continue
        if size > STORED_ITEM_BYTES_MAX:
            raise InvalidArgument(
                f"items: item {index} takes {size} bytes as JSON, more than the "
                f"{STORED_ITEM_BYTES_MAX} a reservoir keeps",
                field="items",
            )


def sketch_document(value: bytes) -> bytes:
    """The JSON document a key-value read answers for a stored sketch: its bytes, tagged.

    Sketch maps hold raw serialized sketches, not JSON; reads through the Data service
    answer ``{"$bytes": "<base64>"}``, which the SDK turns back into the portable bytes.
    """
    return b'{"$bytes":"' + base64.b64encode(value) + b'"}'
