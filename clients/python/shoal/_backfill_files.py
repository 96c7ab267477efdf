"""Reading a backfill's file: JSON lines, CSV or Parquet rows as JSON documents.

JSON lines are sent as written (a line that is not JSON is then rejected by the
pipeline, with its row, like a malformed Kafka record); CSV and Parquet are read with
pyarrow (CSV columns get pyarrow's inferred types, so numbers arrive as numbers).
"""

from __future__ import annotations

import hashlib
import json
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
            import pyarrow.csv

            table = pyarrow.csv.read_csv(str(path))
        else:
            import pyarrow.parquet

            table = pyarrow.parquet.read_table(str(path))
    except ImportError:
        raise InvalidArgumentError(
            f"{path.name}: reading {kind} files needs pyarrow (pip install 'shoal-client[arrow]')",
            field="file",
        ) from None
    except Exception as error:
        raise InvalidArgumentError(
            f"{path.name} is not a readable {kind.upper()} file: {error}", field="file"
        ) from None
    rows = [
        json.dumps(
            {name: value for name, value in row.items() if value is not None}, default=_default
        ).encode()
        for row in table.to_pylist()
    ]
    return digest, rows
