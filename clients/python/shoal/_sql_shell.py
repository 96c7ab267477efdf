"""`shoal sql`: an interactive SQL shell, or one statement with `-e`.

The shell keeps history (~/.shoal_sql_history), reads a statement over several lines
until a `;`, prints aligned tables with the row count and time, and keeps going after
an error. `-e "..." --format table|csv|json` runs one statement for scripts.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shoal._errors import ShoalError

if TYPE_CHECKING:
    from shoal._client import Client

HISTORY_FILE = os.path.expanduser("~/.shoal_sql_history")
CELL_WIDTH_MAX = 60


def add_parser(commands: Any) -> None:
    sql = commands.add_parser("sql", help="an SQL shell, or one statement with -e")
    sql.add_argument("-e", "--execute", help="run this statement and exit")
    sql.add_argument(
        "-p", "--param", action="append", default=[], help="a parameter for ? (JSON or text)"
    )
    sql.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        help="table for people (the default), csv, or json: one object a row (as --json)",
    )
    sql.set_defaults(handler=command_sql)


def _parameter(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value)
    return text if len(text) <= CELL_WIDTH_MAX else text[: CELL_WIDTH_MAX - 1] + "…"


def render(columns: list[str], rows: list[tuple[Any, ...]], output_format: str) -> str:
    if output_format == "json":
        return "\n".join(
            json.dumps(dict(zip(columns, row, strict=True)), default=str, ensure_ascii=False)
            for row in rows
        )
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
        return buffer.getvalue().rstrip("\n")
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max([len(name), *(len(row[index]) for row in cells)]) for index, name in enumerate(columns)
    ]
    numeric = [
        all(isinstance(row[index], int | float) or row[index] is None for row in rows) and rows
        for index in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        return " | ".join(
            value.rjust(width) if numeric[index] else value.ljust(width)
            for index, (value, width) in enumerate(zip(values, widths, strict=True))
        )

    out = [line(columns), "-+-".join("-" * width for width in widths)]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def run_statement(client: Client, statement: str, parameters: list[Any], output_format: str) -> str:
    started = time.perf_counter()
    cursor = client.sql(statement, parameters or None)
    rows = cursor.fetchall()
    elapsed_ms = (time.perf_counter() - started) * 1000
    columns = [column[0] for column in cursor.description or []]
    if cursor.kind in ("insert", "update", "delete", "create", "drop"):
        count = max(cursor.rowcount, 0)
        if output_format == "json":
            return json.dumps({"kind": cursor.kind, "rowcount": count})
        text = f"{cursor.kind.upper()} {count}"
        return text if output_format != "table" else f"{text} ({elapsed_ms:.1f} ms)"
    body = render(columns, rows, output_format)
    if output_format == "table":
        return f"{body}\n({len(rows)} row{'s' * (len(rows) != 1)}, {elapsed_ms:.1f} ms)"
    return body


def command_sql(client: Client, arguments: argparse.Namespace) -> int:
    parameters = [_parameter(text) for text in arguments.param]
    output_format = arguments.format or ("json" if arguments.json else "table")
    if arguments.execute is not None:
        print(run_statement(client, arguments.execute, parameters, output_format))
        return 0
    return shell(client, output_format)


def _read_statement(prompt: str, continuation: str) -> str | None:
    lines: list[str] = []
    while True:
        try:
            line = input(continuation if lines else prompt)
        except EOFError:
            return None if not lines else " ".join(lines)
        if not lines and line.strip().lower() in ("\\q", "quit", "exit"):
            return None
        lines.append(line)
        if line.rstrip().endswith(";"):
            return "\n".join(lines)


def shell(client: Client, output_format: str, stdin: Sequence[str] | None = None) -> int:
    try:
        import readline

        if os.path.exists(HISTORY_FILE):
            readline.read_history_file(HISTORY_FILE)
    except (ImportError, OSError):
        readline = None  # type: ignore[assignment]
    interactive = sys.stdin.isatty()
    prompt, continuation = ("shoal> ", "   ...> ") if interactive else ("", "")
    if interactive:
        print(f"shoal sql on {', '.join(client.targets)}: end statements with ; and quit with \\q")
    try:
        while True:
            statement = _read_statement(prompt, continuation)
            if statement is None:
                break
            if not statement.strip().rstrip(";").strip():
                continue
            try:
                print(run_statement(client, statement, [], output_format))
            except ShoalError as error:
                where = f" (field {error.field})" if error.field else ""
                print(f"error: {error.code}: {error.message}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print()
    finally:
        if readline is not None:
            try:
                readline.write_history_file(HISTORY_FILE)
            except OSError:
                pass
    return 0
