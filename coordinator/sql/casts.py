"""Assignment casts: the value an INSERT or UPDATE computes, made the type of its column.

SQL converts a value written to a column to the column's type (an "assignment cast", as
PostgreSQL and DuckDB do), so `SET qty = qty / 2`, `'7'` into a BIGINT column and
`'2026-11-01'` into a TIMESTAMP column work. Shoal follows those casts where no
information is lost and refuses, naming the column, where some would be:

- BIGINT takes integers in 64 bits, whole DOUBLE or DECIMAL values (`3.0`) and integer
  text (`' 7'`); it refuses fractions (`2.5`: round it, or divide with `//`), values
  out of range, booleans and other text.
- DOUBLE takes numbers (an integer past 2**53 only when it is exact) and numeric text;
  it refuses NaN and infinities (stored values are JSON numbers) and booleans.
- VARCHAR takes text, and numbers and booleans as their SQL text (`5` is `'5'`, true is
  `'true'`); timestamps, blobs and lists must be CAST to VARCHAR in the statement.
- BOOLEAN takes booleans and the text `true/false/t/f/yes/no/y/n/on/off/1/0`; it
  refuses numbers.
- TIMESTAMP takes timestamps (one without a zone is UTC), dates (midnight UTC) and ISO
  8601 text (`'2026-11-01'`, `'2024-02-03 04:05:06'`, `'2024-02-03T04:05:06+02:00'`).
- BLOB takes blobs; text must be cast (`'abc'::BLOB`) to mean its bytes.
- A list column takes lists, each item cast as above.

NULL stays NULL in every column: a column's DEFAULT applies only when the statement
leaves the column out, and a required (NOT NULL) column refuses it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from grid.errors import ValidationError
from grid.schema import FieldSpec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT_EXACT_MAX = 2**53
INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")
NUMBER_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "on", "1"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "off", "0"})
SQL_TYPE_NAMES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "bytes": "BLOB",
    "timestamp": "TIMESTAMP",
}


class CastRefused(Exception):
    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def assign(spec: FieldSpec, value: Any) -> Any:
    """`value` as the column of `spec` holds it, or a ValidationError naming the column
    (rule `type`, as the schema's own type check)."""
    if value is None:
        return None
    try:
        if spec.type == "list" and spec.items in SQL_TYPE_NAMES:
            if not isinstance(value, list):
                raise CastRefused(f"{_shown(value)} is not a list")
            return [None if item is None else _cast(spec.items, item) for item in value]
        if spec.type in SQL_TYPE_NAMES:
            return _cast(spec.type, value)
    except CastRefused as refused:
        type_name = SQL_TYPE_NAMES.get(spec.type, "")
        if spec.type == "list":
            type_name = f"{SQL_TYPE_NAMES[spec.items or 'string']}[]"
        hint = f"; {refused.hint}" if refused.hint else ""
        raise ValidationError(
            spec.name, "type", f"{refused.reason} in a {type_name} column{hint}"
        ) from None
    # Lists of mixed items, maps and JSON take any value (text is read as JSON).
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _cast(field_type: str, value: Any) -> Any:
    if field_type == "int":
        return _to_int(value)
    if field_type == "float":
        return _to_float(value)
    if field_type == "string":
        return _to_text(value)
    if field_type == "bool":
        return _to_bool(value)
    if field_type == "timestamp":
        return _to_timestamp(value)
    return _to_bytes(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CastRefused(f"a boolean ({value}) is not a number")
    if isinstance(value, str):
        if not INTEGER_TEXT.fullmatch(value):
            raise CastRefused(f"{_shown(value)} is not an integer")
        value = int(value)
    elif isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise CastRefused(f"{value} is not a finite number")
        if isinstance(value, Decimal) and not value.is_finite():
            raise CastRefused(f"{value} is not a finite number")
        if value != int(value):
            raise CastRefused(
                f"{value} would lose its fraction", "round it, or divide with // for an integer"
            )
        value = int(value)
    if not isinstance(value, int):
        raise CastRefused(f"{_shown(value)} is not a number")
    if not INT64_MIN <= value <= INT64_MAX:
        raise CastRefused(f"{value} does not fit in 64 bits")
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise CastRefused(f"a boolean ({value}) is not a number")
    if isinstance(value, str):
        if not NUMBER_TEXT.fullmatch(value):
            raise CastRefused(f"{_shown(value)} is not a number")
        result = float(value)
    elif isinstance(value, int):
        result = float(value)
        if abs(value) > FLOAT_EXACT_MAX and int(result) != value:
            raise CastRefused(f"{value} has more digits than a DOUBLE holds")
    elif isinstance(value, float | Decimal):
        result = float(value)
    else:
        raise CastRefused(f"{_shown(value)} is not a number")
    if not math.isfinite(result):
        raise CastRefused(f"{value} is not a finite number (stored values are JSON numbers)")
    return result


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise CastRefused(f"{_shown(value)} is not text", "CAST it to VARCHAR in the statement")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_TEXT:
            return True
        if word in FALSE_TEXT:
            return False
    raise CastRefused(f"{_shown(value)} is not a boolean")


def _to_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            raise CastRefused(
                f"{_shown(value)} is not a timestamp",
                "write '2026-11-01' or '2026-11-01 12:30:00+00'",
            ) from None
        return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    raise CastRefused(f"{_shown(value)} is not a timestamp")


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise CastRefused(f"{_shown(value)} is not a blob", "write '...'::BLOB for the bytes of text")
