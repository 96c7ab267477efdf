"""Parsing a statement: parameters numbered in text order, syntax errors placed in the text
as sent, nesting bounded before the parser recurses, and what the parse cache keeps."""

from __future__ import annotations

import pytest

from coordinator.sql import analysis
from grid.errors import InvalidArgument


@pytest.mark.parametrize(
    ("statement", "numbered", "count"),
    [
        ("SELECT ? FROM t WHERE a = ?", "SELECT $1 FROM t WHERE a = $2", 2),
        ("SELECT '?', ? -- ?\nFROM t", "SELECT '?', $1 FROM t", 1),
        ("SELECT a FROM t OFFSET ? LIMIT ?", "SELECT a FROM t LIMIT $2 OFFSET $1", 2),
        ("SELECT $2, $1", "SELECT $2, $1", 2),
        # sqlglot's tokenizer fails on `$1` before an empty string: `?` never becomes it
        # in the text it parses (seed 101, case 9956 of the differential tester).
        (
            "UPDATE t SET d = NULL WHERE g BETWEEN ? AND ''",
            "UPDATE t SET d = NULL WHERE g BETWEEN $1 AND ''",
            1,
        ),
        ("SELECT ?, '', ?", "SELECT $1, '', $2", 2),
        ("SELECT $2, '', $1 WHERE a = '$3'", "SELECT $2, '', $1 WHERE a = '$3'", 2),
        ("SELECT $$ $1 $$, ?", "SELECT ' $1 ', $1", 1),
    ],
)
def test_parameters_are_numbered_in_the_order_of_the_text(
    statement: str, numbered: str, count: int
) -> None:
    parsed = analysis.parse(statement)
    assert parsed.tree.sql(dialect="duckdb") == numbered
    assert parsed.parameters == count


def test_mixing_parameter_kinds_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="mixes"):
        analysis.parse("SELECT ?, $1")


@pytest.mark.parametrize(
    ("statement", "place"),
    [
        ("SELECT 'abc", "line 1, column 8"),
        ("SELECT 'it''s", "line 1, column 8"),
        ('SELECT 1,\n  "name', "line 2, column 3"),
        ("SELECT 1 /* open", "line 1, column 10"),
        ("SELECT $$abc", "line 1, column 8"),
        ("EXPLAIN SELECT 1 +* 2", "line 1, column 21"),
        ("SELECT ?, ?, 1 +* 2", "line 1, column 19"),
    ],
)
def test_syntax_errors_are_placed_in_the_statement_as_sent(statement: str, place: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error") as caught:
        analysis.parse(statement)
    assert place in caught.value.message
    assert caught.value.field == "statement"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT " + "(" * 65 + "1" + ")" * 65,
        "SELECT " + "(" * 100_000,
        "SELECT " + "NOT " * 5000 + "true",
        "SELECT 1 WHERE " + " AND ".join(["a = 1"] * 20_000),
    ],
)
def test_deep_nesting_is_refused_as_invalid_argument(statement: str) -> None:
    with pytest.raises(InvalidArgument, match="nests too deeply"):
        analysis.parse(statement)


def test_nesting_up_to_the_bound_parses() -> None:
    depth = analysis.NESTING_MAX
    assert analysis.parse("SELECT " + "(" * depth + "1" + ")" * depth).kind == "select"


def test_only_short_statements_are_cached() -> None:
    short = "SELECT 1 AS cached"
    assert analysis.parse(short) is analysis.parse(short)
    long = "SELECT 1 AS x" + ", 1" * analysis.CACHED_STATEMENT_CHARS_MAX
    assert analysis.parse(long) is not analysis.parse(long)
