"""Commutative field updates: INCREMENT adds to numeric fields, APPEND extends lists.

An integer field stays within 64 signed bits: an increment that would leave the range is
refused when it is checked. Increments commute, so several may be prepared on one key
at once and commit in any order; the check counts the increments in flight (`in_flight`,
the sums of their positive and of their negative changes per field), so that no order
of their commits can leave the range either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from grid.errors import InvalidArgument
from grid.memory.records import Op
from grid.protocol import Write
from grid.values import INT_MAX, INT_MIN


def increments_in_flight(writes: Iterable[Write]) -> dict[str, tuple[int, int]]:
    """Per field, the sums of the positive and of the negative integer increments."""
    sums: dict[str, tuple[int, int]] = {}
    for write in writes:
        if write.op != Op.INCREMENT:
            continue
        changes = orjson.loads(write.value)
        for name, change in changes.items():
            if type(change) is not int:
                continue
            up, down = sums.get(name, (0, 0))
            sums[name] = (up + max(change, 0), down + min(change, 0))
    return sums


def apply_field_update(
    write: Write,
    current: bytes | None,
    *,
    in_flight: Mapping[str, tuple[int, int]] | None = None,
) -> bytes:
    """Adds numbers to fields (INCREMENT) or items to list fields (APPEND).

    With `in_flight` given (a checked apply), an integer result that would leave 64
    signed bits, now or once the increments in flight commit, is refused."""
    where = f"{write.map}/{write.key}"
    try:
        changes = orjson.loads(write.value)
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(
            f"update of '{where}' is not valid JSON: {error}", field="value"
        ) from None
    if not isinstance(changes, dict) or not changes:
        raise InvalidArgument(
            f"update of '{where}' must be a non-empty object of field to change", field="value"
        )
    document: Any = {} if current is None else orjson.loads(current)
    if not isinstance(document, dict):
        raise InvalidArgument(
            f"'{where}' holds a {type(document).__name__}, not an object with fields",
            field="key",
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
            result = present + change
            if in_flight is not None and type(result) is int:
                up, down = in_flight.get(name, (0, 0))
                if not (result + down >= INT_MIN and result + up <= INT_MAX):
                    in_flight_note = " with the increments in flight" if up or down else ""
                    raise InvalidArgument(
                        f"increment of '{where}' field '{name}' by {change} would leave the "
                        f"64-bit integer range{in_flight_note} (it holds {present})",
                        field=name,
                    )
            document[name] = result
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
