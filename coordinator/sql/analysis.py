"""Parsing and checking a statement with sqlglot before anything runs.

It classifies the statement, names the maps it reads, refuses what may not run (file
access, configuration, extensions, table functions), numbers its `?` parameters, and
reports a syntax error with its line and column in the statement as sent.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

from coordinator.sql.point_lookup import PointLookup
from grid.errors import InvalidArgument

EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
FORBIDDEN_FUNCTION_PREFIXES = ("read_", "glob", "parquet_", "sniff_", "duckdb_", "pragma_")
KEY_COLUMN = "__key"
# sqlglot's recursive-descent parser takes about twenty Python frames per level of
# nesting; NESTING_MAX levels need more than Python's default limit of 1,000 frames.
# Deeper statements are refused from the token count before the parser runs.
NESTING_MAX = 64
RECURSION_LIMIT = 4000
CACHED_STATEMENT_CHARS_MAX = 16 * 1024
# The quoted name a `?` stands in as while the statement is parsed (see _numbered).
PARAMETER_STAND_IN = "__shoal_parameter_"
# A statement's own numbered parameter, `$1`, outside strings and names.
OWN_NUMBER = re.compile(r"(?<![\w$])\$([0-9]+)(?![\w$])")
if sys.getrecursionlimit() < RECURSION_LIMIT:
    sys.setrecursionlimit(RECURSION_LIMIT)
Tokenizer = DuckDB.Tokenizer
OPENING_TOKENS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
CLOSING_TOKENS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})
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
    # DuckDB runs, and the point lookup found for a map's key columns.
    duckdb_text: str = ""
    point_lookups: dict[tuple[tuple[str, str], ...], PointLookup | None] = field(
        default_factory=dict
    )


def _position(statement: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset in the statement."""
    before = statement[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _scan(statement: str) -> tuple[list[tuple[int, int]], tuple[int, str] | None]:
    """The stretches of the statement outside strings, quoted names and comments (start,
    end), and where a string, quoted name, dollar-quoted string or block comment opens
    and never closes (what makes the tokenizer fail), with what it is."""
    code: list[tuple[int, int]] = []
    index = 0
    start = 0
    length = len(statement)
    while index < length:
        char = statement[index]
        closing = ""
        if statement.startswith("--", index):
            closing, what = "\n", ""
        elif statement.startswith("/*", index):
            closing, what = "*/", "comment"
        elif statement.startswith("$$", index):
            closing, what = "$$", "string"
        elif char in "'\"":
            closing, what = char, "string" if char == "'" else "quoted name"
        if not closing:
            index += 1
            continue
        code.append((start, index))
        cursor = index + (1 if closing == char else 2)
        while True:
            end = statement.find(closing, cursor)
            if end < 0:
                if closing == "\n":
                    return code, None
                return code, (index, what)
            if closing in "'\"" and statement.startswith(closing * 2, end):
                cursor = end + 2  # A doubled quote stands for itself.
                continue
            break
        index = start = end + len(closing)
    code.append((start, length))
    return code, None


def _unterminated(statement: str) -> tuple[int, str] | None:
    return _scan(statement)[1]


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
    opened = _unterminated(statement)
    if opened is not None:
        offset, what = opened
        line, column = _position(statement, offset)
        return InvalidArgument(
            f"syntax error at line {line}, column {column} near "
            f"{statement[offset : offset + 20]!r}: unterminated {what}",
            field="statement",
        )
    return InvalidArgument(f"syntax error: {error}", field="statement")


def too_deep() -> InvalidArgument:
    return InvalidArgument(
        f"the statement nests too deeply: at most {NESTING_MAX} levels of parentheses, "
        "and expressions nested no deeper",
        field="statement",
    )


def _numbered(text: str) -> tuple[str, int]:
    """The statement with each `?` replaced by a stand-in naming its number (n in the
    order of the text), and how many there were. Numbering before anything rearranges
    the statement keeps each parameter bound to its own place (sqlglot writes
    `OFFSET ? LIMIT ?` back as `LIMIT .. OFFSET ..`). The stand-in is a quoted name,
    turned into the placeholder `$n` after parsing (see _placeholders): sqlglot's
    tokenizer fails on `$1` followed by an empty string (`WHERE a = $1 AND b = ''`).
    Also refuses nesting deeper than NESTING_MAX, before the recursive parser meets it."""
    tokens = Tokenizer().tokenize(text)
    depth = 0
    for token in tokens:
        if token.token_type in OPENING_TOKENS:
            depth += 1
            if depth > NESTING_MAX:
                raise too_deep()
        elif token.token_type in CLOSING_TOKENS:
            depth -= 1
    placeholders = [
        token for token in tokens if token.token_type == TokenType.PLACEHOLDER and token.text == "?"
    ]
    if not placeholders:
        return text, 0
    pieces = []
    last = 0
    for number, token in enumerate(placeholders, 1):
        pieces.append(text[last : token.start])
        pieces.append(f'"{PARAMETER_STAND_IN}{number}"')
        last = token.end + 1
    pieces.append(text[last:])
    return "".join(pieces), len(placeholders)


def _own_numbers(text: str) -> tuple[str, int]:
    """The statement with its own numbered parameters (`$1`, `$2`) as stand-ins too, and
    the highest number: sqlglot's tokenizer fails on `$1` before an empty string."""
    if "$" not in text:
        return text, 0
    spans, _ = _scan(text)
    pieces: list[str] = []
    highest = 0
    last = 0
    for start, end in spans:
        for match in OWN_NUMBER.finditer(text, start, end):
            pieces.append(text[last : match.start()])
            pieces.append(f'"{PARAMETER_STAND_IN}{match.group(1)}"')
            highest = max(highest, int(match.group(1)))
            last = match.end()
    pieces.append(text[last:])
    return "".join(pieces), highest


def _placeholders(tree: exp.Expr) -> exp.Expr:
    """The stand-ins of _numbered as the placeholders `$1`, `$2`, ..."""

    def replace(node: exp.Expression) -> exp.Expression:
        if (
            isinstance(node, exp.Column)
            and not node.table
            and node.name.startswith(PARAMETER_STAND_IN)
            and node.name[len(PARAMETER_STAND_IN) :].isdigit()
        ):
            return exp.Placeholder(this=node.name[len(PARAMETER_STAND_IN) :])
        return node

    return tree.transform(replace, copy=False)


def parse(statement: str) -> Analysis:
    """The analysis of a statement; cached by its text, so callers must not change it.

    Only statements of up to CACHED_STATEMENT_CHARS_MAX characters are cached: a
    thousand cached multi-megabyte statements (a large INSERT ... VALUES each) would
    hold gigabytes, and such a statement is rarely sent twice."""
    if len(statement) <= CACHED_STATEMENT_CHARS_MAX:
        return _cached_parse(statement)
    return _guarded_parse(statement)


@functools.lru_cache(maxsize=1024)
def _cached_parse(statement: str) -> Analysis:
    return _guarded_parse(statement)


def _guarded_parse(statement: str) -> Analysis:
    try:
        return _parse(statement)
    except RecursionError:
        # A nesting the token count does not see (NOT NOT NOT ..., CASE in CASE).
        raise too_deep() from None


def _parse(statement: str) -> Analysis:
    if not statement or not statement.strip():
        raise InvalidArgument("the statement is empty", field="statement")
    explain = False
    # Blanks stand in for what is cut off, so sqlglot's lines and columns are the user's.
    text = statement.rstrip().rstrip(";").rstrip()
    match = EXPLAIN_PREFIX.match(text)
    if match:
        explain = True
        text = re.sub(r"[^\n]", " ", match.group()) + text[match.end() :]
    try:
        own, highest = _own_numbers(text)
        numbered, count = _numbered(own)
        trees = sqlglot.parse(numbered, read="duckdb")
    except (ParseError, TokenError) as error:
        raise _syntax_error(_error_in_original(text, error), text) from None
    if count and highest:
        raise InvalidArgument(
            "the statement mixes ? and $n parameters: use one kind", field="statement"
        )
    found = [tree for tree in trees if tree is not None]
    if len(found) != 1:
        raise InvalidArgument("send one statement per call", field="statement")
    tree: Any = _placeholders(found[0]) if count or highest else found[0]
    kind = _kind(tree)
    _check_allowed(tree)
    tables: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name
        if not name or _names_cte(table):
            continue
        if table.args.get("db") or table.args.get("catalog"):
            raise InvalidArgument(
                f"table {table.sql(dialect='duckdb')} names a schema or catalog; quote map names "
                'that contain a dot, like "orders.eu"',
                field="statement",
            )
        if name not in tables:
            clash = next((seen for seen in tables if seen.casefold() == name.casefold()), None)
            if clash is not None:
                # DuckDB's names are case-blind: both would read one table.
                raise InvalidArgument(
                    f"maps '{clash}' and '{name}' differ only in case, which SQL cannot tell "
                    "apart: query them in separate statements",
                    field="statement",
                )
            tables.append(name)
    analysis = Analysis(
        kind=kind,
        tree=tree,
        explain=explain,
        tables=tables,
        parameters=count or highest,
    )
    if kind == "select":
        _describe_scans(analysis)
    return analysis


def _names_cte(table: exp.Table) -> bool:
    """Whether a table reference names a CTE in scope where it stands, as DuckDB resolves
    it, rather than a map. Scope matters for authorization: a CTE named like a map in one
    subquery does not hide the map read elsewhere in the statement (`SELECT * FROM
    customers, (WITH customers AS (...) SELECT ...)`), and inside a non-recursive CTE's
    own body its name is the map (`WITH customers AS (SELECT * FROM customers) ...`)."""
    name = table.name
    child: Any = table
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With) and child is not with_ and node.this is not table:
            # The statement's body sees every CTE of this WITH (a DML target never is one).
            if any(cte.alias_or_name == name for cte in with_.expressions):
                return True
        elif isinstance(node, exp.With):
            # Inside the body of one CTE: the ones before it, and itself if recursive.
            index = next(i for i, cte in enumerate(node.expressions) if cte is child)
            visible = node.expressions[: index + 1 if node.args.get("recursive") else index]
            if any(cte.alias_or_name == name for cte in visible):
                return True
        child, node = node, node.parent
    return False


def _error_in_original(text: str, error: ParseError | TokenError) -> ParseError | TokenError:
    """The syntax error as the user's text gives it: the numbered text's positions are
    shifted by every `?` that became `$n` before the error."""
    if "?" not in text and "$" not in text:
        return error
    try:
        sqlglot.parse(text, read="duckdb")
    except ParseError as original:
        return original
    except TokenError:
        # The user's text may meet the tokenizer's failure the stand-ins avoid.
        return error
    return error


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
