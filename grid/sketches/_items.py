"""The canonical form of sketch items: how each Python value becomes what a sketch sees.

Hashed kinds (hll, cms, bloom, topk) see every item as its canonical text, hashed as
the UTF-8 bytes of that text, so the same item hashes the same way in every kind, in
every process and after every restart:

- ``str``: the string itself. A DataSketches user in another language who updates
  with the same string gets the same hash.
- ``int``: its decimal form (``42`` is ``"42"``, ``-7`` is ``"-7"``).
- ``float``: a finite whole float is written as the int it equals (``3.0`` is ``"3"``
  and ``-0.0`` is ``"0"``, as ``3.0 == 3`` in Python); any other float is written by
  ``repr`` (``"0.1"``, ``"1e-07"``, ``"inf"``, ``"-inf"``, and ``"nan"`` for every NaN).
- ``bytes``, ``bytearray``, ``memoryview``: ``"0x"`` and the lowercase hex digits.
- numpy integers and floats: as the Python int or float they equal.
- ``bool``, ``None`` and anything else are refused: ``True`` could as well be ``"1"``
  as ``"True"``, and guessing would split one item into two.

Items are identified by their text, so the int ``42`` and the string ``"42"`` are one
item; strings that cannot be encoded as UTF-8 (lone surrogates) are refused.

The kll kind takes numbers only (int, float, bool as 0 and 1, numpy numeric arrays),
never NaN. The reservoir kind takes any JSON value and keeps it as compact JSON text.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from grid.sketches._errors import SketchItemError, SketchParameterError

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

# Top-level types a reservoir accepts; nested values are checked when encoded.
_JSON_TYPES = (str, int, float, bool, type(None), list, tuple, dict)
_JSON_TYPE_SET: frozenset[type] = frozenset(_JSON_TYPES)


class _BadItem(Exception):
    """Raised inside the fast loops; turned into a SketchItemError with the item's index."""


def item_text(item: object) -> str:
    """Return the canonical text of one hashed item, or raise SketchItemError."""
    try:
        return item if type(item) is str else _convert(item)
    except _BadItem as error:
        raise SketchItemError("item", None, str(error)) from None


def item_texts(items: Iterable[object], kind: str) -> list[str]:
    """Return the canonical texts of a batch, checked to be encodable as UTF-8.

    The whole batch is converted before any sketch is touched, so a bad item leaves
    the sketch as it was.
    """
    batch: list[Any] = items if type(items) is list else list(items)
    try:
        # Joining succeeds only when every item is a string: the common batch is then
        # checked at C speed and used as it is, never visiting an item in Python.
        joined = "".join(batch)
        texts: list[str] = batch
    except TypeError:
        texts = _convert_batch(batch, kind)
        joined = "".join(texts)
    # Only text that is not ASCII can hold a lone surrogate, which UTF-8 cannot encode.
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            raise _unencodable(texts, kind) from None
    return texts


def _convert_batch(batch: list[Any], kind: str) -> list[str]:
    try:
        # Plain strings and ints, the common items, stay inside the comprehension.
        return [
            item if type(item) is str else str(item) if type(item) is int else _convert(item)
            for item in batch
        ]
    except (_BadItem, ValueError):
        # str() refuses ints past 4300 digits with a ValueError; _convert names it.
        for index, item in enumerate(batch):
            try:
                _convert(item)
            except _BadItem as error:
                raise SketchItemError(kind, index, str(error)) from None
        raise


def item_bytes(items: Iterable[object], kind: str) -> list[bytes]:
    """Return the UTF-8 bytes of the canonical texts of a batch (what bloom hashes)."""
    texts = item_texts(items, kind)
    return [text.encode("utf-8") for text in texts]


def _unencodable(texts: list[str], kind: str) -> SketchItemError:
    for index, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SketchItemError(kind, index, "a string with a lone surrogate is not UTF-8")
    return SketchItemError(kind, None, "a string is not UTF-8")


def _convert(item: object) -> str:
    if isinstance(item, str):
        # The string's own characters, whatever a subclass's __str__ would say.
        return str.__str__(item)
    if isinstance(item, bool):
        raise _BadItem("a bool is not an item: use 0 and 1, or 'true' and 'false'")
    if isinstance(item, int):
        return _int_text(item)
    if isinstance(item, float):
        return _float_text(item)
    if isinstance(item, bytes | bytearray | memoryview):
        return "0x" + bytes(item).hex()
    if isinstance(item, numbers.Integral):
        return _int_text(int(item))
    if isinstance(item, numbers.Real):
        return _float_text(float(item))
    raise _BadItem(f"{type(item).__name__} is not an item: items are str, int, float or bytes")


def _int_text(value: int) -> str:
    try:
        return str(int(value))
    except ValueError:
        # Python refuses to print ints of more than 4300 digits.
        raise _BadItem("an int too large to print is not an item") from None


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(float(value))


def numeric_array(
    items: Sequence[float] | npt.NDArray[np.generic], kind: str
) -> npt.NDArray[np.float64]:
    """Return a batch of numbers as a float64 array, refusing non-numbers and NaN."""
    if isinstance(items, np.ndarray):
        array = items
    else:
        try:
            array = np.asarray(items)
        except ValueError:
            raise SketchItemError(
                kind, None, "the batch is not a flat sequence of numbers"
            ) from None
    if array.ndim != 1:
        raise SketchItemError(kind, None, f"the batch has {array.ndim} dimensions, not 1")
    if array.dtype.kind in "biuf":
        values = array.astype(np.float64, copy=False)
    else:
        # Object arrays (ints past 64 bits, mixed types) and strings go item by item,
        # over the items as given: numpy has already turned numbers mixed with strings
        # into strings.
        originals = array.tolist() if isinstance(items, np.ndarray) else list(items)
        values = np.empty(len(originals), dtype=np.float64)
        for index, item in enumerate(originals):
            if isinstance(item, str | bytes) or not isinstance(item, numbers.Real):
                raise SketchItemError(
                    kind, index, f"{type(item).__name__} is not a number: {kind} takes numbers"
                )
            values[index] = float(item)
    nan_positions = np.isnan(values)
    if nan_positions.any():
        index = int(np.argmax(nan_positions))
        raise SketchItemError(kind, index, "NaN has no place in an order, so it has no rank")
    return values


def number(value: object, parameter: str) -> float:
    """Return one number (a query argument), refusing non-numbers and NaN."""
    if isinstance(value, str | bytes) or not isinstance(value, numbers.Real):
        raise SketchParameterError(parameter, f"must be a number, not {type(value).__name__}")
    result = float(value)
    if math.isnan(result):
        raise SketchParameterError(parameter, "must be a number, not NaN")
    return result


def check_json_types(items: Sequence[object], kind: str) -> None:
    """Refuse a batch whose top-level values are not JSON types, before anything changes."""
    # Comparing the set of exact types is one C-speed pass; subclasses take the slow path.
    if set(map(type, items)) <= _JSON_TYPE_SET:
        return
    for index, item in enumerate(items):
        if not isinstance(item, _JSON_TYPES):
            raise SketchItemError(
                kind, index, f"{type(item).__name__} is not a JSON value: {kind} keeps JSON"
            )


def json_bytes(item: object, kind: str, index: int) -> bytes:
    """Return an item as compact JSON text in UTF-8, with sorted keys so equal values match."""
    try:
        text = json.dumps(
            item, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
        )
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as error:
        raise SketchItemError(kind, index, f"not a JSON value: {error}") from None


def json_value(data: bytes) -> JsonValue:
    """Decode what json_bytes produced."""
    value: JsonValue = json.loads(data)
    return value
