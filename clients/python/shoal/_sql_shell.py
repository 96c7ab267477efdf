"""`shoal sql`: an interactive SQL shell, or one statement with `-e`.

The shell keeps history (~/.shoal_sql_history), reads statements ended by `;` (over
several lines, or several on one; see _sql_script), prints aligned tables with the row
count and time, and keeps going after an error. Ctrl-C cancels the running statement
(the server interrupts it) and keeps the shell; at the prompt it discards the statement
being typed; `\\q` or Ctrl-D quits. A script piped in runs to its end and exits 1 when
any statement failed.
`-e "..." --format table|csv|json` runs one statement for scripts.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shoal._cli_failure import describe
from shoal._errors import ShoalError
from shoal._progress import Progress
from shoal._sql_script import last_statement, split_statements

if TYPE_CHECKING:
    from shoal._client import Client

HISTORY_FILE = os.path.expanduser("~/.shoal_sql_history")
CELL_WIDTH_MAX = 60
# Without --timeout a statement may run as long as the server allows (its sql_timeout_ms,
# 30 s by default, always holds): the person at the shell ends it sooner with Ctrl-C.
STATEMENT_TIMEOUT_S = 24 * 3600.0


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


class StatementCancelled(Exception):
    """The person pressed Ctrl-C while a statement ran; the call was cancelled."""


def _cell(value: Any, width_max: int | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value)
    if width_max is None or len(text) <= width_max:
        return text
    return text[: width_max - 1] + "…"


def render(
    columns: list[str],
    rows: list[tuple[Any, ...]],
    output_format: str,
    *,
    cell_width_max: int | None = CELL_WIDTH_MAX,
) -> str:
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
    cells = [[_cell(value, cell_width_max) for value in row] for row in rows]
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
    return "\n".join(text.rstrip() for text in out)


def run_statement(
    client: Client,
    statement: str,
    parameters: list[Any],
    output_format: str,
    *,
    timeout_s: float = STATEMENT_TIMEOUT_S,
) -> str:
    """Runs one statement and renders its result. Ctrl-C (KeyboardInterrupt) cancels the
    call, which interrupts the statement on the server, and raises StatementCancelled."""
    from shoal._sql import Cursor

    started = time.perf_counter()
    cursor = Cursor(client)
    try:
        with Progress("running"):
            cursor.execute(statement, parameters or None, timeout_s=timeout_s)
            rows = cursor.fetchall()
    except KeyboardInterrupt:
        cursor.close()
        raise StatementCancelled from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    columns = [column[0] for column in cursor.description or []]
    if cursor.kind in ("insert", "update", "delete", "create", "drop"):
        count = max(cursor.rowcount, 0)
        if output_format == "json":
            return json.dumps({"kind": cursor.kind, "rowcount": count})
        text = f"{cursor.kind.upper()} {count}"
        return text if output_format != "table" else f"{text} ({elapsed_ms:.1f} ms)"
    # A plan's lines are read whole; other long values are cut to keep a table readable
    # on a terminal, and never when the output goes to a file or a pipe.
    cut = cursor.kind != "explain" and sys.stdout.isatty()
    body = render(columns, rows, output_format, cell_width_max=CELL_WIDTH_MAX if cut else None)
    if output_format == "table":
        return f"{body}\n({len(rows)} row{'s' * (len(rows) != 1)}, {elapsed_ms:.1f} ms)"
    return body


def command_sql(client: Client, arguments: argparse.Namespace) -> int:
    parameters = [_parameter(text) for text in arguments.param]
    output_format = arguments.format or ("json" if arguments.json else "table")
    timeout_s = arguments.timeout or STATEMENT_TIMEOUT_S
    if arguments.execute is not None:
        # Ctrl-C here cancels the statement and ends the command (KeyboardInterrupt is
        # answered by the CLI's main with the usual exit status 130).
        try:
            print(
                run_statement(
                    client, arguments.execute, parameters, output_format, timeout_s=timeout_s
                )
            )
        except StatementCancelled:
            raise KeyboardInterrupt from None
        return 0
    return shell(client, output_format, timeout_s)


def _statements(prompt: str, continuation: str) -> Iterator[str]:
    """The statements typed or piped in, in order, until the end of the input or a quit
    command. A line may hold several statements and a statement span several lines.
    Ctrl-C while typing discards what was typed and starts a new statement."""
    pending = ""
    while True:
        try:
            line = input(continuation if pending.strip() else prompt)
        except EOFError:
            last = last_statement(pending)
            if last is not None:
                yield last
            return
        except KeyboardInterrupt:
            print()
            pending = ""
            continue
        if not pending.strip() and line.strip().lower() in ("\\q", "quit", "exit"):
            return
        complete, pending = split_statements(f"{pending}{line}\n")
        yield from complete


def shell(client: Client, output_format: str, timeout_s: float = STATEMENT_TIMEOUT_S) -> int:
    try:
        import readline

        if os.path.exists(HISTORY_FILE):
            readline.read_history_file(HISTORY_FILE)
    except (ImportError, OSError):
        readline = None  # type: ignore[assignment]
    interactive = sys.stdin.isatty()
    prompt, continuation = ("shoal> ", "   ...> ") if interactive else ("", "")
    if interactive:
        print(
            f"shoal sql on {', '.join(client.targets)}: end statements with ;, "
            "Ctrl-C cancels one, \\q quits"
        )
    failures = 0
    try:
        for statement in _statements(prompt, continuation):
            try:
                result = run_statement(client, statement, [], output_format, timeout_s=timeout_s)
                print(result, flush=True)
            except StatementCancelled:
                failures += 1
                print("cancelled", file=sys.stderr, flush=True)
            except ShoalError as error:
                failures += 1
                print(f"error: {describe(error, client)}", file=sys.stderr, flush=True)
            except KeyboardInterrupt:
                # Ctrl-C between statements (as a result prints, say): the shell stays.
                print(file=sys.stderr, flush=True)
    finally:
        if readline is not None:
            try:
                readline.write_history_file(HISTORY_FILE)
            except OSError:
                pass
    # A person at the prompt saw each error; a script's caller learns of them this way.
    return 1 if failures and not interactive else 0
