"""The point-lookup fast path: which SELECTs may read only the keys they name, and which keys.

A SELECT qualifies only when it is provably a lookup of one base table: its FROM is that
map itself (not a derived table, a CTE or a join), the map is read nowhere else in the
statement, and a top-level conjunct of its own WHERE compares a key column with `=` or
`IN` to literals or parameters. Then every row the WHERE can keep has one of the keys
that conjunct names, so reading just those keys and running the whole statement over
them gives the answer a scan would. Which keys a value names follows SQL, as DuckDB
compares: NULL names none, duplicates name one key once, a text key matches text only,
and an integer key matches the numbers and the integer-looking text DuckDB would cast
(`'05'`, `' 5'`). A value whose meaning is not certain (a number against a text key, a
boolean, text like `'1e3'`) makes the statement take the ordinary path through DuckDB.

When the key conjunct is the whole WHERE and the SELECT lists only plain columns or `*`,
the rows are answered straight from the image of those keys, without DuckDB.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Floats are exact integers only up to 2**53; past it a DOUBLE comparison may match a
# neighbouring key, so such values take the ordinary path.
FLOAT_EXACT_MAX = 2**53
# The integer text DuckDB casts when it compares text with a BIGINT (spaces around, a
# sign, leading zeros). Anything else ('1e3', '2.0', '1_000') is left to DuckDB.
INTEGER_TEXT = re.compile(r" *[+-]?[0-9]+ *")
# Clauses after which the rows are not the WHERE's rows as they stand.
PROJECTION_BLOCKERS = ("group", "having", "order", "limit", "offset", "distinct", "qualify")
SELECT_BLOCKERS = ("with_", "joins", "laterals", "pivots", "sample", "connect", "match", "into")


class Unprovable(Exception):
    """A key value whose matches are not certain: the statement takes the ordinary path."""


@dataclass(frozen=True)
class PointLookup:
    """A one-table SELECT that pins its key with `=` or `IN`: only those keys are read."""

    values: tuple[exp.Expr, ...]
    column: str
    # "string" for a VARCHAR key column, "int" for a BIGINT one.
    key_type: str
    # The plain columns it returns (["*"] for all) when nothing else needs DuckDB:
    # no expressions, no ordering, no other condition. None otherwise.
    projection: tuple[str, ...] | None


def find(
    tree: exp.Expression, tables: Sequence[str], key_columns: Mapping[str, str]
) -> PointLookup | None:
    """The point lookup of a SELECT, given the key columns of its one map (lower-case name
    to field type), or None when the statement is not provably one."""
    if not isinstance(tree, exp.Select) or len(tables) != 1:
        return None
    if any(tree.args.get(name) for name in SELECT_BLOCKERS):
        return None
    source = tree.args.get("from_")
    table = source.this if isinstance(source, exp.From) else None
    if (
        not isinstance(table, exp.Table)
        or not isinstance(table.this, exp.Identifier)
        or table.name != tables[0]
        or any(table.args.get(name) for name in ("joins", "laterals", "pivots", "sample"))
        # A map read again (a subquery in the SELECT list or the WHERE) needs all its rows.
        or len(list(tree.find_all(exp.Table))) != 1
    ):
        return None
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        # `FROM t AS q(a, b)` renames the columns: the key's name is no longer its own.
        return None
    qualifiers = {"", table.name.lower(), table.alias_or_name.lower()}
    where = tree.args.get("where")
    if where is None:
        return None
    conditions = _conjuncts(where.this)
    for condition in conditions:
        found = _key_condition(condition, key_columns, qualifiers)
        if found is None:
            continue
        column, values = found
        projection = _plain_projection(tree) if len(conditions) == 1 else None
        return PointLookup(values, column, key_columns[column], projection)
    return None


def _key_condition(
    condition: exp.Expression, key_columns: Mapping[str, str], qualifiers: set[str]
) -> tuple[str, tuple[exp.Expr, ...]] | None:
    def key_column(node: exp.Expr) -> str | None:
        if (
            isinstance(node, exp.Column)
            and isinstance(node.this, exp.Identifier)
            and node.table.lower() in qualifiers
            and not node.args.get("db")
            and node.name.lower() in key_columns
        ):
            return str(node.name.lower())
        return None

    if isinstance(condition, exp.EQ):
        sides = ((condition.left, condition.right), (condition.right, condition.left))
        for column_side, value in sides:
            name = key_column(column_side)
            if name is not None and _is_value(value):
                return name, (value,)
        return None
    if isinstance(condition, exp.In) and not condition.args.get("query"):
        name = key_column(condition.this)
        values = condition.expressions
        if (
            name is not None
            and not condition.args.get("unnest")
            and not condition.args.get("field")
            and values
            and all(_is_value(value) for value in values)
        ):
            return name, tuple(values)
    return None


def _is_value(node: exp.Expr) -> bool:
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and not node.this.is_string
    return isinstance(node, exp.Literal | exp.Placeholder | exp.Null)


def _conjuncts(condition: Any) -> list[Any]:
    if isinstance(condition, exp.And):
        return [*_conjuncts(condition.left), *_conjuncts(condition.right)]
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _plain_projection(tree: exp.Select) -> tuple[str, ...] | None:
    """The selected column names when the SELECT is only plain columns (or a bare *)."""
    if any(tree.args.get(name) for name in PROJECTION_BLOCKERS):
        return None
    names: list[str] = []
    for item in tree.expressions:
        if isinstance(item, exp.Star) and not any(item.args.values()):
            names.append("*")
        elif (
            isinstance(item, exp.Column)
            and isinstance(item.this, exp.Identifier)
            and not item.table
        ):
            names.append(item.name)
        else:
            return None
    return tuple(names)


def keys(lookup: PointLookup, parameters: Sequence[Any]) -> list[str] | None:
    """The distinct keys the lookup's values name, in order; None when a value's matches
    are not certain (then the statement must run as an ordinary query)."""
    found: dict[str, None] = {}
    try:
        for node in lookup.values:
            key = _key_of(_value_of(node, parameters), lookup.key_type)
            if key is not None:
                found[key] = None
    except Unprovable:
        return None
    return list(found)


def _value_of(node: exp.Expr, parameters: Sequence[Any]) -> Any:
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Placeholder):
        # Placeholders are numbered ($1, $2, ...) when the statement is parsed.
        index = int(str(node.this)) - 1
        if not 0 <= index < len(parameters):
            raise Unprovable
        return parameters[index]
    if isinstance(node, exp.Neg):
        return -_number(node.this)
    assert isinstance(node, exp.Literal)
    return node.this if node.is_string else _number(node)


def _number(literal: exp.Expr) -> int | Decimal:
    text = str(literal.this)
    if text.isdigit():
        return int(text)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise Unprovable from None


def _key_of(value: Any, key_type: str) -> str | None:
    """The stored key a value matches, None when it matches no row."""
    if value is None:
        return None  # `= NULL` is never true.
    if key_type == "string":
        if isinstance(value, str):
            return value
        # DuckDB casts a text column to a number to compare it with one: '05' and '5'
        # both equal 5, which no single key can answer.
        raise Unprovable
    if isinstance(value, bool):
        raise Unprovable
    if isinstance(value, str):
        if not INTEGER_TEXT.fullmatch(value):
            raise Unprovable
        value = int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= FLOAT_EXACT_MAX:
            raise Unprovable
        if not value.is_integer():
            return None  # 2.5 equals no integer.
        value = int(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise Unprovable
        if value != value.to_integral_value():
            return None
        value = int(value)
    if not isinstance(value, int):
        raise Unprovable
    if not INT64_MIN <= value <= INT64_MAX:
        return None  # No BIGINT key holds it.
    return str(value)
