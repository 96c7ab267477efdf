"""A seeded differential tester of grid SQL against plain DuckDB on the same rows.

Three maps are filled with random rows (every column type, NULLs, duplicates, unicode,
keys that read like `None`, `05` or `o'k`): `main` made by the SDK, `pk` (an integer
primary key with a DEFAULT) and `ref` (a text primary key) made by SQL. A DuckDB
database in the test process holds the same rows. Random statements then run on both
and their answers are compared: SELECTs of every shape the grammar below makes
(projections, predicates, GROUP BY, HAVING, ORDER BY with LIMIT/OFFSET as literals and
parameters, DISTINCT, joins, subqueries, CTEs, windows, set operations, point lookups
of every shape, derived tables), ternary-logic partitions of predicates (`Q` equals
`Q WHERE p` + `Q WHERE NOT p` + `Q WHERE p IS NULL` on the grid, each part equal to
DuckDB's) and DML, after which the whole tables are compared.

A query is built from parts (`Query`), so a mismatch is minimized by dropping parts
while it stays a mismatch; the failure names the seed, the case and that statement.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import orjson

from shoal import Client, ShoalError

# Values chosen to meet the fast path's and the casts' edge cases.
KEYS = ["k1", "k2", "None", "True", "05", " 5", "5", "a b", "ключ", "o'k", "%", "_x", "日本", "K1"]
TEXTS = [None, "", "a", "A", "abc", "None", "True", "05", " 5", "ü", "日本", "it's", "a%b", "k1"]
INTEGERS = [None, 0, 1, -1, 2, 5, 42, 7, -7, 1_000_000_000_000]
FLOATS = [None, 0.0, -0.0, 1.5, -2.25, 3.0, 0.1, 1e10, 2.5]
BOOLEANS = [None, True, False]
BLOBS = [None, b"", b"\x00\xff", b"abc"]
LISTS = [None, [], [1, 2], [3], [2, 2, 5]]
DOCUMENTS: list[Any] = [None, {"a": 1}, {"b": [1, 2]}, {}, {"a": "x"}]
INSTANTS = [None] + [
    datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day, seconds=second, microseconds=micro)
    for day, second, micro in ((0, 0, 0), (1, 3600, 5), (40, 59, 0), (400, 1, 999_999))
]
PK_IDS = [5, 6, 0, -3, 100, 2**40, 7, 8, 9, 10, 11, 12, 50, 51, 52, 53]
# Writes remembered for the report of a table that differs; cases between state checks.
RECENT_WRITES_KEPT = 12
NOTES_KEPT = 5
STATE_CHECK_EVERY = 25

# Column types of each table (as DuckDB names them), in the grid's column order.
MAIN_COLUMNS = {
    "s": "VARCHAR",
    "i": "BIGINT",
    "f": "DOUBLE",
    "b": "BOOLEAN",
    "y": "BLOB",
    "ts": "TIMESTAMPTZ",
    "li": "BIGINT[]",
    "m": "VARCHAR",
}
PK_COLUMNS = {"id": "BIGINT", "g": "VARCHAR", "v": "BIGINT", "w": "DOUBLE", "d": "BIGINT"}
REF_COLUMNS = {"k": "VARCHAR", "s": "VARCHAR", "n": "BIGINT"}


@dataclass(frozen=True)
class Part:
    """A piece of SQL text and the parameters of its `?`s, in order."""

    text: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Query:
    items: tuple[Part, ...]
    source: Part
    where: tuple[Part, ...] = ()
    group: tuple[Part, ...] = ()
    having: Part | None = None
    distinct: bool = False
    with_: Part | None = None
    # ORDER BY every output column, so LIMIT and OFFSET are deterministic.
    ordered: bool = False
    limit: Part | None = None
    offset: Part | None = None
    offset_first: bool = False
    set_operation: tuple[str, Query] | None = None

    def render(self) -> tuple[str, list[Any]]:
        parts: list[Part] = []
        if self.with_ is not None:
            parts.append(Part("WITH "))
            parts.append(self.with_)
            parts.append(Part(" "))
        parts.append(Part("SELECT DISTINCT " if self.distinct else "SELECT "))
        for index, item in enumerate(self.items):
            if index:
                parts.append(Part(", "))
            parts.append(item)
        parts.append(Part(" FROM "))
        parts.append(self.source)
        for index, condition in enumerate(self.where):
            parts.append(Part(" WHERE (" if index == 0 else " AND ("))
            parts.append(condition)
            parts.append(Part(")"))
        if self.group:
            parts.append(Part(" GROUP BY "))
            for index, item in enumerate(self.group):
                if index:
                    parts.append(Part(", "))
                parts.append(item)
        if self.having is not None:
            parts.append(Part(" HAVING "))
            parts.append(self.having)
        text = "".join(part.text for part in parts)
        params = [param for part in parts for param in part.params]
        if self.set_operation is not None:
            operator, other = self.set_operation
            other_text, other_params = replace(
                other, ordered=False, limit=None, offset=None
            ).render()
            text = f"({text}) {operator} ({other_text})"
            params += other_params
        tail: list[Part] = []
        if self.ordered:
            tail.append(Part(" ORDER BY ALL"))
        paging = [
            (Part(" LIMIT "), self.limit),
            (Part(" OFFSET "), self.offset),
        ]
        if self.offset_first:
            paging.reverse()
        for keyword, value in paging:
            if value is not None:
                tail.extend([keyword, value])
        text += "".join(part.text for part in tail)
        params += [param for part in tail for param in part.params]
        return text, params

    def smaller(self) -> list[Query]:
        """Queries with one part less, for minimizing a mismatch."""
        found: list[Query] = []
        if self.set_operation is not None:
            found.append(replace(self, set_operation=None))
        if self.with_ is not None and "__cte" not in self.source.text:
            found.append(replace(self, with_=None))
        for index in range(len(self.where)):
            found.append(replace(self, where=self.where[:index] + self.where[index + 1 :]))
        if self.having is not None:
            found.append(replace(self, having=None))
        if self.limit is not None:
            found.append(replace(self, limit=None))
        if self.offset is not None:
            found.append(replace(self, offset=None))
        if self.ordered and self.limit is None and self.offset is None:
            found.append(replace(self, ordered=False))
        if self.distinct:
            found.append(replace(self, distinct=False))
        if len(self.items) > 1 and self.set_operation is None:
            for index in range(len(self.items)):
                found.append(replace(self, items=self.items[:index] + self.items[index + 1 :]))
        return found


@dataclass
class Outcome:
    rows: list[tuple[Any, ...]] | None
    columns: list[str]
    error: str = ""


@dataclass
class Counts:
    statements: int = 0
    selects: int = 0
    point_lookups: int = 0
    partitions: int = 0
    dml: int = 0
    both_refused: int = 0
    # A cast error on one side only, which DuckDB itself gives over Arrow tables too.
    plan_dependent_errors: int = 0
    # The reference's own table and an Arrow copy of it answered differently; the
    # grid agreed with the Arrow copy.
    reference_inconsistencies: int = 0
    mismatches: int = 0
    by_shape: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        shapes = ", ".join(f"{name} {count}" for name, count in sorted(self.by_shape.items()))
        return (
            f"{self.statements} statements ({self.selects} SELECTs of which "
            f"{self.point_lookups} point lookups, {self.partitions} ternary partitions, "
            f"{self.dml} DML); {self.both_refused} refused by both; "
            f"{self.plan_dependent_errors} cast errors that depend on DuckDB's plan; "
            f"{self.reference_inconsistencies} answers where DuckDB disagreed with itself; "
            f"{self.mismatches} mismatches; shapes: {shapes}"
        )


def normalize(value: Any) -> Any:
    """A value in a form both sides give alike (floats to 9 significant digits, instants
    as UTC, lists as tuples)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == 0:
            return 0.0
        return float(f"{value:.9g}")
    if isinstance(value, Decimal):
        return normalize(float(value)) if value != value.to_integral_value() else int(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, list | tuple):
        return tuple(normalize(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, normalize(item)) for key, item in value.items()))
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def same(grid: Outcome, reference: Outcome, ordered: bool) -> bool:
    if grid.rows is None or reference.rows is None:
        return grid.rows is None and reference.rows is None
    if grid.columns != reference.columns:
        return False
    left = [tuple(normalize(value) for value in row) for row in grid.rows]
    right = [tuple(normalize(value) for value in row) for row in reference.rows]
    if ordered:
        return left == right
    return Counter(left) == Counter(right)


class Differential:
    """The two databases, the generator, and the comparison of one statement."""

    def __init__(self, client: Client, seed: int, suffix: str) -> None:
        self.client = client
        self.seed = seed
        self.rng = random.Random(seed)
        self.main = f"dt_main_{suffix}"
        self.pk = f"dt_pk_{suffix}"
        self.ref = f"dt_ref_{suffix}"
        self.reference = duckdb.connect()
        self.reference.execute("SET TimeZone = 'UTC'")
        self.counts = Counts()
        self.failures: list[str] = []
        self.recent_writes: list[str] = []
        self.notes: list[str] = []
        self._case = 0
        self._inserted = 0

    # Setting up -------------------------------------------------------------------------

    def load(self) -> None:
        rng = self.rng
        self.client.create_map(
            self.main,
            schema={
                "s": "string",
                "i": "int",
                "f": "float",
                "b": "bool",
                "y": "bytes",
                "ts": "timestamp",
                "li": {"type": "list", "items": "int"},
                "m": "map",
            },
        )
        self.reference.execute(
            f"CREATE TABLE {self.main} (__key VARCHAR, __version BIGINT, "
            + ", ".join(f"{name} {kind}" for name, kind in MAIN_COLUMNS.items())
            + ")"
        )
        keys = KEYS + [f"r{index}" for index in range(rng.randint(15, 30))]
        documents: dict[str, dict[str, Any]] = {}
        for key in keys:
            row = {
                "s": rng.choice(TEXTS),
                "i": rng.choice(INTEGERS),
                "f": rng.choice(FLOATS),
                "b": rng.choice(BOOLEANS),
                "y": rng.choice(BLOBS),
                "ts": rng.choice(INSTANTS),
                "li": rng.choice(LISTS),
                "m": rng.choice(DOCUMENTS),
            }
            documents[key] = {name: value for name, value in row.items() if value is not None}
            self.reference.execute(
                f"INSERT INTO {self.main} VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    key,
                    *(row[name] for name in ("s", "i", "f", "b", "y", "ts", "li")),
                    None if row["m"] is None else orjson.dumps(row["m"]).decode(),
                ],
            )
        self.client.put_many(self.main, documents)
        self.client.sql(
            f"CREATE TABLE {self.pk} (id BIGINT PRIMARY KEY, g VARCHAR, v BIGINT, w DOUBLE, "
            "d BIGINT DEFAULT 7)"
        )
        self.reference.execute(
            f"CREATE TABLE {self.pk} (__key VARCHAR, __version BIGINT, id BIGINT PRIMARY KEY, "
            "g VARCHAR, v BIGINT, w DOUBLE, d BIGINT DEFAULT 7)"
        )
        for identifier in PK_IDS:
            columns = ["id", "g", "v", "w"] + (["d"] if rng.random() < 0.6 else [])
            values = [
                identifier,
                rng.choice(TEXTS),
                rng.choice(INTEGERS[:-1]),
                rng.choice(FLOATS),
                rng.choice([None, 1, 7, 9]),
            ][: len(columns)]
            self._both_write(
                f"INSERT INTO {self.pk} ({', '.join(columns)}) VALUES "
                f"({', '.join('?' for _ in columns)})",
                values,
            )
        self.client.sql(f"CREATE TABLE {self.ref} (k VARCHAR PRIMARY KEY, s VARCHAR, n BIGINT)")
        self.reference.execute(
            f"CREATE TABLE {self.ref} (__key VARCHAR, __version BIGINT, k VARCHAR PRIMARY KEY, "
            "s VARCHAR, n BIGINT)"
        )
        rows = []
        for key in [*rng.sample(KEYS, 8), "r1", "r2", "zz"]:
            rows.extend([key, rng.choice(TEXTS), rng.choice(INTEGERS[:-1])])
        marks = ", ".join("(?, ?, ?)" for _ in range(len(rows) // 3))
        self._both_write(f"INSERT INTO {self.ref} (k, s, n) VALUES {marks}", rows)
        self._sync_keys_and_versions()

    def _both_write(self, statement: str, params: Sequence[Any]) -> None:
        self.client.sql(statement, list(params))
        self.reference.execute(statement, list(params))

    def _sync_keys_and_versions(self) -> None:
        """The grid's `__key` and `__version` into the reference, which has no versions."""
        self.reference.execute(f"UPDATE {self.pk} SET __key = CAST(id AS VARCHAR)")
        self.reference.execute(f"UPDATE {self.ref} SET __key = k")
        for table in (self.main, self.pk, self.ref):
            versions = self.client.sql(f"SELECT __key, __version FROM {table}").fetchall()
            self.reference.execute("CREATE OR REPLACE TEMP TABLE versions (k VARCHAR, v BIGINT)")
            if versions:
                self.reference.executemany("INSERT INTO versions VALUES (?, ?)", versions)
            self.reference.execute(
                f"UPDATE {table} SET __version = versions.v FROM versions "
                f"WHERE {table}.__key = versions.k"
            )

    def close(self) -> None:
        for table in (self.main, self.pk, self.ref):
            try:
                self.client.drop_map(table, if_exists=True)
            except ShoalError:
                pass
        self.reference.close()

    # Running ----------------------------------------------------------------------------

    def run_grid(self, statement: str, params: Sequence[Any]) -> Outcome:
        try:
            cursor = self.client.sql(statement, list(params))
            rows = cursor.fetchall()
            names = [column[0] for column in cursor.description or []]
            return Outcome(rows, names)
        except ShoalError as error:
            return Outcome(None, [], f"{type(error).__name__}: {error}")

    def run_reference(self, statement: str, params: Sequence[Any]) -> Outcome:
        try:
            relation = self.reference.execute(statement, list(params))
            rows = relation.fetchall()
            names = [column[0] for column in relation.description or []]
            return Outcome(rows, names)
        except duckdb.Error as error:
            return Outcome(None, [], f"{type(error).__name__}: {str(error).splitlines()[0]}")

    def check_query(self, case: int, shape: str, query: Query) -> bool:
        self.counts.by_shape[shape] += 1
        self.counts.selects += 1
        matched = self._compare(query)
        if not matched:
            self._fail(case, shape, self._minimize(query))
        return matched

    def _compare(self, query: Query) -> bool:
        text, params = query.render()
        self.counts.statements += 1
        grid = self.run_grid(text, params)
        reference = self.run_reference(text, params)
        if grid.rows is None and reference.rows is None:
            self.counts.both_refused += 1
        if same(grid, reference, query.ordered):
            return True
        # A second opinion: DuckDB over Arrow copies of the reference's own rows (built
        # here, not by the grid). When it agrees with the grid, DuckDB disagrees with
        # itself: a cast error raised only when a row reaches the cast, which depends on
        # the plan; or a wrong answer of DuckDB's over a table changed by many UPDATEs
        # (seen: `ORDER BY ALL LIMIT 1` giving the third-smallest value, while the
        # same statement without LIMIT and over the Arrow copy were right).
        arrow = self._run_reference_over_arrow(text, params)
        if not same(grid, arrow, query.ordered):
            return False
        if "Conversion Error" in grid.error + reference.error:
            self.counts.plan_dependent_errors += 1
        else:
            self.counts.reference_inconsistencies += 1
            if len(self.notes) < NOTES_KEPT:
                self.notes.append(
                    f"case {self._case}: DuckDB's own table answered {reference.rows!r} "
                    f"{reference.error}, DuckDB over an Arrow copy and the grid "
                    f"{grid.rows!r}, for\n    {text}  params {params!r}"
                )
        return True

    def _run_reference_over_arrow(self, statement: str, params: Sequence[Any]) -> Outcome:
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            for table in (self.main, self.pk, self.ref):
                connection.register(
                    table, self.reference.sql(f"SELECT * FROM {table}").to_arrow_table()
                )
            relation = connection.execute(statement, list(params))
            return Outcome(relation.fetchall(), [column[0] for column in relation.description])
        except duckdb.Error as error:
            return Outcome(None, [], f"{type(error).__name__}: {str(error).splitlines()[0]}")
        finally:
            connection.close()

    def _minimize(self, query: Query) -> Query:
        smallest = query
        shrinking = True
        while shrinking:
            shrinking = False
            for candidate in smallest.smaller():
                if not self._compare(candidate):
                    smallest = candidate
                    shrinking = True
                    break
        return smallest

    def _fail(self, case: int, shape: str, query: Query) -> None:
        self.counts.mismatches += 1
        text, params = query.render()
        grid = self.run_grid(text, params)
        reference = self.run_reference(text, params)
        self.failures.append(
            f"seed {self.seed}, case {case} ({shape}): the minimized statement\n"
            f"    {text}\n    params {params!r}\n"
            f"  grid:   {grid.error or grid.columns} {grid.rows!r}\n"
            f"  duckdb: {reference.error or reference.columns} {reference.rows!r}"
        )

    def check_partition(self, case: int, base: Query, predicate: Part) -> None:
        """Ternary-logic partitioning: Q = Q WHERE p + Q WHERE NOT p + Q WHERE p IS NULL."""
        self.counts.partitions += 1
        self.counts.by_shape["partition"] += 1
        parts = [
            predicate,
            Part(f"NOT ({predicate.text})", predicate.params),
            Part(f"({predicate.text}) IS NULL", predicate.params),
        ]
        whole_text, whole_params = base.render()
        whole = self.run_grid(whole_text, whole_params)
        self.counts.statements += 1
        pieces: list[tuple[Any, ...]] = []
        for part in parts:
            query = replace(base, where=(*base.where, part))
            self.counts.selects += 1
            if not self._compare(query):
                self._fail(case, "partition-part", self._minimize(query))
                return
            text, params = query.render()
            outcome = self.run_grid(text, params)
            pieces.extend(outcome.rows or [])
        if whole.rows is None:
            return
        if Counter(map(_normalized_row, whole.rows)) != Counter(map(_normalized_row, pieces)):
            self.counts.mismatches += 1
            self.failures.append(
                f"seed {self.seed}, case {case}: ternary partition of {predicate.text!r} "
                f"(params {list(predicate.params)!r}) over\n    {whole_text}\n"
                f"  gives {len(pieces)} rows for {len(whole.rows)}"
            )

    def check_dml(self, case: int, shape: str, statement: str, params: Sequence[Any]) -> None:
        self.counts.dml += 1
        self.counts.statements += 1
        self.counts.by_shape[shape] += 1
        grid_error = reference_error = ""
        grid_count = reference_count = None
        try:
            grid_count = self.client.sql(statement, list(params)).rowcount
        except ShoalError as error:
            grid_error = f"{type(error).__name__}: {error}"
        try:
            row = self.reference.execute(statement, list(params)).fetchone()
            reference_count = row[0] if row else None
        except duckdb.Error as error:
            reference_error = str(error).splitlines()[0]
        if bool(grid_error) != bool(reference_error) or grid_count != reference_count:
            self.counts.mismatches += 1
            self.failures.append(
                f"seed {self.seed}, case {case} ({shape}): {statement} params {list(params)!r}\n"
                f"  grid: {grid_error or grid_count}\n"
                f"  duckdb: {reference_error or reference_count}"
            )
        if grid_error and reference_error:
            self.counts.both_refused += 1
        self.recent_writes.append(
            f"case {case}: {statement} params {list(params)!r} -> "
            f"grid {grid_error or grid_count}, duckdb {reference_error or reference_count}"
        )
        del self.recent_writes[:-RECENT_WRITES_KEPT]
        self._sync_keys_and_versions()
        self.check_state(case, f"after {statement} params {list(params)!r}")

    def check_state(self, case: int, when: str) -> None:
        """Every table holds the same rows on both sides (reads must not change that)."""
        for table in (self.main, self.pk, self.ref):
            whole = f"SELECT * FROM {table} ORDER BY __key"
            grid = self.run_grid(whole, [])
            reference = self.run_reference(whole, [])
            if not same(grid, reference, ordered=True):
                self.counts.mismatches += 1
                grid_rows = Counter(map(_normalized_row, grid.rows or []))
                reference_rows = Counter(map(_normalized_row, reference.rows or []))
                self.failures.append(
                    f"seed {self.seed}, case {case}: {when}, table {table} differs\n"
                    f"  only in the grid:   {sorted(grid_rows - reference_rows, key=repr)!r}\n"
                    f"  only in duckdb:     {sorted(reference_rows - grid_rows, key=repr)!r}\n"
                    f"  grid error: {grid.error!r}\n"
                    "  the writes before:\n    " + "\n    ".join(self.recent_writes)
                )
                # Keep going from the grid's state, so one bad write is reported once.
                self._reload_reference(table, grid)

    def _reload_reference(self, table: str, grid: Outcome) -> None:
        self.reference.execute(f"DELETE FROM {table}")
        if grid.rows:
            marks = ", ".join("?" for _ in grid.rows[0])
            self.reference.executemany(f"INSERT INTO {table} VALUES ({marks})", grid.rows)

    # Generating -------------------------------------------------------------------------

    def run(self, cases: int, progress: Callable[[int], None] | None = None) -> None:
        generators: list[tuple[float, Callable[[int], None]]] = [
            (3, self._simple),
            (3, self._lookup),
            (2, self._aggregate),
            (2, self._partition),
            (1, self._join),
            (1, self._subquery),
            (1, self._derived),
            (1, self._cte),
            (1, self._window),
            (1, self._set_operation),
            (1.5, self._dml),
        ]
        weights = [weight for weight, _ in generators]
        for case in range(cases):
            self.rng = random.Random(f"{self.seed}:{case}")
            self._case = case
            generator = self.rng.choices([item for _, item in generators], weights)[0]
            generator(case)
            if case % STATE_CHECK_EVERY == STATE_CHECK_EVERY - 1:
                self.check_state(case, f"after case {case} (a periodic check)")
            if progress is not None:
                progress(case)

    # Pieces of SQL.

    def _literal(self, kind: str) -> Part:
        rng = self.rng
        if rng.random() < 0.25:
            return Part("?", (self._python_value(kind),))
        if kind == "VARCHAR":
            text = rng.choice([t for t in TEXTS if t is not None] + KEYS)
            return Part("'" + text.replace("'", "''") + "'")
        if kind == "BIGINT":
            return Part(str(rng.choice([0, 1, -1, 2, 5, 6, 7, 42, 100, 2**40])))
        if kind == "DOUBLE":
            return Part(rng.choice(["0.0", "1.5", "-2.25", "3.0", "2.5", "0.1"]))
        if kind == "BOOLEAN":
            return Part(rng.choice(["true", "false"]))
        if kind == "TIMESTAMPTZ":
            instant = rng.choice(INSTANTS[1:])
            assert instant is not None
            return Part(f"TIMESTAMPTZ '{instant.isoformat()}'")
        if kind == "BLOB":
            return Part(rng.choice(["'abc'::BLOB", "''::BLOB", "'\\x00\\xFF'::BLOB"]))
        return Part(rng.choice(["[1, 2]", "[3]", "[]::BIGINT[]"]))

    def _python_value(self, kind: str) -> Any:
        rng = self.rng
        if rng.random() < 0.1:
            return None
        if kind == "VARCHAR":
            return rng.choice([t for t in TEXTS if t is not None] + KEYS)
        if kind == "BIGINT":
            return rng.choice([0, 1, -1, 5, 6, 7, 42, 2**40])
        if kind == "DOUBLE":
            return rng.choice([0.0, 1.5, -2.25, 3.0, 2.5])
        if kind == "BOOLEAN":
            return rng.choice([True, False])
        if kind == "TIMESTAMPTZ":
            return rng.choice(INSTANTS[1:])
        if kind == "BLOB":
            return rng.choice([b"abc", b""])
        return rng.choice([[1, 2], [3]])

    def _predicate(self, columns: dict[str, str], alias: str = "", depth: int = 0) -> Part:
        rng = self.rng
        if depth < 2 and rng.random() < 0.3:
            left = self._predicate(columns, alias, depth + 1)
            if rng.random() < 0.2:
                return Part(f"NOT ({left.text})", left.params)
            right = self._predicate(columns, alias, depth + 1)
            operator = rng.choice(["AND", "OR"])
            return Part(f"({left.text}) {operator} ({right.text})", left.params + right.params)
        name = rng.choice(list(columns))
        kind = columns[name]
        column = f"{alias}.{name}" if alias else name
        choice = rng.random()
        if kind in ("BLOB", "BIGINT[]") and choice < 0.6:
            if kind == "BIGINT[]":
                return Part(f"len({column}) >= {rng.randint(0, 2)}")
            return Part(f"octet_length({column}) > {rng.randint(0, 2)}")
        if choice < 0.15:
            return Part(f"{column} IS {rng.choice(['', 'NOT '])}NULL")
        if choice < 0.25 and kind == "BOOLEAN":
            return Part(column if rng.random() < 0.5 else f"NOT {column}")
        if choice < 0.35 and kind == "VARCHAR":
            pattern = rng.choice(["a%", "%b", "%", "_", "k_", "%'%", "日%", ""])
            return Part(f"{column} LIKE '{pattern.replace(chr(39), chr(39) * 2)}'")
        if choice < 0.5:
            values = [self._literal(kind) for _ in range(rng.randint(1, 4))]
            if rng.random() < 0.2:
                values.append(Part("NULL"))
            return Part(
                f"{column} {rng.choice(['IN', 'NOT IN'])} ({', '.join(v.text for v in values)})",
                tuple(p for v in values for p in v.params),
            )
        if choice < 0.6 and kind in ("BIGINT", "DOUBLE", "VARCHAR", "TIMESTAMPTZ"):
            low, high = self._literal(kind), self._literal(kind)
            return Part(f"{column} BETWEEN {low.text} AND {high.text}", low.params + high.params)
        value = self._literal(kind)
        operator = rng.choice(["=", "<>", "<", "<=", ">", ">=", "IS DISTINCT FROM"])
        return Part(f"{column} {operator} {value.text}", value.params)

    def _table(self) -> tuple[str, dict[str, str]]:
        choice = self.rng.choice(["main", "main", "pk", "ref"])
        if choice == "main":
            return self.main, {"__key": "VARCHAR", **MAIN_COLUMNS}
        if choice == "pk":
            return self.pk, {"__key": "VARCHAR", **PK_COLUMNS}
        return self.ref, {"__key": "VARCHAR", **REF_COLUMNS}

    def _items(self, columns: dict[str, str], alias: str = "") -> tuple[Part, ...]:
        rng = self.rng
        if rng.random() < 0.2:
            return (Part("*"),)
        names = rng.sample(list(columns), rng.randint(1, min(4, len(columns))))
        items = []
        for name in names:
            column = f"{alias}.{name}" if alias else name
            kind = columns[name]
            if rng.random() < 0.2 and kind in ("BIGINT", "DOUBLE"):
                items.append(Part(f"{column} * 2 AS {name}_x2"))
            elif rng.random() < 0.15 and kind == "VARCHAR":
                items.append(Part(f"upper({column}) AS {name}_up"))
            elif rng.random() < 0.1:
                value = self._literal(kind)
                items.append(Part(f"coalesce({column}, {value.text}) AS {name}_c", value.params))
            else:
                items.append(Part(column))
        return tuple(items)

    def _paging(self, query: Query) -> Query:
        rng = self.rng
        if rng.random() < 0.5:
            return query
        query = replace(query, ordered=True)
        if rng.random() < 0.6:

            def amount() -> Part:
                number = rng.randint(0, 6)
                return Part("?", (number,)) if rng.random() < 0.5 else Part(str(number))

            query = replace(
                query,
                limit=amount() if rng.random() < 0.8 else None,
                offset=amount() if rng.random() < 0.5 else None,
                offset_first=rng.random() < 0.5,
            )
        return query

    # Shapes.

    def _simple(self, case: int) -> None:
        table, columns = self._table()
        where = tuple(self._predicate(columns) for _ in range(self.rng.randint(0, 2)))
        query = Query(self._items(columns), Part(table), where, distinct=self.rng.random() < 0.15)
        self.check_query(case, "simple", self._paging(query))

    def _key_values(self, kind: str) -> tuple[str, tuple[Any, ...]]:
        """Values for a key comparison, in every form the fast path meets."""
        rng = self.rng
        pool: list[Any]
        if kind == "VARCHAR":
            pool = [*KEYS, "", "missing", None, "r1", "r3"]
        else:
            pool = [5, 6, 0, -3, 2**40, "05", " 5", "+6", "1e3", 5.0, 5.5, None, 999, "x"]
        values = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            values.append(values[0])  # a duplicate
        texts: list[str] = []
        params: list[Any] = []
        for value in values:
            if rng.random() < 0.5:
                texts.append("?")
                params.append(value)
            elif value is None:
                texts.append("NULL")
            elif isinstance(value, str):
                texts.append("'" + value.replace("'", "''") + "'")
            else:
                texts.append(repr(value))
        if len(texts) == 1 and rng.random() < 0.6:
            return f"= {texts[0]}", tuple(params)
        return f"IN ({', '.join(texts)})", tuple(params)

    def _lookup(self, case: int) -> None:
        rng = self.rng
        table, columns = self._table()
        key_column = "__key"
        key_kind = "VARCHAR"
        if table == self.pk and rng.random() < 0.7:
            key_column, key_kind = "id", "BIGINT"
        elif table == self.ref and rng.random() < 0.5:
            key_column = "k"
        comparison, params = self._key_values(key_kind)
        alias = rng.choice(["", "", "t"])
        column = f"{alias}.{key_column}" if alias and rng.random() < 0.5 else key_column
        if rng.random() < 0.2 and comparison.startswith("="):
            condition = Part(f"{comparison[2:]} = {column}", params)
        else:
            condition = Part(f"{column} {comparison}", params)
        where: tuple[Part, ...] = (condition,)
        if rng.random() < 0.3:
            where += (self._predicate(columns, alias),)
            if rng.random() < 0.5:
                where = where[::-1]
        source = Part(f"{table} {alias}" if alias else table)
        shape = rng.random()
        if shape < 0.5:
            query = Query(self._items(columns, alias), source, where)
        elif shape < 0.7:
            query = Query((Part("count(*)"), Part(f"count(DISTINCT {column})")), source, where)
        elif shape < 0.85:
            query = Query(
                (Part(column), Part("count(*) OVER ()")),
                source,
                where,
            )
        else:
            query = self._paging(Query(self._items(columns, alias), source, where))
        self.counts.point_lookups += 1
        self.check_query(case, "lookup", query)

    def _aggregate(self, case: int) -> None:
        rng = self.rng
        table, columns = self._table()
        groupable = [name for name, kind in columns.items() if kind not in ("BIGINT[]",)]
        keys = rng.sample(groupable, rng.randint(1, 2))
        numbers = [name for name, kind in columns.items() if kind in ("BIGINT", "DOUBLE")]
        aggregates = [Part("count(*) AS n")]
        for name in rng.sample(numbers, min(len(numbers), rng.randint(1, 2))):
            function = rng.choice(["sum", "min", "max", "avg", "count"])
            aggregates.append(Part(f"{function}({name}) AS {function}_{name}"))
        having = None
        if rng.random() < 0.4:
            having = Part(f"count(*) {rng.choice(['>', '>=', '='])} {rng.randint(1, 3)}")
        where = tuple(self._predicate(columns) for _ in range(rng.randint(0, 1)))
        query = Query(
            tuple(Part(name) for name in keys) + tuple(aggregates),
            Part(table),
            where,
            group=tuple(Part(name) for name in keys),
            having=having,
        )
        self.check_query(case, "aggregate", self._paging(query))

    def _partition(self, case: int) -> None:
        table, columns = self._table()
        if self.rng.random() < 0.2:
            # A key predicate, so the point lookup meets NOT and IS NULL around it.
            comparison, params = self._key_values("VARCHAR")
            predicate = Part(f"__key {comparison}", params)
        else:
            predicate = self._predicate(columns)
        base = Query(self._items(columns), Part(table))
        self.check_partition(case, base, predicate)

    def _join(self, case: int) -> None:
        rng = self.rng
        kind = rng.choice(["JOIN", "LEFT JOIN", "FULL JOIN"])
        condition = rng.choice(["a.s = b.s", "a.__key = b.k", "a.i = b.n"])
        source = Part(f"{self.main} a {kind} {self.ref} b ON {condition}")
        items = (Part("a.__key"), Part("a.s"), Part("b.k"), Part("b.n"))
        where: tuple[Part, ...] = ()
        if rng.random() < 0.6:
            columns = {"__key": "VARCHAR", **MAIN_COLUMNS}
            where = (self._predicate(columns, "a"),)
        self.check_query(case, "join", self._paging(Query(items, source, where)))

    def _subquery(self, case: int) -> None:
        rng = self.rng
        shape = rng.choice(["in", "exists", "scalar", "key-in"])
        columns = {"__key": "VARCHAR", **MAIN_COLUMNS}
        if shape == "in":
            condition = Part(f"i IN (SELECT v FROM {self.pk} WHERE v IS NOT NULL)")
        elif shape == "exists":
            condition = Part(f"EXISTS (SELECT 1 FROM {self.ref} r WHERE r.s = {self.main}.s)")
        elif shape == "scalar":
            condition = Part(f"i >= (SELECT avg(v) FROM {self.pk})")
        else:
            comparison, params = self._key_values("VARCHAR")
            condition = Part(f"__key IN (SELECT k FROM {self.ref} WHERE k {comparison})", params)
        query = Query(self._items(columns), Part(self.main), (condition,))
        self.check_query(case, f"subquery-{shape}", self._paging(query))

    def _derived(self, case: int) -> None:
        """A key filter OUTSIDE a derived table: never a point lookup of the base table."""
        rng = self.rng
        comparison, params = self._key_values("VARCHAR")
        inner = rng.choice(
            [
                f"SELECT __key, s, count(*) OVER () AS n FROM {self.main}",
                f"SELECT max(__key) AS __key, count(*) AS n FROM {self.main}",
                f"SELECT __key, i AS n FROM {self.main} WHERE i IS NOT NULL",
                f"SELECT k AS __key, n FROM {self.ref} UNION ALL SELECT __key, i FROM {self.main}",
                f"SELECT i AS n FROM {self.main}",  # no __key: a binder error on both
            ]
        )
        items = rng.choice([(Part("*"),), (Part("n"),), (Part("__key"),)])
        query = Query(items, Part(f"({inner}) q"), (Part(f"__key {comparison}", params),))
        self.check_query(case, "derived", query)

    def _cte(self, case: int) -> None:
        comparison, params = self._key_values("VARCHAR")
        with_ = Part(
            f"__cte AS (SELECT __key, s, i FROM {self.main} WHERE __key {comparison})", params
        )
        where = (self._predicate({"s": "VARCHAR", "i": "BIGINT"}),)
        query = Query((Part("__key"), Part("s"), Part("i")), Part("__cte"), where, with_=with_)
        self.check_query(case, "cte", self._paging(query))

    def _window(self, case: int) -> None:
        rng = self.rng
        function = rng.choice(
            [
                "count(*) OVER (PARTITION BY g)",
                "sum(v) OVER (PARTITION BY g)",
                "rank() OVER (PARTITION BY g ORDER BY v)",
                "dense_rank() OVER (ORDER BY w)",
                "row_number() OVER (ORDER BY __key)",
                "lag(v) OVER (ORDER BY id)",
            ]
        )
        where: tuple[Part, ...] = ()
        if rng.random() < 0.5:
            where = (self._predicate({"__key": "VARCHAR", **PK_COLUMNS}),)
        query = Query((Part("id"), Part("g"), Part(f"{function} AS x")), Part(self.pk), where)
        self.check_query(case, "window", self._paging(query))

    def _set_operation(self, case: int) -> None:
        rng = self.rng
        operator = rng.choice(["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "EXCEPT ALL"])
        left = Query(
            (Part("s"), Part("i")),
            Part(self.main),
            (self._predicate({"__key": "VARCHAR", **MAIN_COLUMNS}),),
        )
        right = Query(
            (Part("s"), Part("n")),
            Part(self.ref),
            (self._predicate({"__key": "VARCHAR", **REF_COLUMNS}),),
        )
        query = replace(left, set_operation=(operator, right))
        self.check_query(case, "set-operation", self._paging(query))

    def _dml(self, case: int) -> None:
        rng = self.rng
        choice = rng.random()
        if choice < 0.35:
            self._inserted += 1
            identifier = 1000 + self.seed % 1000 * 1000 + self._inserted
            if rng.random() < 0.15:
                identifier = rng.choice(PK_IDS)  # an existing key: refused by both
            columns = ["id", "g", "v"] + (["d"] if rng.random() < 0.5 else [])
            values = [identifier, self._python_value("VARCHAR"), rng.choice(INTEGERS[:-1])]
            if "d" in columns:
                values.append(rng.choice([None, 3]))
            texts = ", ".join("?" for _ in values)
            self.check_dml(
                case,
                "insert",
                f"INSERT INTO {self.pk} ({', '.join(columns)}) VALUES ({texts})",
                values,
            )
        elif choice < 0.5:
            self._inserted += 1
            key = f"n{self.seed}_{self._inserted}"
            self.check_dml(
                case,
                "insert-main",
                f"INSERT INTO {self.main} (__key, s, i, b) VALUES (?, ?, ?, ?)",
                [key, self._python_value("VARCHAR"), rng.choice(INTEGERS[:-1]), rng.random() < 0.5],
            )
        elif choice < 0.8:
            table, columns = rng.choice(
                [
                    (self.pk, {"__key": "VARCHAR", **PK_COLUMNS}),
                    (self.main, {"__key": "VARCHAR", **MAIN_COLUMNS}),
                ]
            )
            if table == self.pk:
                assignment = rng.choice(
                    ["v = v + 1", "g = g || 'x'", "w = w * 2", "d = NULL", "d = v", "v = NULL"]
                )
            else:
                assignment = rng.choice(
                    ["i = i + 1", "s = s || '!'", "b = NOT b", "f = f / 2", "s = NULL"]
                )
            condition = self._predicate(columns)
            self.check_dml(
                case,
                "update",
                f"UPDATE {table} SET {assignment} WHERE {condition.text}",
                condition.params,
            )
        else:
            table, columns = rng.choice(
                [
                    (self.pk, {"__key": "VARCHAR", **PK_COLUMNS}),
                    (self.main, {"__key": "VARCHAR", **MAIN_COLUMNS}),
                ]
            )
            condition = self._predicate(columns)
            self.check_dml(
                case,
                "delete",
                f"DELETE FROM {table} WHERE {condition.text}",
                condition.params,
            )


def _normalized_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(normalize(value) for value in row)
