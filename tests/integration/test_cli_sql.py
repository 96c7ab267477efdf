"""`shoal sql` run as a subprocess against a real server: -e in each format, piped
scripts, --json, and a coordinator that goes away. (On a terminal: test_cli_sql_shell.)"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.test_cli import (
    CLI_TIMEOUT_S,
    SHOAL,
    assert_one_line_failure,
    ok,
    run_cli,
)
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration


def test_sql_one_statement_in_each_format(shoal_server: str, map_name: str) -> None:
    ok(
        "sql",
        "-e",
        f"CREATE TABLE {map_name} (id VARCHAR PRIMARY KEY, region VARCHAR, amount DOUBLE)",
        target=shoal_server,
    )
    inserted = ok(
        "sql",
        "-e",
        f"INSERT INTO {map_name} VALUES (?, ?, ?), ('b', 'us', 20)",
        "-p",
        "a",
        "-p",
        "eu",
        "-p",
        "1.5",
        target=shoal_server,
    )
    assert inserted.startswith("INSERT 2")
    query = f"SELECT id, amount FROM {map_name} ORDER BY id"
    table = ok("sql", "-e", query, target=shoal_server)
    assert table.splitlines()[0].split() == ["id", "|", "amount"]
    assert "(2 rows," in table
    assert ok("sql", "-e", query, "--format", "csv", target=shoal_server).splitlines() == [
        "id,amount",
        "a,1.5",
        "b,20.0",
    ]
    rows = [
        json.loads(line)
        for line in ok("sql", "-e", query, "--format", "json", target=shoal_server).splitlines()
    ]
    assert rows == [{"id": "a", "amount": 1.5}, {"id": "b", "amount": 20.0}]
    failed = run_cli("sql", "-e", f"SELEC 1 FROM {map_name}", target=shoal_server)
    assert "line 1, column" in assert_one_line_failure(failed, "INVALID_ARGUMENT")


def test_sql_shell_reads_statements_over_lines_and_survives_errors(
    shoal_server: str, map_name: str
) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    ok("put", map_name, "k", '{"n": 7}', target=shoal_server)
    script = f"SELECT count(*) AS n\nFROM {map_name};\nSELEC oops;\nSELECT 40 + 2 AS answer;\n"
    done = subprocess.run(
        [str(SHOAL), "--target", shoal_server, "sql"],
        input=script,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    # The script runs to its end, and its caller learns that a statement failed.
    assert done.returncode == 1, done.stderr
    assert "syntax error" in done.stderr
    assert "answer" in done.stdout and "42" in done.stdout
    assert "(1 row," in done.stdout
    passing = subprocess.run(
        [str(SHOAL), "--target", shoal_server, "sql"],
        input="SELECT 1 AS one;\nSELECT 2 AS two;\n",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert passing.returncode == 0, passing.stderr
    assert passing.stderr == ""


def test_sql_script_with_several_statements_on_a_line(shoal_server: str) -> None:
    # As psql and sqlite3 read a script: semicolons in strings and comments do not count.
    script = (
        "SELECT 1 AS a; SELECT ';' AS b; -- a comment; still a comment\n"
        "SELECT 'it''s' AS c /* ; */\n, 2 AS d;\n;;\nSELECT 3 AS e"
    )
    done = subprocess.run(
        [str(SHOAL), "--target", shoal_server, "sql", "--format", "csv"],
        input=script,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["a", "1", "b", ";", "c,d", "it's,2", "e", "3"]


def test_json_is_honoured_by_sql(shoal_server: str, map_name: str) -> None:
    table = f"{map_name}_t"
    created = ok(
        "--json",
        "sql",
        "-e",
        f"CREATE TABLE {table} (id VARCHAR PRIMARY KEY, n INT)",
        target=shoal_server,
    )
    assert json.loads(created)["kind"] == "create"
    inserted = ok(
        "sql", "--json", "-e", f"INSERT INTO {table} VALUES ('a', 1), ('b', 2)", target=shoal_server
    )
    assert json.loads(inserted) == {"kind": "insert", "rowcount": 2}
    query = f"SELECT id, n FROM {table} ORDER BY id"
    for arguments in (["--json", "sql", "-e", query], ["sql", "-e", query, "--json"]):
        rows = [json.loads(line) for line in ok(*arguments, target=shoal_server).splitlines()]
        assert rows == [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
    # An explicit --format still wins.
    assert (
        ok("--json", "sql", "-e", query, "--format", "csv", target=shoal_server).splitlines()[0]
        == "id,n"
    )


def test_a_reader_that_goes_away_ends_the_command_quietly(shoal_server: str) -> None:
    # `shoal sql -e ... | head -1`: the pipe closes while rows are still printed.
    process = subprocess.Popen(
        [
            str(SHOAL),
            "--target",
            shoal_server,
            "sql",
            "-e",
            "SELECT * FROM range(200000)",
            "--format",
            "csv",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == "range\n"
    process.stdout.close()
    errors = process.stderr.read()
    process.wait(timeout=CLI_TIMEOUT_S)
    process.stderr.close()
    assert errors == ""


def test_the_shell_says_when_the_coordinator_goes_away(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    shell = subprocess.Popen(
        [str(SHOAL), "--target", fresh_server.target, "sql"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert shell.stdin is not None and shell.stdout is not None
    try:
        shell.stdin.write("SELECT 40 + 2 AS answer;\n")
        shell.stdin.flush()
        assert shell.stdout.readline().split() == ["answer"]
        fresh_server.kill()
        shell.stdin.write("SELECT 1 AS one;\n")
        shell.stdin.close()
        shell.wait(timeout=CLI_TIMEOUT_S)
        errors = shell.stderr.read() if shell.stderr else ""
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        for stream in (shell.stdout, shell.stderr):
            if stream is not None:
                stream.close()
    assert shell.returncode == 1
    assert errors == (
        f"error: UNAVAILABLE: no coordinator at {fresh_server.target} (is shoal serve running?)\n"
    )
