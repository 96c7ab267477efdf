"""Grid SQL features on a real server: point lookups, EXPLAIN, parameters, types, cursors,
DB-API, tables made by SQL or by the SDK, DML counts, approximate aggregates, streaming."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

import shoal.dbapi as db
from shoal import Client

pytestmark = pytest.mark.integration

ITEMS_SCHEMA = {
    "name": "string",
    "qty": "int",
    "price": "float",
    "active": "bool",
    "blob": "bytes",
    "seen": "timestamp",
    "tags": {"type": "list", "items": "int"},
    "meta": "map",
}
ITEM_COLUMNS = ["name", "qty", "price", "active", "blob", "seen", "tags", "meta"]
SEEN = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)


def item(index: int) -> dict[str, Any]:
    return {
        "name": f"item-{index}",
        "qty": index,
        "price": index * 1.25,
        "active": index % 2 == 0,
        "blob": bytes([index % 256, 7]),
        "seen": SEEN + timedelta(hours=index),
        "tags": [index, index + 1],
        "meta": {"index": index},
    }


@pytest.fixture
def items(client: Client, map_name: str) -> str:
    """A map of 40 items with every column type."""
    client.create_map(map_name, schema=ITEMS_SCHEMA)
    client.put_many(map_name, {f"k{index:02d}": item(index) for index in range(40)})
    return map_name


@pytest.fixture
def connection(shoal_server: str) -> Iterator[db.Connection]:
    with db.connect(shoal_server) as connected:
        yield connected


def plan_of(client: Client, statement: str, params: list[Any] | None = None) -> list[str]:
    return [row[0] for row in client.sql("EXPLAIN " + statement, params).fetchall()]


def shoal_plan(plan: list[str]) -> list[str]:
    """The lines of Shoal's own plan (before DuckDB's)."""
    return [line.strip() for line in plan[1 : plan.index("duckdb plan:")]]


# Point lookups ------------------------------------------------------------------------


def test_point_lookup_by_key_returns_the_row_and_does_not_scan(client: Client, items: str) -> None:
    cursor = client.sql(f"SELECT __key, name, qty FROM {items} WHERE __key = ?", ["k07"])
    assert cursor.fetchall() == [("k07", "item-7", 7)]
    assert cursor.rows_scanned == 1
    assert client.sql(f"SELECT name FROM {items} WHERE __key = ?", ["nope"]).fetchall() == []

    lines = shoal_plan(plan_of(client, f"SELECT * FROM {items} WHERE __key = ?", ["k07"]))
    assert len(lines) == 1
    assert lines[0].startswith(f"point lookup on {items}.__key: 1 key(s)")
    assert "no scan" in lines[0]
    assert not any(line.startswith("scan ") for line in lines)


def test_point_lookup_with_in_reads_only_those_keys(client: Client, items: str) -> None:
    cursor = client.sql(
        f"SELECT __key, qty FROM {items} WHERE __key IN (?, ?, 'k30', 'missing')", ["k01", "k02"]
    )
    assert sorted(cursor.fetchall()) == [("k01", 1), ("k02", 2), ("k30", 30)]
    assert cursor.rows_scanned == 3
    lines = shoal_plan(
        plan_of(client, f"SELECT qty FROM {items} WHERE __key IN ('k01', 'k02', 'k03')")
    )
    assert lines[0].startswith(f"point lookup on {items}.__key: 3 key(s)")
    assert "no scan" in lines[0]


def test_point_lookup_answers_as_the_scan_does(client: Client, items: str) -> None:
    """The fast path (no DuckDB for plain columns) must give the scan's rows and types."""
    for columns in ["*", "__key, __version, " + ", ".join(ITEM_COLUMNS), "NAME, Qty, tags"]:
        fast = client.sql(f"SELECT {columns} FROM {items} WHERE __key = 'k05'")
        slow = client.sql(f"SELECT {columns} FROM {items} WHERE __key || '' = 'k05'")
        assert fast.fetchall() == slow.fetchall()
        assert fast.description == slow.description


def test_point_lookup_on_the_primary_key_column(client: Client, map_name: str) -> None:
    client.sql(f"CREATE TABLE {map_name} (id INTEGER PRIMARY KEY, label VARCHAR)")
    client.sql(f"INSERT INTO {map_name} VALUES (1, 'one'), (2, 'two'), (30, 'thirty')")
    assert client.sql(f"SELECT label FROM {map_name} WHERE id = ?", [30]).fetchall() == [
        ("thirty",)
    ]
    assert client.sql(f"SELECT label FROM {map_name} WHERE id = 2.0").fetchall() == [("two",)]
    found = client.sql(f"SELECT id, __key FROM {map_name} WHERE id IN (1, 2, 3)").fetchall()
    assert sorted(found) == [(1, "1"), (2, "2")]
    lines = shoal_plan(plan_of(client, f"SELECT label FROM {map_name} WHERE id = ?", [30]))
    assert lines[0].startswith(f"point lookup on {map_name}.id: 1 key(s)")
    assert "no scan" in lines[0]


def test_a_subquery_on_the_same_map_is_not_a_point_lookup(client: Client, items: str) -> None:
    rows = client.sql(
        f"SELECT qty, (SELECT count(*) FROM {items}) FROM {items} WHERE __key = 'k03'"
    ).fetchall()
    assert rows == [(3, 40)]


# EXPLAIN of a scan -------------------------------------------------------------------


def test_explain_of_a_scan_names_columns_filters_and_partitions(client: Client, items: str) -> None:
    partitions = client.cluster_info().partitions
    lines = shoal_plan(
        plan_of(client, f"SELECT name, price FROM {items} WHERE qty > ? AND active", [3])
    )
    scan = next(line for line in lines if line.startswith(f"scan {items}:"))
    assert "40 rows" in scan
    assert f"partitions scanned {partitions}" in scan
    assert "columns [" in scan
    pushed = scan.split("columns [", 1)[1].rstrip("]").split(", ")
    assert sorted(pushed) == ["active", "name", "price", "qty"]
    filters = next(line for line in lines if line.startswith("filters pushed into the scan:"))
    assert "qty > " in filters
    assert "active" in filters
    assert not any("point lookup" in line for line in lines)


def test_explain_of_a_join_scans_both_maps(client: Client, items: str, map_name: str) -> None:
    other = map_name + "_other"
    client.create_map(other, schema={"qty": "int", "label": "string"})
    client.put_many(
        other, {f"o{index}": {"qty": index, "label": f"L{index}"} for index in range(5)}
    )
    lines = shoal_plan(
        plan_of(client, f"SELECT a.name, b.label FROM {items} a JOIN {other} b ON a.qty = b.qty")
    )
    assert any(line.startswith(f"scan {items}: 40 rows") for line in lines)
    assert any(line.startswith(f"scan {other}: 5 rows") for line in lines)


# Parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "O'Brien\"; DROP TABLE x; --",
        "ünïcødé ✓",
        "",
        0,
        -42,
        2**62,
        3.5,
        -0.001,
        True,
        False,
        None,
        b"\x00\xffbytes",
        datetime(2023, 7, 4, 5, 6, 7, 123456, tzinfo=UTC),
        datetime(2023, 7, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2))),
    ],
    ids=lambda value: type(value).__name__ + "-" + repr(value)[:20],
)
def test_a_parameter_comes_back_as_bound(client: Client, value: Any) -> None:
    (row,) = client.sql("SELECT ?", [value]).fetchall()
    assert row == (value,)
    assert type(row[0]) is type(value) or isinstance(row[0], datetime)


def test_parameters_filter_typed_columns(client: Client, items: str) -> None:
    def keys(where: str, params: list[Any]) -> list[str]:
        rows = client.sql(f"SELECT __key FROM {items} WHERE {where} ORDER BY 1", params)
        return [row[0] for row in rows.fetchall()]

    assert keys("name = ?", ["item-3"]) == ["k03"]
    assert keys("qty >= ? AND qty < ?", [37, 39]) == ["k37", "k38"]
    assert keys("price = ?", [12.5]) == ["k10"]
    assert keys("active = ? AND qty < ?", [False, 4]) == ["k01", "k03"]
    assert keys("blob = ?", [bytes([5, 7])]) == ["k05"]
    assert keys("seen < ?", [SEEN + timedelta(hours=2)]) == ["k00", "k01"]
    assert keys(
        "seen = ?", [(SEEN + timedelta(hours=3)).astimezone(timezone(timedelta(hours=-5)))]
    ) == ["k03"]
    assert keys("coalesce(?, name) = name AND qty < 2", [None]) == ["k00", "k01"]
    # A bound value is a value, never SQL.
    assert keys("name = ?", ["x' OR '1'='1"]) == []


def test_a_naive_datetime_parameter_is_taken_as_utc(client: Client) -> None:
    (row,) = client.sql("SELECT ?", [datetime(2020, 1, 2, 3, 4, 5)]).fetchall()
    assert row[0] == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


# Result types ------------------------------------------------------------------------


def test_description_names_the_column_types(client: Client, items: str) -> None:
    cursor = client.sql(f"SELECT * FROM {items} WHERE qty < 0")
    assert cursor.description is not None
    described = {column[0]: column[1] for column in cursor.description}
    assert described == {
        "__key": "VARCHAR",
        "__version": "BIGINT",
        "name": "VARCHAR",
        "qty": "BIGINT",
        "price": "DOUBLE",
        "active": "BOOLEAN",
        "blob": "BLOB",
        "seen": "TIMESTAMP WITH TIME ZONE",
        "tags": "BIGINT[]",
        "meta": "VARCHAR",
    }
    assert [column[0] for column in cursor.description][:2] == ["__key", "__version"]
    assert all(len(column) == 7 for column in cursor.description)


def test_values_arrive_as_python_values(client: Client, items: str) -> None:
    (row,) = client.sql(
        f"SELECT {', '.join(ITEM_COLUMNS)} FROM {items} WHERE __key || '' = 'k04'"
    ).fetchall()
    expected = item(4)
    assert row[:6] == tuple(expected[name] for name in ITEM_COLUMNS[:6])
    assert row[6] == [4, 5]
    assert row[7] == '{"index":4}'


def test_a_schemaless_map_is_key_version_and_json_value(client: Client, map_name: str) -> None:
    client.create_map(map_name)
    client.put(map_name, "a", {"x": 1, "tags": ["p", "q"]})
    client.put(map_name, "b", "text")
    client.put(map_name, "c", 5)
    cursor = client.sql(f"SELECT __key, value, __version FROM {map_name} ORDER BY __key")
    assert [column[0] for column in cursor.description or []] == ["__key", "value", "__version"]
    rows = cursor.fetchall()
    assert [(key, value) for key, value, _ in rows] == [
        ("a", '{"x":1,"tags":["p","q"]}'),
        ("b", '"text"'),
        ("c", "5"),
    ]
    assert all(version >= 1 for _, _, version in rows)
    assert client.sql(
        f"SELECT CAST(json_extract(value, '$.x') AS INTEGER) FROM {map_name} WHERE __key = 'a'"
    ).fetchall() == [(1,)]


def test_to_arrow_and_to_pandas(client: Client, items: str) -> None:
    table = client.sql(f"SELECT __key, qty, price, seen, tags FROM {items} ORDER BY qty").to_arrow()
    assert isinstance(table, pa.Table)
    assert table.num_rows == 40
    assert table.schema.field("qty").type == pa.int64()
    assert table.schema.field("price").type == pa.float64()
    assert pa.types.is_timestamp(table.schema.field("seen").type)
    assert table.column("qty").to_pylist() == list(range(40))
    assert table.column("tags").to_pylist()[2] == [2, 3]

    frame = client.sql(
        f"SELECT __key, qty, price FROM {items} WHERE qty < 10 ORDER BY qty"
    ).to_pandas()
    assert list(frame.columns) == ["__key", "qty", "price"]
    assert len(frame) == 10
    assert frame["qty"].sum() == 45
    assert frame["price"].iloc[4] == 5.0

    empty = client.sql(f"SELECT __key, qty FROM {items} WHERE qty < 0").to_arrow()
    assert empty.num_rows == 0
    assert empty.schema.names == ["__key", "qty"]


def test_fetchone_fetchmany_and_iteration(client: Client, items: str) -> None:
    cursor = client.sql(f"SELECT qty FROM {items} ORDER BY qty", batch_rows=7)
    assert cursor.fetchone() == (0,)
    assert cursor.fetchmany(3) == [(1,), (2,), (3,)]
    assert [row[0] for row in cursor][:2] == [4, 5]
    assert cursor.fetchone() is None
    assert cursor.fetchall() == []


# DB-API ------------------------------------------------------------------------------


def test_dbapi_module_globals() -> None:
    assert db.apilevel == "2.0"
    assert db.paramstyle == "qmark"
    assert db.threadsafety in (0, 1, 2, 3)
    for error in (db.ProgrammingError, db.IntegrityError, db.OperationalError, db.DataError):
        assert issubclass(error, db.DatabaseError)
    assert issubclass(db.DatabaseError, db.Error)
    assert issubclass(db.InterfaceError, db.Error)


def test_dbapi_cursor_reads(connection: db.Connection, items: str) -> None:
    cursor = connection.cursor()
    cursor.execute(f"SELECT __key, qty FROM {items} WHERE qty < ? ORDER BY qty", [5])
    assert cursor.description is not None
    assert [column[0] for column in cursor.description] == ["__key", "qty"]
    assert cursor.fetchone() == ("k00", 0)
    assert cursor.fetchmany(2) == [("k01", 1), ("k02", 2)]
    assert cursor.fetchall() == [("k03", 3), ("k04", 4)]
    assert cursor.fetchone() is None
    cursor.arraysize = 2
    cursor.execute(f"SELECT qty FROM {items} WHERE qty >= 35 ORDER BY qty")
    assert cursor.fetchmany() == [(35,), (36,)]
    assert list(cursor) == [(37,), (38,), (39,)]
    cursor.close()
    with pytest.raises(db.InterfaceError):
        cursor.execute("SELECT 1")


def test_dbapi_rowcount_of_changes(connection: db.Connection, map_name: str) -> None:
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY, n BIGINT)")
    cursor.execute(f"INSERT INTO {map_name} VALUES ('a', 1), ('b', 2), ('c', 3)")
    assert cursor.rowcount == 3
    cursor.executemany(f"INSERT INTO {map_name} VALUES (?, ?)", [("d", 4), ("e", 5)])
    assert cursor.rowcount == 2
    cursor.execute(f"UPDATE {map_name} SET n = n * 10 WHERE n >= ?", [3])
    assert cursor.rowcount == 3
    cursor.execute(f"UPDATE {map_name} SET n = 0 WHERE id = 'zzz'")
    assert cursor.rowcount == 0
    cursor.execute(f"DELETE FROM {map_name} WHERE n > 35")
    assert cursor.rowcount == 2
    cursor.execute(f"SELECT id, n FROM {map_name} ORDER BY id")
    assert cursor.fetchall() == [("a", 1), ("b", 2), ("c", 30)]
    connection.commit()
    with pytest.raises(db.NotSupportedError):
        connection.rollback()


def test_dbapi_error_classes(connection: db.Connection, items: str) -> None:
    cursor = connection.cursor()
    with pytest.raises(db.ProgrammingError, match="line 1"):
        cursor.execute("SELEC 1")
    with pytest.raises(db.ProgrammingError, match="unknown table"):
        cursor.execute("SELECT * FROM no_such_map_anywhere")
    with pytest.raises(db.ProgrammingError):
        cursor.execute(f"SELECT no_such_column FROM {items}")
    with pytest.raises(db.IntegrityError):
        cursor.execute(f"INSERT INTO {items} (__key, qty) VALUES ('k01', 1)")
    with pytest.raises(db.IntegrityError):
        cursor.execute(f"INSERT INTO {items} (__key, qty) VALUES ('new', 'not a number')")
    with pytest.raises(db.OperationalError):
        connection.client.timeout_s = 0.5
        cursor.execute("SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b")
    connection.client.timeout_s = 10
    cursor.execute("SELECT 1")
    assert cursor.fetchall() == [(1,)]


def test_dbapi_closed_connection(shoal_server: str) -> None:
    connection = db.connect(shoal_server)
    cursor = connection.cursor()
    connection.close()
    with pytest.raises(db.InterfaceError):
        cursor.execute("SELECT 1")
    with pytest.raises(db.InterfaceError):
        connection.cursor()


# Tables are maps ---------------------------------------------------------------------


def test_a_table_created_by_sql_is_a_map_for_the_sdk(client: Client, map_name: str) -> None:
    client.sql(
        f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, "
        "age INTEGER, score DOUBLE, born TIMESTAMP)"
    )
    info = client.describe_map(map_name)
    assert info.schema is not None
    assert info.schema["key_field"] == "id"
    assert [spec["name"] for spec in info.schema["fields"]] == [
        "id",
        "name",
        "age",
        "score",
        "born",
    ]
    born = datetime(1990, 5, 17, tzinfo=UTC)
    client.sql(f"INSERT INTO {map_name} VALUES (?, ?, ?, ?, ?)", ["ann", "Ann", 34, 9.5, born])
    assert client.get(map_name, "ann") == {
        "id": "ann",
        "name": "Ann",
        "age": 34,
        "score": 9.5,
        "born": born,
    }
    # What the SDK writes, SQL reads; the key is visible both as `id` and as `__key`.
    client.put(map_name, "bob", {"name": "Bob", "age": 40})
    rows = client.sql(f"SELECT id, __key, name, age FROM {map_name} ORDER BY id").fetchall()
    assert rows == [("ann", "ann", "Ann", 34), ("bob", "bob", "Bob", 40)]
    client.sql(f"DROP TABLE {map_name}")
    assert map_name not in {found.name for found in client.list_maps()}


def test_a_map_created_by_the_sdk_is_a_table(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema={"owner": "string", "balance": {"type": "int", "min": 0}})
    client.put_many(map_name, {"a": {"owner": "A", "balance": 5}, "b": {"owner": "B"}})
    cursor = client.sql(f"SELECT __key, owner, balance FROM {map_name} ORDER BY __key")
    assert cursor.fetchall() == [("a", "A", 5), ("b", "B", None)]
    client.sql(f"INSERT INTO {map_name} (__key, owner, balance) VALUES ('c', 'C', 7)")
    assert client.get(map_name, "c") == {"owner": "C", "balance": 7}


def test_drop_table_if_exists(client: Client, map_name: str) -> None:
    client.sql(f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY)")
    assert client.sql(f"DROP TABLE {map_name}").fetchall() == [(1,)]
    assert client.sql(f"DROP TABLE IF EXISTS {map_name}").fetchall() == [(0,)]
    client.sql(f"CREATE TABLE IF NOT EXISTS {map_name} (id VARCHAR PRIMARY KEY)")
    client.sql(f"CREATE TABLE IF NOT EXISTS {map_name} (id VARCHAR PRIMARY KEY)")
    assert client.sql(f"SELECT count(*) FROM {map_name}").fetchall() == [(0,)]


# DML ---------------------------------------------------------------------------------


def test_insert_of_many_bound_rows_is_one_transaction(client: Client, map_name: str) -> None:
    client.sql(f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY, n INTEGER NOT NULL)")
    rows = [(f"r{index:03d}", index) for index in range(200)]
    statement = f"INSERT INTO {map_name} VALUES " + ", ".join(["(?, ?)"] * len(rows))
    # The last row breaks the schema: nothing of the statement may land, on any partition.
    bad = [*rows[:-1], ("r199", None)]
    with pytest.raises(Exception, match="required"):
        client.sql(statement, [value for row in bad for value in row])
    assert client.sql(f"SELECT count(*) FROM {map_name}").fetchall() == [(0,)]

    cursor = client.sql(statement, [value for row in rows for value in row])
    assert cursor.rowcount == 200
    assert client.sql(f"SELECT count(*), sum(n) FROM {map_name}").fetchall() == [
        (200, sum(range(200)))
    ]
    assert client.get(map_name, "r150") == {"id": "r150", "n": 150}


def test_update_and_delete_report_their_counts(client: Client, items: str) -> None:
    cursor = client.sql(
        f"UPDATE {items} SET price = price * 2, name = upper(name) WHERE qty < ?", [10]
    )
    assert cursor.rowcount == 10
    assert cursor.fetchall() == [(10,)]
    assert client.get(items, "k03")["name"] == "ITEM-3"
    assert client.get(items, "k03")["price"] == 7.5
    assert client.get(items, "k13")["name"] == "item-13"
    assert client.sql(f"DELETE FROM {items} WHERE qty >= 30").rowcount == 10
    assert client.sql(f"DELETE FROM {items} WHERE qty >= 30").rowcount == 0
    assert client.get(items, "k35") is None
    assert client.sql(f"SELECT count(*) FROM {items}").fetchall() == [(30,)]
    assert client.sql(f"DELETE FROM {items}").rowcount == 30


# Approximate aggregates --------------------------------------------------------------


def test_approximate_aggregates(client: Client, map_name: str) -> None:
    rng = random.Random(11)
    client.create_map(map_name, schema={"user": "string", "latency": "float", "page": "string"})
    pages = ["home"] * 50 + ["cart"] * 25 + ["search"] * 15 + [f"p{i}" for i in range(10)]
    rows = {
        f"e{index:05d}": {
            "user": f"u{rng.randint(0, 2999)}",
            "latency": float(index),
            "page": rng.choice(pages),
        }
        for index in range(6000)
    }
    client.put_many(map_name, rows)
    exact_users = len({row["user"] for row in rows.values()})
    top = [page for page, _ in Counter(row["page"] for row in rows.values()).most_common(3)]
    (row,) = client.sql(
        f"SELECT approx_count_distinct(user), approx_quantile(latency, 0.5), "
        f"approx_quantile(latency, 0.9), approx_top_k(page, 3) FROM {map_name}"
    ).fetchall()
    distinct, median, p90, top_pages = row
    assert abs(distinct - exact_users) <= 0.05 * exact_users
    assert abs(median - 3000) <= 150
    assert abs(p90 - 5400) <= 150
    assert list(top_pages) == top


# Streaming ---------------------------------------------------------------------------


def test_a_large_result_streams_completely_in_small_batches(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema={"n": "int"})
    for start in range(0, 50_000, 10_000):
        client.put_many(
            map_name, {f"k{index:05d}": {"n": index} for index in range(start, start + 10_000)}
        )
    cursor = client.sql(f"SELECT __key, n FROM {map_name}", batch_rows=1000)
    seen = 0
    total = 0
    while chunk := cursor.fetchmany(3333):
        seen += len(chunk)
        total += sum(n for _, n in chunk)
    assert seen == 50_000
    assert total == sum(range(50_000))
    assert cursor.rowcount == 50_000

    table = client.sql(f"SELECT n FROM {map_name}", batch_rows=1000).to_arrow()
    assert table.num_rows == 50_000
    batches = table.to_batches()
    assert len(batches) >= 50
    assert max(batch.num_rows for batch in batches) <= 1000
    assert sorted(table.column("n").to_pylist()) == list(range(50_000))
