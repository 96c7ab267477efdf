"""Grid SQL errors: each bad statement gets its status and reason, and the server serves on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from shoal import (
    CancelledError,
    Client,
    DeadlineExceededError,
    InvalidArgumentError,
    ResourceExhaustedError,
    ShoalError,
)
from shoal._sql import Cursor
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

# Ten billion products: no engine finishes this in the few seconds a test waits.
SLOW_QUERY = "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"
SLOW_STREAM = "SELECT a.range * b.range FROM range(100000) a, range(100000) b"


def assert_serving(client: Client) -> None:
    started = time.monotonic()
    assert client.sql("SELECT 41 + 1").fetchall() == [(42,)]
    assert time.monotonic() - started < 5


@pytest.fixture
def table(client: Client, map_name: str) -> Iterator[str]:
    client.create_map(map_name, schema={"name": "string", "n": "int", "price": "float"})
    client.put_many(
        map_name, {f"k{i}": {"name": f"n{i}", "n": i, "price": i / 2} for i in range(20)}
    )
    yield map_name
    assert_serving(client)


def test_a_syntax_error_reports_line_and_column(client: Client, table: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.sql(f"SELECT name,\n  n\nFROM {table}\nWHERE n >")
    assert "line 4" in str(caught.value)
    assert "column" in str(caught.value)
    assert caught.value.field == "statement"
    with pytest.raises(InvalidArgumentError, match=r"line 1, column \d+"):
        client.sql("SELEC name FROM x")


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("SELECT * FROM no_such_map_here", "unknown table 'no_such_map_here'"),
        ("SELECT nope FROM {table}", "nope"),
        ("SELECT {table}.n, other.n FROM {table}", "other"),
        ("SELECT n FROM {table} WHERE name + 1 > 3", "name"),
        ("SELECT n FROM {table} WHERE name > 3", "cast"),
        ("SELECT lower(name, 5) FROM {table}", "arguments"),
        ("SELECT n FROM {table} WHERE n = 'abc'", "abc"),
        ("SELECT no_such_function(n) FROM {table}", "no_such_function"),
        ("SELECT n, count(*) FROM {table}", "GROUP BY"),
        ("", "empty"),
        ("   ;  ", ""),
        ("SELECT 1; SELECT 2", "one statement"),
        ("EXPLAIN DELETE FROM {table}", "EXPLAIN"),
    ],
)
def test_bad_statements_are_invalid_argument_with_the_reason(
    client: Client, table: str, statement: str, reason: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.sql(statement.format(table=table)).fetchall()
    assert reason.lower() in str(caught.value).lower()


def test_a_parameter_count_mismatch(client: Client, table: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.sql(f"SELECT n FROM {table} WHERE n = ? AND name = ?", [1])
    assert caught.value.field == "params"
    with pytest.raises(InvalidArgumentError):
        client.sql(f"SELECT n FROM {table}", [1])
    with pytest.raises(InvalidArgumentError):
        client.sql("SELECT ?", "not a sequence")


FORBIDDEN = [
    "COPY {table} TO '/tmp/shoal-copy.csv'",
    "COPY (SELECT 1) TO '/tmp/shoal-copy.parquet' (FORMAT parquet)",
    "ATTACH '/tmp/shoal-attach.db' AS other",
    "DETACH other",
    "PRAGMA database_list",
    "SET threads = 1",
    "SET enable_external_access = true",
    "RESET threads",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "SELECT * FROM read_json('/etc/hosts')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM parquet_scan('/tmp/x.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'data.csv'",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pragma_table_info('{table}')",
    "SELECT n FROM {table} WHERE n IN (SELECT * FROM read_csv('/etc/passwd'))",
    "WITH f AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM f",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m(a) AS a + 1",
    "CREATE SEQUENCE s",
    "EXPORT DATABASE '/tmp/shoal-export'",
    "IMPORT DATABASE '/tmp/shoal-export'",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "USE other",
    "SELECT * FROM other_db.main.t",
    "DESCRIBE {table}",
    "SUMMARIZE {table}",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_forbidden_statements_are_refused(client: Client, table: str, statement: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.sql(statement.format(table=table)).fetchall()
    assert len(str(caught.value)) > 10, "the refusal must say why"


def test_allowed_table_functions_still_work(client: Client) -> None:
    assert client.sql("SELECT count(*) FROM range(1000)").fetchall() == [(1000,)]
    assert client.sql("SELECT sum(x) FROM generate_series(1, 10) t(x)").fetchall() == [(55,)]
    assert client.sql("SELECT count(*) FROM range(300) a, range(300) b").fetchall() == [(90_000,)]


def test_a_column_named_like_a_forbidden_function_is_fine(client: Client, map_name: str) -> None:
    client.create_map(map_name, schema={"read_at": "int", "glob_pattern": "string"})
    client.put(map_name, "a", {"read_at": 5, "glob_pattern": "*.txt"})
    assert client.sql(f"SELECT read_at, upper(glob_pattern) FROM {map_name}").fetchall() == [
        (5, "*.TXT")
    ]
    assert client.sql(f"SELECT max(read_at) FROM {map_name}").fetchall() == [(5,)]


def test_a_slow_statement_times_out(client: Client) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        client.sql(SLOW_QUERY, timeout_s=0.5).fetchall()
    assert time.monotonic() - started < 10
    assert_serving(client)


def test_a_statement_that_times_out_while_streaming(client: Client) -> None:
    cursor = client.sql(SLOW_STREAM, batch_rows=1000, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        while cursor.fetchmany(10_000):
            pass
    assert time.monotonic() - started < 10
    assert_serving(client)


def test_an_error_in_the_middle_of_a_stream(client: Client) -> None:
    # DuckDB may meet the error before the first batch or after some: either way the
    # client gets the reason.
    with pytest.raises(InvalidArgumentError, match="boom"):
        client.sql(
            "SELECT CASE WHEN range > 60000 THEN error('boom at ' || range) ELSE range END "
            "FROM range(100000)",
            batch_rows=1000,
        ).fetchall()
    assert_serving(client)


def test_closing_a_cursor_mid_stream_cancels_the_statement(client: Client) -> None:
    # More cancelled statements than the server has DuckDB connections: if any kept
    # its connection, the query after them would wait for the statement timeout. The
    # query right after each close likely gets the same connection back from the pool,
    # which must not still hold the cancelled statement's open result.
    long_client = Client(client.targets, timeout_s=120)
    try:
        for _ in range(6):
            cursor = long_client.sql(SLOW_STREAM, batch_rows=100)
            assert len(cursor.fetchmany(250)) == 250
            cursor.close()
            assert long_client.sql("SELECT 7").fetchall() == [(7,)]
        assert_serving(client)
    finally:
        long_client.close()


def test_closing_a_cursor_interrupts_a_running_statement(client: Client) -> None:
    long_client = Client(client.targets, timeout_s=120)
    try:
        for _ in range(6):
            cursor = Cursor(long_client)
            outcome: list[BaseException] = []

            def run(cursor: Cursor = cursor, outcome: list[BaseException] = outcome) -> None:
                try:
                    cursor.execute(SLOW_QUERY)
                    cursor.fetchall()
                except ShoalError as error:
                    outcome.append(error)

            thread = threading.Thread(target=run)
            thread.start()
            # Close only once the call is on its way (a cursor closed before it sends
            # has nothing to cancel), and give DuckDB a moment to start computing.
            deadline = time.monotonic() + 10
            while cursor._stream is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            cursor.close()
            thread.join(10)
            assert not thread.is_alive()
            assert len(outcome) == 1
            assert isinstance(outcome[0], CancelledError)
        assert_serving(client)
    finally:
        long_client.close()


@pytest.fixture
def limited_server(fresh_server: ServerProcess) -> ServerProcess:
    fresh_server.extra_args = [
        "--sql-scan-rows-max",
        "100",
        "--sql-timeout-ms",
        "700",
        "--sql-result-bytes-max",
        "200000",
    ]
    return fresh_server.start()


def test_configured_limits(limited_server: ServerProcess) -> None:
    with Client(limited_server.target, timeout_s=30) as client:
        client.create_map("big", schema={"n": "int"})
        client.create_map("small", schema={"n": "int"})
        client.create_map("other", schema={"n": "int"})
        client.put_many("big", {f"k{i:03d}": {"n": i} for i in range(150)})
        client.put_many("small", {f"k{i:03d}": {"n": i} for i in range(60)})
        client.put_many("other", {f"k{i:03d}": {"n": i} for i in range(60)})

        # Scanned rows: one map over the limit, or two that are over it together.
        with pytest.raises(ResourceExhaustedError, match="100"):
            client.sql("SELECT count(*) FROM big")
        with pytest.raises(ResourceExhaustedError):
            client.sql("SELECT count(*) FROM small a JOIN other b ON a.n = b.n")
        assert client.sql("SELECT count(*) FROM small").fetchall() == [(60,)]
        # A point lookup scans nothing.
        assert client.sql("SELECT n FROM big WHERE __key = 'k149'").fetchall() == [(149,)]

        # The server's statement time limit holds even when the client allows more.
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.sql(SLOW_QUERY).fetchall()
        assert time.monotonic() - started < 10

        # Result size.
        with pytest.raises(ResourceExhaustedError):
            client.sql("SELECT range, range * 2 FROM range(1000000)").fetchall()
        assert client.sql("SELECT count(*) FROM range(1000000)").fetchall() == [(1_000_000,)]
        assert_serving(client)
