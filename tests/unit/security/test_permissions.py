"""Roles, grants over map patterns, and the SQL statement's needs (parsed, not guessed)."""

from __future__ import annotations

import pytest

from coordinator.security.permissions import AUTH_MAP, Grant, Need, Permission, parse_role
from coordinator.security.sql_needs import statement_needs
from grid.errors import InvalidArgument

P = Permission


def test_a_role_is_its_permissions_over_one_pattern() -> None:
    assert parse_role("writer:orders*") == [Grant(P.READ, "orders*"), Grant(P.WRITE, "orders*")]
    assert parse_role("sql:team-a.*") == [Grant(P.SQL, "team-a.*")]


@pytest.mark.parametrize("text", ["writer", "writer:", "boss:orders", "read:or ders", "read:a/b"])
def test_a_malformed_role_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_role(text)
    assert refused.value.field == "roles"


def test_patterns_match_whole_names_with_star_for_any_run() -> None:
    grant = Grant(P.READ, "team-a.*")
    assert grant.covers("team-a.orders")
    assert not grant.covers("team-ab.orders")
    assert not grant.covers("x.team-a.orders")
    assert Grant(P.READ, "orders").covers("orders")
    assert not Grant(P.READ, "orders").covers("orders2")
    # Dots and other regex characters are literal.
    assert not Grant(P.READ, "a.b").covers("axb")


def test_the_cluster_is_covered_only_by_the_star_pattern() -> None:
    need = Need(P.ADMIN, None)
    assert need.met_by(frozenset({Grant(P.ADMIN, "*")}))
    assert not need.met_by(frozenset({Grant(P.ADMIN, "orders*")}))
    assert not need.met_by(frozenset({Grant(P.READ, "*")}))


def test_reading_the_auth_map_takes_the_auth_permission() -> None:
    need = Need(P.READ, AUTH_MAP)
    assert not need.met_by(frozenset({Grant(P.READ, "*")}))
    assert need.met_by(frozenset({Grant(P.AUTH, "*")}))


def _maps(statement: str, permission: Permission) -> set[str]:
    return {
        need.resource or "?" for need in statement_needs(statement) if need.permission == permission
    }


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM orders o JOIN customers c ON o.c = c.id",
        "SELECT * FROM orders WHERE c IN (SELECT id FROM customers)",
        "SELECT (SELECT max(id) FROM customers) FROM orders",
        "WITH x AS (SELECT * FROM customers) SELECT * FROM orders, x",
        "SELECT id FROM orders UNION SELECT id FROM customers",
        "SELECT id FROM orders EXCEPT SELECT id FROM customers",
        "EXPLAIN SELECT * FROM orders JOIN customers USING (id)",
        "SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM customers)",
        # A CTE named like a map hides it only where the CTE is in scope.
        "SELECT * FROM orders, customers, (WITH customers AS (SELECT 1) SELECT * FROM customers)",
        "WITH customers AS (SELECT * FROM customers) SELECT * FROM orders, customers",
    ],
)
def test_every_map_a_statement_reads_needs_sql(statement: str) -> None:
    assert _maps(statement, P.SQL) == {"orders", "customers"}


def test_a_change_needs_write_on_its_target_and_sql_on_what_it_reads() -> None:
    statement = "INSERT INTO orders SELECT * FROM customers"
    assert _maps(statement, P.WRITE) == {"orders"}
    assert _maps(statement, P.SQL) == {"orders", "customers"}
    assert _maps("UPDATE orders SET a = 1", P.WRITE) == {"orders"}
    assert _maps("DELETE FROM orders WHERE a = 1", P.WRITE) == {"orders"}


def test_a_cte_in_scope_is_no_map() -> None:
    recursive = "WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t) SELECT * FROM t"
    assert _maps(recursive, P.SQL) == {"?"}  # no map at all: SQL somewhere
    chained = "WITH a AS (SELECT * FROM orders), b AS (SELECT * FROM a) SELECT * FROM b"
    assert _maps(chained, P.SQL) == {"orders"}


def test_create_and_drop_need_admin() -> None:
    assert _maps("CREATE TABLE t (a INT)", P.ADMIN) == {"t"}
    assert _maps("DROP TABLE t", P.ADMIN) == {"t"}


def test_a_statement_that_does_not_parse_still_needs_sql_somewhere() -> None:
    needs = statement_needs("SELEC * FROM customers")
    assert [(n.permission, n.anywhere) for n in needs] == [(P.SQL, True)]
