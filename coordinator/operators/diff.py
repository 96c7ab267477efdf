"""Diff of two snapshots of a map, as Arrow tables, in DuckDB: what differs and by how much.

Both sides are whole Arrow tables (`__key`, `__version`, then the map's columns: typed
fields for a map with a schema, the JSON `value` otherwise, `sketch` bytes for a sketch
map). DuckDB joins them on `__key` once and keeps only the rows that differ: a key on
one side only, or a column whose values are distinct (`IS DISTINCT FROM`, so NULLs
compare as values). Counts, bounded samples, totals of numeric columns and the largest
numeric differences are then queries over that small table; no value goes through
Python except the sampled rows. `__version` is not compared: a sandbox's own commits
have versions of their own.

A column only one side has compares as NULL on the other; a column whose type differs
between the sides compares as a number when both types are numeric, else as text.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from coordinator.sql.tables import KEY_COLUMN, VALUE_COLUMN, VERSION_COLUMN

KINDS = ("only_in_production", "only_in_sandbox", "different")
NUMERIC_TYPES = (pa.types.is_integer, pa.types.is_floating)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_numeric(data_type: pa.DataType) -> bool:
    return any(check(data_type) for check in NUMERIC_TYPES)


def diff_map(
    connection: duckdb.DuckDBPyConnection,
    production: pa.Table,
    sandbox: pa.Table,
    *,
    sample: int,
) -> dict[str, Any]:
    """The report of one map (see the README's operator section for its shape)."""
    production_columns = {
        field.name: field.type
        for field in production.schema
        if field.name not in (KEY_COLUMN, VERSION_COLUMN)
    }
    sandbox_columns = {
        field.name: field.type
        for field in sandbox.schema
        if field.name not in (KEY_COLUMN, VERSION_COLUMN)
    }
    columns = list(production_columns) + [
        name for name in sandbox_columns if name not in production_columns
    ]
    numeric = [
        name
        for name in columns
        if name in production_columns
        and name in sandbox_columns
        and _is_numeric(production_columns[name])
        and _is_numeric(sandbox_columns[name])
    ]
    connection.register("production_side", production)
    connection.register("sandbox_side", sandbox)
    try:
        differs = [
            _side_expression(name, production_columns, sandbox_columns, "p")
            + " IS DISTINCT FROM "
            + _side_expression(name, production_columns, sandbox_columns, "s")
            for name in columns
        ]
        differs_sql = " OR ".join(differs) if differs else "FALSE"
        numeric_sql = "".join(
            f", p.{quote(name)} AS {quote('p_' + name)}, s.{quote(name)} AS {quote('s_' + name)}"
            for name in numeric
        )
        key = quote(KEY_COLUMN)
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE differing AS
            SELECT coalesce(p.{key}, s.{key}) AS key,
                   CASE WHEN s.{key} IS NULL THEN 'only_in_production'
                        WHEN p.{key} IS NULL THEN 'only_in_sandbox'
                        ELSE 'different' END AS kind
                   {numeric_sql}
            FROM production_side p FULL OUTER JOIN sandbox_side s ON p.{key} = s.{key}
            WHERE p.{key} IS NULL OR s.{key} IS NULL OR ({differs_sql})
            """
        )
        counts = dict.fromkeys(KINDS, 0)
        for kind, count in connection.execute(
            "SELECT kind, count(*) FROM differing GROUP BY kind"
        ).fetchall():
            counts[kind] = int(count)
        report: dict[str, Any] = {
            **counts,
            "production_keys": production.num_rows,
            "sandbox_keys": sandbox.num_rows,
            "same": production.num_rows - counts["only_in_production"] - counts["different"],
            "samples": _samples(connection, production, sandbox, columns, sample),
        }
        only_production = [name for name in production_columns if name not in sandbox_columns]
        only_sandbox = [name for name in sandbox_columns if name not in production_columns]
        if only_production or only_sandbox:
            report["columns_only_in_production"] = only_production
            report["columns_only_in_sandbox"] = only_sandbox
        if numeric:
            report["numeric"] = _numeric(connection, numeric, sample)
        return report
    finally:
        connection.execute("DROP TABLE IF EXISTS differing")
        connection.unregister("production_side")
        connection.unregister("sandbox_side")


def _side_expression(
    name: str, production: dict[str, pa.DataType], sandbox: dict[str, pa.DataType], side: str
) -> str:
    own = production if side == "p" else sandbox
    if name not in own:
        return "NULL"
    expression = f"{side}.{quote(name)}"
    if name in production and name in sandbox and production[name] != sandbox[name]:
        both_numeric = _is_numeric(production[name]) and _is_numeric(sandbox[name])
        return f"CAST({expression} AS {'DOUBLE' if both_numeric else 'VARCHAR'})"
    return expression


def _samples(
    connection: duckdb.DuckDBPyConnection,
    production: pa.Table,
    sandbox: pa.Table,
    columns: Sequence[str],
    sample: int,
) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {}
    key = quote(KEY_COLUMN)
    for kind in KINDS:
        keys = [
            row[0]
            for row in connection.execute(
                "SELECT key FROM differing WHERE kind = ? ORDER BY key LIMIT ?", [kind, sample]
            ).fetchall()
        ]
        if not keys:
            samples[kind] = []
            continue
        sides: dict[str, dict[str, dict[str, Any]]] = {}
        for side, table_name in (("production", "production_side"), ("sandbox", "sandbox_side")):
            cursor = connection.execute(
                f"SELECT * EXCLUDE ({quote(VERSION_COLUMN)}) FROM {table_name} "
                f"WHERE {key} IN (SELECT unnest(?))",
                [keys],
            )
            names = [column[0] for column in cursor.description or ()]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
            sides[side] = {row.pop(KEY_COLUMN): _document(row) for row in rows}
        entries = []
        for item in keys:
            entry: dict[str, Any] = {"key": item}
            before = sides["production"].get(item)
            after = sides["sandbox"].get(item)
            if before is not None:
                entry["production"] = before
            if after is not None:
                entry["sandbox"] = after
            if before is not None and after is not None:
                entry["fields"] = [name for name in columns if before.get(name) != after.get(name)]
            entries.append(entry)
        samples[kind] = entries
    return samples


def _numeric(
    connection: duckdb.DuckDBPyConnection, numeric: Sequence[str], sample: int
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in numeric:
        column = quote(name)
        production_total, sandbox_total = connection.execute(
            f"SELECT (SELECT sum({column}) FROM production_side), "
            f"(SELECT sum({column}) FROM sandbox_side)"
        ).fetchone() or (None, None)
        before = quote("p_" + name)
        after = quote("s_" + name)
        largest = connection.execute(
            f"""
            SELECT key, {before}, {after},
                   coalesce({after}, 0) - coalesce({before}, 0) AS difference
            FROM differing
            WHERE {before} IS DISTINCT FROM {after}
            ORDER BY abs(difference) DESC NULLS LAST, key
            LIMIT ?
            """,
            [sample],
        ).fetchall()
        result[name] = {
            "production_total": _plain(production_total) or 0,
            "sandbox_total": _plain(sandbox_total) or 0,
            "difference": _plain((sandbox_total or 0) - (production_total or 0)),
            "largest_differences": [
                {
                    "key": key,
                    "production": _plain(value_before),
                    "sandbox": _plain(value_after),
                    "difference": _plain(difference),
                }
                for key, value_before, value_after, difference in largest
            ],
        }
    return result


def _document(row: dict[str, Any]) -> dict[str, Any]:
    """A sampled row as JSON-ready values: a schemaless map's value is its document."""
    if set(row) == {VALUE_COLUMN} and isinstance(row[VALUE_COLUMN], str):
        return {VALUE_COLUMN: orjson.loads(row[VALUE_COLUMN])}
    return {name: _plain(value) for name, value in row.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        # Sketches can be megabytes: a sample names their size, not their bytes.
        if len(value) > 64:
            return {"$bytes_length": len(value)}
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
