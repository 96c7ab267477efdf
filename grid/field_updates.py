"""Commutative field updates: INCREMENT adds to numeric fields, APPEND extends lists."""

from __future__ import annotations

from typing import Any

import orjson

from grid.errors import InvalidArgument
from grid.memory.records import Op
from grid.protocol import Write


def apply_field_update(write: Write, current: bytes | None) -> bytes:
    """Adds numbers to fields (INCREMENT) or items to list fields (APPEND)."""
    where = f"{write.map}/{write.key}"
    try:
        changes = orjson.loads(write.value)
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(f"update of '{where}' is not valid JSON: {error}") from None
    if not isinstance(changes, dict) or not changes:
        raise InvalidArgument(
            f"update of '{where}' must be a non-empty object of field to change", field=where
        )
    document: Any = {} if current is None else orjson.loads(current)
    if not isinstance(document, dict):
        raise InvalidArgument(
            f"'{where}' holds a {type(document).__name__}, not an object with fields",
            field=where,
        )
    document = dict(document)
    for name, change in changes.items():
        present = document.get(name)
        if write.op == Op.INCREMENT:
            if isinstance(change, bool) or not isinstance(change, int | float):
                raise InvalidArgument(
                    f"increment of '{where}' field '{name}' must be a number", field=name
                )
            if present is None:
                present = 0
            if isinstance(present, bool) or not isinstance(present, int | float):
                raise InvalidArgument(
                    f"cannot increment '{where}' field '{name}': it holds {type(present).__name__}",
                    field=name,
                )
            document[name] = present + change
        else:
            if not isinstance(change, list):
                raise InvalidArgument(
                    f"append to '{where}' field '{name}' must be a list of items", field=name
                )
            if present is None:
                present = []
            if not isinstance(present, list):
                raise InvalidArgument(
                    f"cannot append to '{where}' field '{name}': it holds {type(present).__name__}",
                    field=name,
                )
            document[name] = [*present, *change]
    return orjson.dumps(document)
