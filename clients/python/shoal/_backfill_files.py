"""Reading a backfill's file: JSON lines, CSV or Parquet rows as JSON documents.

JSON lines are sent as written (a line that is not JSON is then rejected by the
pipeline, with its row, like a malformed Kafka record); CSV and Parquet are read with
pyarrow (CSV columns get pyarrow's inferred types, so numbers arrive as numbers).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from shoal._errors import InvalidArgumentError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def file_format(path: Path) -> str:
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(FORMATS))
        raise InvalidArgumentError(
            f"{path.name}: unsupported file format '{path.suffix or '(none)'}' (use {known})",
            field="file",
        )
    return found


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON-compatible")


def read_rows(path: Path) -> tuple[str, list[bytes]]:
    """The file's SHA-256 (hex) and its rows, each a JSON document."""
    if not path.is_file():
        raise InvalidArgumentError(f"{path} does not exist", field="file")
    kind = file_format(path)
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if kind == "jsonl":
        return digest, [line.strip() for line in content.splitlines() if line.strip()]
    try:
        if kind == "csv":
            table = _read_csv(path)
        else:
            import pyarrow.parquet

            table = pyarrow.parquet.read_table(str(path))
    except InvalidArgumentError:
        raise
    except ImportError:
        raise InvalidArgumentError(
            f"{path.name}: reading {kind} files needs pyarrow (pip install 'shoal-client[arrow]')",
            field="file",
        ) from None
    except Exception as error:
        raise InvalidArgumentError(
            f"{path.name} is not a readable {kind.upper()} file: {error}", field="file"
        ) from None
    records = table.to_pylist()
    if kind == "csv":
        _numbers_despite_bad_cells(table, records)
    rows = [
        json.dumps(
            {name: value for name, value in row.items() if value is not None}, default=_default
        ).encode()
        for row in records
    ]
    return digest, rows


# No leading zeros: 02139 is a code kept as text, not the number 2139.
INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
DECIMAL = re.compile(r"[+-]?(0|[1-9][0-9]*)(\.[0-9]*)?([eE][+-]?[0-9]+)?")
# A text column whose values are mostly numbers is a numeric column with bad cells.
NUMERIC_SHARE_MIN = 0.5


def _numbers_despite_bad_cells(table: Any, records: list[dict[str, Any]]) -> None:
    """pyarrow types a CSV column as text when one cell of a numeric column is not a
    number, which would reject every row of the file at the pipeline's schema. Such a
    column (numbers in most of its cells) keeps its numbers as numbers and its
    bad cells as text, so only their rows are rejected, each naming its row and field."""
    import pyarrow

    for field in table.schema:
        if not (pyarrow.types.is_string(field.type) or pyarrow.types.is_large_string(field.type)):
            continue
        texts = [row[field.name] for row in records if row.get(field.name) is not None]
        integers = sum(1 for text in texts if INTEGER.fullmatch(text.strip()))
        decimals = sum(1 for text in texts if DECIMAL.fullmatch(text.strip()))
        if not texts or decimals <= NUMERIC_SHARE_MIN * len(texts):
            continue
        as_integer = integers == decimals
        for row in records:
            text = row.get(field.name)
            if text is None:
                continue
            stripped = text.strip()
            if as_integer and INTEGER.fullmatch(stripped):
                row[field.name] = int(stripped)
            elif not as_integer and DECIMAL.fullmatch(stripped):
                row[field.name] = float(stripped)


def _read_csv(path: Path) -> Any:
    """The CSV file as a table; a row that does not fit the header is refused naming its
    row (1 is the first record, the header is not one), so the operator can fix it."""
    import pyarrow.csv

    bad: list[Any] = []

    def first_bad_row(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        # One thread, so pyarrow knows each row's number; quoted values may hold newlines.
        return pyarrow.csv.read_csv(
            str(path),
            read_options=pyarrow.csv.ReadOptions(use_threads=False),
            parse_options=pyarrow.csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=first_bad_row
            ),
        )
    except Exception as error:
        if not bad:
            raise
        row = bad[0]
        where = f"row {row.number - 1}" if row.number else "a row"
        raise InvalidArgumentError(
            f"{path.name} is not a readable CSV file: {where} has {row.actual_columns} columns "
            f"where the header has {row.expected_columns}: {row.text[:200]!r}; nothing was "
            "applied",
            field="file",
        ) from error
