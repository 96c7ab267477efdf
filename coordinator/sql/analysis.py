"""Parsing and checking a statement with sqlglot before anything runs.

It classifies the statement, names the maps it reads, refuses what may not run (file
access, configuration, extensions, table functions), finds point lookups on the key,
and reports a syntax error with its line and column.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from grid.errors import InvalidArgument

EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
FORBIDDEN_FUNCTION_PREFIXES = ("read_", "glob", "parquet_", "sniff_", "duckdb_", "pragma_")
KEY_COLUMN = "__key"
# Statement kinds that parse but may not run; anything else that is not a query is a
# bare expression, reported as a syntax error.
STATEMENT_TYPES = (
    exp.Command,
    exp.Pragma,
    exp.Copy,
    exp.Set,
    exp.Attach,
    exp.Detach,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Describe,
    exp.Merge,
    exp.Alter,
    exp.Install,
)


@dataclass
class Analysis:
    kind: str  # select, insert, update, delete, create, drop
    tree: Any
    explain: bool
    tables: list[str]
    # Columns each table's scan needs, and the WHERE conjuncts, for EXPLAIN.
    columns_by_table: dict[str, list[str]] = field(default_factory=dict)
    filters: list[str] = field(default_factory=list)
    parameters: int = 0
    # Derived once per statement text and reused (the analysis is cached): the SQL that
    # DuckDB runs, and the point lookup found for a set of key columns.
    duckdb_text: str = ""
    point_lookups: dict[frozenset[str], PointLookup | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PointLookup:
    """A one-table SELECT that pins its key with `=` or `IN`: only those keys are read."""

    keys: tuple[Any, ...]
    column: str
    # The plain columns it returns (["*"] for all) when nothing else needs DuckDB:
    # no expressions, no ordering, no other condition. None otherwise.
    projection: tuple[str, ...] | None


def _syntax_error(error: ParseError | TokenError, statement: str) -> InvalidArgument:
    if isinstance(error, ParseError) and error.errors:
        first = error.errors[0]
        line, column = first.get("line"), first.get("col")
        near = first.get("highlight") or ""
        return InvalidArgument(
            f"syntax error at line {line}, column {column} near {near!r}: "
            f"{first.get('description')}",
            field="statement",
        )
    return InvalidArgument(f"syntax error: {error}", field="statement")


@functools.lru_cache(maxsize=1024)
def parse(statement: str) -> Analysis:
    """The analysis of a statement; cached by its text, so callers must not change it."""
    if not statement or not statement.strip():
        raise InvalidArgument("the statement is empty", field="statement")
    explain = False
    text = statement.strip().rstrip(";").strip()
    match = EXPLAIN_PREFIX.match(text)
    if match:
        explain = True
        text = text[match.end() :]
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except (ParseError, TokenError) as error:
        raise _syntax_error(error, statement) from None
    found = [tree for tree in trees if tree is not None]
    if len(found) != 1:
        raise InvalidArgument("send one statement per call", field="statement")
    tree: Any = found[0]
    kind = _kind(tree)
    _check_allowed(tree)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name
        if not name or name in ctes:
            continue
        if table.args.get("db") or table.args.get("catalog"):
            raise InvalidArgument(
                f"table {table.sql(dialect='duckdb')} names a schema or catalog; quote map names "
                'that contain a dot, like "orders.eu"',
                field="statement",
            )
        if name not in tables:
            tables.append(name)
    analysis = Analysis(
        kind=kind,
        tree=tree,
        explain=explain,
        tables=tables,
        parameters=len(list(tree.find_all(exp.Placeholder))),
    )
    if kind == "select":
        _describe_scans(analysis)
    return analysis


def _kind(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Query):
        return "select"
    if isinstance(tree, exp.Insert):
        return "insert"
    if isinstance(tree, exp.Update):
        return "update"
    if isinstance(tree, exp.Delete):
        return "delete"
    if isinstance(tree, exp.Create):
        if (tree.args.get("kind") or "").upper() != "TABLE":
            raise InvalidArgument("only CREATE TABLE is supported", field="statement")
        return "create"
    if isinstance(tree, exp.Drop):
        if (tree.args.get("kind") or "").upper() != "TABLE":
            raise InvalidArgument("only DROP TABLE is supported", field="statement")
        return "drop"
    if not isinstance(tree, STATEMENT_TYPES):
        # A bare expression ("SELEC x" reads as an alias): not a statement at all.
        first = tree.sql(dialect="duckdb").split()[0] if tree.sql(dialect="duckdb") else ""
        raise InvalidArgument(
            f"syntax error at line 1, column 1 near {first!r}: expected a statement "
            "(SELECT, INSERT, UPDATE, DELETE, CREATE TABLE, DROP TABLE or EXPLAIN)",
            field="statement",
        )
    name = type(tree).__name__.upper()
    raise InvalidArgument(
        f"{name} statements are not allowed: SELECT, INSERT, UPDATE, DELETE, CREATE TABLE, "
        "DROP TABLE and EXPLAIN are",
        field="statement",
    )


def _check_allowed(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Copy | exp.Set):
            raise InvalidArgument(
                "the statement holds a command that is not allowed", field="statement"
            )
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            function = node.this
            name = _function_name(function) if isinstance(function, exp.Func) else ""
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise InvalidArgument(
                    f"table function {function.sql(dialect='duckdb')[:40]!r} is not allowed: "
                    "queries read maps only",
                    field="statement",
                )
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name.startswith(FORBIDDEN_FUNCTION_PREFIXES):
                raise InvalidArgument(
                    f"function {name} is not allowed: queries read maps only", field="statement"
                )


def _function_name(node: exp.Func) -> str:
    """The SQL name of a function call (`name` of a parsed function is its first argument's:
    `range(10)` would be '' and `max(read_at)` would be 'read_at')."""
    if isinstance(node, exp.Anonymous):
        return str(node.name or "").lower()
    return str(node.sql_name()).lower()


def _describe_scans(analysis: Analysis) -> None:
    tree = analysis.tree
    for name in analysis.tables:
        analysis.columns_by_table[name] = []
    aliases: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if table.name in analysis.columns_by_table:
            aliases[table.alias_or_name] = table.name
    single = len(analysis.tables) == 1
    for column in tree.find_all(exp.Column):
        owner = aliases.get(column.table) if column.table else None
        if owner is None and single:
            owner = analysis.tables[0]
        if owner is not None and column.name not in analysis.columns_by_table[owner]:
            analysis.columns_by_table[owner].append(column.name)
    if any(isinstance(node, exp.Star) for node in tree.find_all(exp.Star)):
        for name in analysis.tables:
            analysis.columns_by_table[name] = ["*"]
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    if where is not None:
        analysis.filters = [condition.sql(dialect="duckdb") for condition in _conjuncts(where.this)]


def _conjuncts(condition: Any) -> list[Any]:
    if isinstance(condition, exp.And):
        return [*_conjuncts(condition.left), *_conjuncts(condition.right)]
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def find_point_lookup(analysis: Analysis, key_columns: frozenset[str]) -> PointLookup | None:
    """The point lookup of a one-table SELECT that pins its key with = or IN, if it is one."""
    if key_columns not in analysis.point_lookups:
        analysis.point_lookups[key_columns] = _point_lookup(analysis, key_columns)
    return analysis.point_lookups[key_columns]


def _point_lookup(analysis: Analysis, key_columns: frozenset[str]) -> PointLookup | None:
    tree = analysis.tree
    if (
        analysis.kind != "select"
        or len(analysis.tables) != 1
        or not isinstance(tree, exp.Select)
        or tree.args.get("joins")
        or tree.args.get("with")
        # A subquery that reads the map again (scalar, IN, EXISTS) needs all its rows,
        # not just the keys the outer WHERE pins.
        or len(list(tree.find_all(exp.Table))) != 1
    ):
        return None
    where = tree.args.get("where")
    if where is None:
        return None
    conditions = _conjuncts(where.this)
    for condition in conditions:
        keys: list[Any] = []
        column_name = ""
        if isinstance(condition, exp.EQ):
            column, value = condition.left, condition.right
            if isinstance(value, exp.Column) and not isinstance(column, exp.Column):
                column, value = value, column
            if (
                isinstance(column, exp.Column)
                and column.name in key_columns
                and isinstance(value, exp.Literal | exp.Placeholder)
            ):
                keys, column_name = [value], column.name
        elif isinstance(condition, exp.In) and isinstance(condition.this, exp.Column):
            values = condition.expressions
            if (
                condition.this.name in key_columns
                and values
                and all(isinstance(value, exp.Literal | exp.Placeholder) for value in values)
            ):
                keys, column_name = list(values), condition.this.name
        if keys:
            return PointLookup(
                tuple(keys), column_name, _plain_projection(tree) if len(conditions) == 1 else None
            )
    return None


def _plain_projection(tree: exp.Select) -> tuple[str, ...] | None:
    """The selected column names when the SELECT is only plain columns (or *)."""
    blockers = ("group", "having", "order", "limit", "offset", "distinct", "qualify")
    if any(tree.args.get(name) for name in blockers):
        return None
    names: list[str] = []
    for item in tree.expressions:
        if isinstance(item, exp.Star):
            names.append("*")
        elif isinstance(item, exp.Column) and isinstance(item.this, exp.Identifier):
            names.append(item.name)
        else:
            return None
    return tuple(names)


def placeholders_in_order(tree: exp.Expression) -> list[exp.Placeholder]:
    """The `?` placeholders in the order they bind parameters (depth first, left to right)."""
    return list(tree.find_all(exp.Placeholder, bfs=False))
