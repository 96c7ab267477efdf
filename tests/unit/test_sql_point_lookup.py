"""Which SELECTs the point-lookup fast path takes, and which keys their values name."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.sql import analysis, point_lookup
from coordinator.sql.point_lookup import PointLookup

TEXT_KEY = {"__key": "string", "id": "string"}
INT_KEY = {"__key": "string", "id": "int"}


def lookup(statement: str, key_columns: dict[str, str] = TEXT_KEY) -> PointLookup | None:
    parsed = analysis.parse(statement)
    return point_lookup.find(parsed.tree, parsed.tables, key_columns)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM t WHERE id = 'a'",
        "SELECT * FROM t WHERE 'a' = id",
        "SELECT a FROM t WHERE __key IN ('a', 'b')",
        "SELECT a FROM t q WHERE q.id = ? AND a > 1",
        "SELECT count(*) FROM t WHERE a > 1 AND (id = 'a')",
        "SELECT id, count(*) OVER () FROM t WHERE id IN (?, ?) ORDER BY 1 LIMIT 1",
        "SELECT * FROM t WHERE ID = 'a'",
    ],
)
def test_lookups_of_one_base_table_are_taken(statement: str) -> None:
    assert lookup(statement) is not None


@pytest.mark.parametrize(
    "statement",
    [
        # The key is filtered outside a derived table, CTE or join: not the base table's.
        "SELECT * FROM (SELECT id, count(*) OVER () AS n FROM t) q WHERE id = 'a'",
        "SELECT id FROM (SELECT max(id) AS id FROM t) q WHERE id = 'a'",
        "WITH c AS (SELECT * FROM t) SELECT * FROM c WHERE id = 'a'",
        "SELECT * FROM t JOIN u ON t.id = u.id WHERE t.id = 'a'",
        "SELECT * FROM t, u WHERE t.id = 'a'",
        # The map read again elsewhere needs all of its rows.
        "SELECT (SELECT count(*) FROM t) FROM t WHERE id = 'a'",
        "SELECT * FROM t WHERE id = 'a' AND a IN (SELECT a FROM t)",
        # Not a key equality of the statement's own WHERE.
        "SELECT * FROM t WHERE id = 'a' OR id = 'b'",
        "SELECT * FROM t WHERE NOT id = 'a'",
        "SELECT * FROM t WHERE id = a",
        "SELECT * FROM t WHERE id = 'a' || 'b'",
        "SELECT * FROM t WHERE id IN (SELECT 'a')",
        "SELECT * FROM t WHERE other.id = 'a'",
        "SELECT * FROM t AS q(x, id) WHERE id = 'a'",
        "SELECT * FROM t USING SAMPLE 1 WHERE id = 'a'",
        "SELECT * FROM t WHERE id = 'a' UNION SELECT * FROM t WHERE id = 'b'",
    ],
)
def test_anything_else_is_not_a_point_lookup(statement: str) -> None:
    assert lookup(statement) is None


def test_only_a_plain_select_is_answered_without_duckdb() -> None:
    plain = lookup("SELECT a, id FROM t WHERE id = 'a'")
    assert plain is not None and plain.projection == ("a", "id")
    star = lookup("SELECT * FROM t WHERE id = 'a'")
    assert star is not None and star.projection == ("*",)
    for statement in (
        "SELECT a FROM t WHERE id = 'a' AND a > 1",
        "SELECT a + 1 FROM t WHERE id = 'a'",
        "SELECT a AS b FROM t WHERE id = 'a'",
        "SELECT DISTINCT a FROM t WHERE id = 'a'",
        "SELECT * EXCLUDE (a) FROM t WHERE id = 'a'",
        "SELECT a FROM t WHERE id = 'a' LIMIT 1",
        "SELECT t.a FROM t WHERE id = 'a'",
    ):
        found = lookup(statement)
        assert found is not None and found.projection is None, statement


def keys(statement: str, parameters: list[Any], key_columns: dict[str, str]) -> list[str] | None:
    found = lookup(statement, key_columns)
    assert found is not None
    return point_lookup.keys(found, parameters)


@pytest.mark.parametrize(
    ("values", "parameters", "expected"),
    [
        ("'a'", [], ["a"]),
        ("'a', 'a', 'b'", [], ["a", "b"]),
        ("NULL", [], []),
        ("?", [None], []),
        ("?, 'a'", [None], ["a"]),
        ("?", ["None"], ["None"]),
        ("''", [], [""]),
        # A number or boolean against a text key: '05' and '5' both equal 5 in SQL.
        ("5", [], None),
        ("?", [5], None),
        ("?", [True], None),
    ],
)
def test_keys_of_a_text_key(values: str, parameters: list[Any], expected: list[str] | None) -> None:
    statement = f"SELECT * FROM t WHERE id IN ({values})"
    assert keys(statement, parameters, TEXT_KEY) == expected


@pytest.mark.parametrize(
    ("values", "parameters", "expected"),
    [
        ("5", [], ["5"]),
        ("'05'", [], ["5"]),
        ("' 5 '", [], ["5"]),
        ("'+5'", [], ["5"]),
        ("-5", [], ["-5"]),
        ("5.0", [], ["5"]),
        ("5.5", [], []),
        ("?", [5.0], ["5"]),
        ("?", [5.5], []),
        ("?", ["05"], ["5"]),
        ("5, 5.0, '05'", [], ["5"]),
        ("99999999999999999999", [], []),
        ("NULL", [], []),
        # What DuckDB decides (an error, or its own cast) is left to DuckDB.
        ("'1e3'", [], None),
        ("'x'", [], None),
        ("?", [True], None),
        ("?", [float(2**60)], None),
        ("?", [float("nan")], None),
    ],
)
def test_keys_of_an_integer_key(
    values: str, parameters: list[Any], expected: list[str] | None
) -> None:
    statement = f"SELECT * FROM t WHERE id IN ({values})"
    assert keys(statement, parameters, INT_KEY) == expected


def test_parameters_bind_by_their_place_in_the_text() -> None:
    statement = "SELECT * FROM t WHERE a = ? AND id IN (?, ?) LIMIT ?"
    assert keys(statement, [1, "x", "y", 3], TEXT_KEY) == ["x", "y"]
    parsed = analysis.parse("SELECT id FROM t ORDER BY id OFFSET ? LIMIT ?")
    assert parsed.parameters == 2
    # sqlglot writes LIMIT before OFFSET; each keeps its own parameter.
    assert parsed.tree.sql(dialect="duckdb").endswith("LIMIT $2 OFFSET $1")
