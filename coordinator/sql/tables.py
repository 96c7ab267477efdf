"""Maps seen as tables: their Arrow schema, and Arrow images built from stored entries.

A map with a schema is a table of `__key`, `__version` and one typed column per field;
a schemaless map is `__key`, `__version` and a JSON `value` column; a sketch map is
`__key`, `__version` and the sketch's portable bytes in `sketch`. An image is built
from a partition's entries with one JSON parse for all of them, then one Arrow array
per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from grid import values
from grid.catalog import MapDefinition
from grid.entry import VERSION_BYTES
from grid.schema import FieldSpec

KEY_COLUMN = "__key"
VERSION_COLUMN = "__version"
VALUE_COLUMN = "value"
SKETCH_COLUMN = "sketch"

SCALAR_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "bytes": pa.binary(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def field_arrow_type(spec: FieldSpec) -> pa.DataType:
    if spec.type in SCALAR_ARROW_TYPES:
        return SCALAR_ARROW_TYPES[spec.type]
    if spec.type == "list" and spec.items in SCALAR_ARROW_TYPES:
        return pa.list_(SCALAR_ARROW_TYPES[spec.items])
    # Lists of mixed items, maps and json travel as JSON text.
    return pa.string()


def table_schema(definition: MapDefinition) -> pa.Schema:
    columns = [
        pa.field(KEY_COLUMN, pa.string(), nullable=False),
        pa.field(VERSION_COLUMN, pa.int64()),
    ]
    if definition.sketch is not None:
        columns.append(pa.field(SKETCH_COLUMN, pa.binary()))
    elif definition.schema is None:
        columns.append(pa.field(VALUE_COLUMN, pa.string()))
    else:
        columns.extend(
            pa.field(spec.name, field_arrow_type(spec)) for spec in definition.schema.fields
        )
    return pa.schema(columns)


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _column(spec: FieldSpec, documents: list[Any]) -> pa.Array:
    name = spec.name
    raw = [document.get(name) if type(document) is dict else None for document in documents]
    arrow_type = field_arrow_type(spec)
    if spec.type == "timestamp":
        return pa.array([values.tagged_timestamp(item) for item in raw], arrow_type)
    if spec.type == "bytes":
        return pa.array([values.tagged_bytes(item) for item in raw], arrow_type)
    if spec.type == "list" and spec.items is not None:
        if spec.items == "timestamp":
            raw = [
                None if item is None else [values.tagged_timestamp(x) for x in item] for item in raw
            ]
        elif spec.items == "bytes":
            raw = [None if item is None else [values.tagged_bytes(x) for x in item] for item in raw]
        return pa.array(raw, arrow_type)
    if spec.type in ("list", "map", "json"):
        return pa.array([_json_text(item) for item in raw], pa.string())
    if spec.type == "float":
        return pa.array([None if item is None else float(item) for item in raw], arrow_type)
    return pa.array(raw, arrow_type)


def build_image(definition: MapDefinition, entries: Sequence[tuple[str, bytes]]) -> pa.Table:
    """An Arrow table of a partition's entries of one map."""
    schema = table_schema(definition)
    if not entries:
        return schema.empty_table()
    keys = [key for key, _ in entries]
    versions = [int.from_bytes(entry[-VERSION_BYTES:], "little") for _, entry in entries]
    columns: list[pa.Array] = [pa.array(keys, pa.string()), pa.array(versions, pa.int64())]
    if definition.sketch is not None:
        columns.append(pa.array([entry[:-VERSION_BYTES] for _, entry in entries], pa.binary()))
    else:
        joined = b"[" + b",".join([entry[:-VERSION_BYTES] for _, entry in entries]) + b"]"
        if definition.schema is None:
            documents = orjson.loads(joined)
            columns.append(
                pa.array([orjson.dumps(item).decode() for item in documents], pa.string())
            )
        else:
            documents = orjson.loads(joined)
            columns.extend(_column(spec, documents) for spec in definition.schema.fields)
    return pa.Table.from_arrays(columns, schema=schema)


def python_value(spec: FieldSpec | None, value: Any) -> Any:
    """A SQL result value as the JSON document a map stores for that field."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return values.timestamp_document(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return values.bytes_document(bytes(value))
    if spec is not None and spec.type in ("map", "json") and isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if spec is not None and spec.type == "list" and spec.items is None and isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, list):
        return [python_value(None, item) for item in value]
    if isinstance(value, float) and value.is_integer() and spec is not None and spec.type == "int":
        # 3.0 is the int 3; 2.5 stays a float, so the schema refuses it instead of it
        # being truncated to 2.
        return int(value)
    if type(value).__name__ == "Decimal":
        return float(value)
    return value
