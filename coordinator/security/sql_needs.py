"""The permissions a SQL statement needs, from its parsed tree (the same cached parse
the engine runs): every map it reads, through joins, subqueries, CTEs, set operations
and EXPLAIN, needs `sql`; the map an INSERT, UPDATE or DELETE changes needs `write`
too; CREATE and DROP TABLE need `admin`.

The engine loads exactly the maps of `Analysis.tables` into DuckDB, so a map missing
from that list cannot be read by the statement at all: checking that list is checking
everything the statement can see.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from coordinator.security.permissions import Need, Permission
from coordinator.sql import analysis as analysis_module
from grid.errors import GridError


def statement_needs(statement: str) -> list[Need]:
    try:
        analysis = analysis_module.parse(statement)
    except (GridError, RecursionError):
        # The engine refuses it the same way; the caller still needs SQL somewhere.
        return [Need(Permission.SQL, anywhere=True)]
    if analysis.kind in ("create", "drop"):
        return [Need(Permission.ADMIN, name) for name in analysis.tables] or [
            Need(Permission.ADMIN, anywhere=True)
        ]
    found = [Need(Permission.SQL, name) for name in analysis.tables]
    if analysis.kind in ("insert", "update", "delete"):
        target = _target(analysis.tree)
        if target is not None:
            found.append(Need(Permission.WRITE, target))
        else:
            found.extend(Need(Permission.WRITE, name) for name in analysis.tables)
    return found or [Need(Permission.SQL, anywhere=True)]


def _target(tree: Any) -> str | None:
    node = tree.this
    if isinstance(node, exp.Schema):
        node = node.this
    if isinstance(node, exp.Table) and node.name:
        return str(node.name)
    return None
