"""SQL functions over sketch maps, registered on every DuckDB connection.

`hll_estimate(sketch)`, `kll_quantile(sketch, q)`, `kll_rank(sketch, value)` and
`cms_frequency(sketch, item)` answer from one stored sketch; `hll_union_estimate(sketch)`
is an aggregate (rewritten to a function over `list(sketch)`) that unions the sketches
of many keys without moving raw items. Column aggregates `approx_count_distinct`,
`approx_quantile` and `approx_top_k` are DuckDB's own.
"""

from __future__ import annotations

import datasketches
import duckdb
import duckdb.sqltypes as sql_types
from duckdb.func import SPECIAL
from sqlglot import exp

HLL_UNION_LG_K_MAX = 16


def hll_estimate(sketch: bytes | None) -> float | None:
    if sketch is None:
        return None
    return float(datasketches.hll_sketch.deserialize(sketch).get_estimate())


def hll_union_estimate(sketches: list[bytes | None] | None) -> float | None:
    if not sketches:
        return None
    union = datasketches.hll_union(HLL_UNION_LG_K_MAX)
    for sketch in sketches:
        if sketch is not None:
            union.update(datasketches.hll_sketch.deserialize(sketch))
    return float(union.get_estimate())


def kll_quantile(sketch: bytes | None, rank: float | None) -> float | None:
    if sketch is None or rank is None:
        return None
    kll = datasketches.kll_doubles_sketch.deserialize(sketch)
    if kll.is_empty():
        return None
    return float(kll.get_quantile(rank))


def kll_rank(sketch: bytes | None, value: float | None) -> float | None:
    if sketch is None or value is None:
        return None
    kll = datasketches.kll_doubles_sketch.deserialize(sketch)
    if kll.is_empty():
        return None
    return float(kll.get_rank(value))


def cms_frequency(sketch: bytes | None, item: str | None) -> float | None:
    if sketch is None or item is None:
        return None
    return float(datasketches.count_min_sketch.deserialize(sketch).get_estimate(item))


def register(connection: duckdb.DuckDBPyConnection) -> None:
    blob, double, varchar = sql_types.BLOB, sql_types.DOUBLE, sql_types.VARCHAR
    # "special" null handling passes NULLs in, so each function answers NULL itself.
    connection.create_function("hll_estimate", hll_estimate, [blob], double, null_handling=SPECIAL)
    connection.create_function(
        "hll_union_estimate_list",
        hll_union_estimate,
        [duckdb.list_type(blob)],
        double,
        null_handling=SPECIAL,
    )
    connection.create_function(
        "kll_quantile", kll_quantile, [blob, double], double, null_handling=SPECIAL
    )
    connection.create_function("kll_rank", kll_rank, [blob, double], double, null_handling=SPECIAL)
    connection.create_function(
        "cms_frequency", cms_frequency, [blob, varchar], double, null_handling=SPECIAL
    )


def rewrite_aggregates(tree: exp.Expression) -> exp.Expression:
    """`hll_union_estimate(x)` becomes `hll_union_estimate_list(list(x))`."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "hll_union_estimate":
            arguments = node.expressions
            return exp.Anonymous(
                this="hll_union_estimate_list",
                expressions=[exp.Anonymous(this="list", expressions=arguments)],
            )
        return node

    return tree.transform(replace)
