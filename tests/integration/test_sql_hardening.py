"""Grid SQL under bad input (issue 10): deep nesting, a client's time limit, an unknown
result format, syntax errors with their place, timestamps written as text, and error
messages that say what is wrong."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from shoal import Client, InvalidArgumentError
from shoal.v1 import query_pb2, query_pb2_grpc
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

SLOW_QUERY = "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"
SERVER_LIMIT_MS = 1500


def assert_serving(client: Client) -> None:
    assert client.sql("SELECT 41 + 1").fetchall() == [(42,)]


@pytest.fixture(scope="module")
def timed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of this module's own: a short SQL time limit, and a log to read."""
    server = ServerProcess(tmp_path_factory.mktemp("hardening") / "data")
    server.extra_args = ["--sql-timeout-ms", str(SERVER_LIMIT_MS)]
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def stub(shoal_server: str) -> Iterator[query_pb2_grpc.QueryStub]:
    with grpc.insecure_channel(shoal_server) as channel:
        yield query_pb2_grpc.QueryStub(channel)


def execute(stub: query_pb2_grpc.QueryStub, **fields: object) -> list[query_pb2.ExecuteResponse]:
    request = query_pb2.ExecuteRequest(**fields)  # type: ignore[arg-type]
    # The call's own deadline is far past the server's limit, so only the server ends it.
    return list(stub.Execute(request, timeout=25))


NESTED = [
    "SELECT " + "(" * 2000 + "1" + ")" * 2000,
    "SELECT " + "NOT " * 3000 + "true",
    "SELECT " + "abs(" * 500 + "1" + ")" * 500,
    "SELECT * FROM " + "(SELECT * FROM " * 300 + "range(1)" + ")" * 300,
    "SELECT " + "[" * 400 + "1" + "]" * 400,
    "SELECT 1 WHERE " + " AND ".join(["(1 = 1)"] * 20_000),
]


def test_deeply_nested_sql_is_invalid_argument_with_one_log_line(
    timed_server: ServerProcess,
) -> None:
    with Client(timed_server.target, timeout_s=30) as client:
        for statement in NESTED:
            with pytest.raises(InvalidArgumentError, match="nests too deeply"):
                client.sql(statement)
        assert_serving(client)
        # Nesting that real queries use still works, and long flat lists are not nesting.
        assert client.sql("SELECT " + "(" * 40 + "1" + ")" * 40).fetchall() == [(1,)]
        assert client.sql("SELECT " + " + ".join(["1"] * 500)).fetchall() == [(500,)]
        with pytest.raises(InvalidArgumentError, match="nests too deeply"):
            client.sql("SELECT " + " + ".join(["1"] * 3000))
        where = " AND ".join(["(1 = 1)"] * 500)
        assert client.sql(f"SELECT 1 WHERE {where}").fetchall() == [(1,)]
    assert timed_server.log_path is not None
    log = timed_server.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert "INTERNAL" not in log
    # One line each, where a traceback was thousands of lines.
    assert sum("nests too deeply" in line for line in log.splitlines()) == len(NESTED) + 1


def test_deeply_nested_parameters_are_invalid_argument(stub: query_pb2_grpc.QueryStub) -> None:
    deep = b"[" * 1000 + b"1" + b"]" * 1000
    with pytest.raises(grpc.RpcError) as caught:
        execute(stub, statement="SELECT ?", params_json=b"[" + deep + b"]")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "parameter 1 nests" in (caught.value.details() or "")
    shallow = b"[" * 10 + b"1" + b"]" * 10
    assert execute(stub, statement="SELECT ?", params_json=b"[" + shallow + b"]")


@pytest.mark.parametrize("timeout_ms", [1, 2, 5])
def test_a_tiny_client_timeout_cannot_switch_off_the_server_limit(
    timed_server: ServerProcess, timeout_ms: int
) -> None:
    with grpc.insecure_channel(timed_server.target) as channel:
        stub = query_pb2_grpc.QueryStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            execute(stub, statement=SLOW_QUERY, timeout_ms=timeout_ms)
        elapsed = time.monotonic() - started
    # The server ends it: its own status and message, well before the call's deadline.
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "time limit" in (caught.value.details() or "")
    assert elapsed < 30


def test_a_client_may_shorten_the_server_limit(timed_server: ServerProcess) -> None:
    with grpc.insecure_channel(timed_server.target) as channel:
        stub = query_pb2_grpc.QueryStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            execute(stub, statement=SLOW_QUERY, timeout_ms=200)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "200 ms" in (caught.value.details() or "")


def test_a_client_may_shorten_the_limit_of_a_write(timed_server: ServerProcess) -> None:
    with Client(timed_server.target, timeout_s=30) as client:
        client.sql("CREATE TABLE slow_writes (id VARCHAR PRIMARY KEY, n BIGINT)")
        client.sql("INSERT INTO slow_writes VALUES ('a', 1)")
    with grpc.insecure_channel(timed_server.target) as channel:
        stub = query_pb2_grpc.QueryStub(channel)
        for statement in (
            f"UPDATE slow_writes SET n = ({SLOW_QUERY})",
            f"INSERT INTO slow_writes VALUES ('b', ({SLOW_QUERY}))",
            f"DELETE FROM slow_writes WHERE n < ({SLOW_QUERY})",
        ):
            with pytest.raises(grpc.RpcError) as caught:
                execute(stub, statement=statement, timeout_ms=200)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "200 ms" in (caught.value.details() or ""), statement


@pytest.mark.parametrize("value", [3, 99, 2**31 - 1])
def test_an_unknown_result_format_is_refused(stub: query_pb2_grpc.QueryStub, value: int) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        execute(stub, statement="SELECT 1", format=value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in (caught.value.details() or "")
    # The known ones (and leaving it out) still work.
    for known in (query_pb2.RESULT_FORMAT_UNSPECIFIED, query_pb2.ARROW, query_pb2.JSON):
        assert execute(stub, statement="SELECT 1", format=known)[-1].summary.rows == 1


@pytest.mark.parametrize(
    ("statement", "place"),
    [
        ("SELECT 'abc", "line 1, column 8"),
        ("SELECT 1,\n  'abc", "line 2, column 3"),
        ('SELECT "abc FROM t', "line 1, column 8"),
        ("SELECT 1 /* never closed", "line 1, column 10"),
        ("EXPLAIN SELECT 1 +* 2", "line 1, column 21"),
        ("SELECT ?,\n  1 +* 2", "line 2, column 8"),
        ("  \n  SELECT 1 FROM WHERE", "line 2, column"),
    ],
)
def test_a_syntax_error_names_its_line_and_column(
    client: Client, statement: str, place: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="syntax error") as caught:
        client.sql(statement, [1] if "?" in statement else None)
    assert place in str(caught.value)


def test_a_timestamp_column_takes_a_date_written_as_text(client: Client, map_name: str) -> None:
    client.sql(f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY, at TIMESTAMP)")
    client.sql(f"INSERT INTO {map_name} VALUES ('a', '2026-11-01')")
    client.sql(f"INSERT INTO {map_name} VALUES ('b', '2026-11-01 12:30:00')")
    client.sql(f"UPDATE {map_name} SET at = '2026-11-02' WHERE id = 'b'")
    rows = client.sql(
        f"SELECT id, strftime(at, '%Y-%m-%d %H:%M') FROM {map_name} ORDER BY id"
    ).fetchall()
    assert rows == [("a", "2026-11-01 00:00"), ("b", "2026-11-02 00:00")]
    assert client.sql(f"SELECT id FROM {map_name} WHERE at >= '2026-11-02'").fetchall() == [("b",)]


def test_messages_name_what_is_wrong(client: Client, map_name: str) -> None:
    client.sql(f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY, a BIGINT, b BIGINT)")
    client.sql(f"INSERT INTO {map_name} VALUES ('x', 1, 2)")
    with pytest.raises(InvalidArgumentError) as caught:
        client.sql(f"UPDATE {map_name} SET __version = 99")
    assert "version" in str(caught.value) and "key" not in str(caught.value)
    with pytest.raises(InvalidArgumentError, match="'id' is the key"):
        client.sql(f"UPDATE {map_name} SET id = 'y'")
    for statement in (
        f"INSERT INTO {map_name} VALUES ('y', 1)",
        f"INSERT INTO {map_name} (id, a) VALUES ('y', 1, 2)",
        f"INSERT INTO {map_name} (id, a) SELECT 'y', 1, 2",
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            client.sql(statement)
        message = str(caught.value)
        assert "__values" not in message and "values for" in message, message
    assert client.sql(f"SELECT id, a, b FROM {map_name}").fetchall() == [("x", 1, 2)]
