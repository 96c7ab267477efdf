"""Runs a README's Python and SQL blocks in one interpreter, as a reader pasting them in order.

Started as a subprocess by tests/integration/test_readme_examples.py: it reads one JSON
request a line ({"kind": "python"|"sql", "code", "first_line", "target"}) and answers one
JSON line ({"ok", "line", "error", "stdout"}). Python blocks share one namespace. A
statement whose last line ends in a comment `# -> WANT` must show WANT: what it printed,
else the repr of its value, else (when it raised) `ExceptionName: message`; `...` in WANT
matches anything, and runs of spaces compare equal (doctest's ELLIPSIS and
NORMALIZE_WHITESPACE). Tracebacks name README.md and its lines.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import io
import json
import os
import sys
import tokenize
import traceback
from pathlib import Path
from typing import Any

# Code compiles under the README's own path, so a traceback shows its lines.
README = str(Path(__file__).resolve().parents[2] / "README.md")
_WANT_PREFIX = "# ->"
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class _Mismatch(Exception):
    pass


def wanted_by_line(code: str, first_line: int) -> dict[int, str]:
    """README line -> WANT of every `# -> WANT` comment in the block."""
    wanted: dict[int, str] = {}
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT and token.string.startswith(_WANT_PREFIX):
            wanted[first_line + token.start[0] - 1] = token.string[len(_WANT_PREFIX) :].strip()
    return wanted


def matches(want: str, got: str) -> bool:
    return _CHECKER.check_output(want + "\n", got.rstrip("\n") + "\n", _FLAGS)


class PythonSession:
    """One namespace shared by every block, like one interactive session."""

    def __init__(self, target: str) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__readme__"}
        self.target = target
        self._sql_client: Any = None

    def run_python(self, code: str, first_line: int) -> dict[str, Any]:
        captured = io.StringIO()
        try:
            tree = ast.parse(code, filename=README)
        except SyntaxError as error:
            return _failure(
                first_line + (error.lineno or 1) - 1, f"SyntaxError: {error.msg}", captured
            )
        ast.increment_lineno(tree, first_line - 1)
        wanted = wanted_by_line(code, first_line)
        checked = {statement.end_lineno for statement in tree.body}
        for line in sorted(set(wanted) - checked):
            error = "a `# ->` comment must end a top-level statement (it would not be checked here)"
            return _failure(line, error, captured)
        line = first_line
        try:
            for statement in tree.body:
                line = statement.lineno
                self._run_statement(statement, wanted.get(statement.end_lineno or line), captured)
        except _Mismatch as mismatch:
            return _failure(line, str(mismatch), captured)
        except BaseException as error:
            return _failure(_error_line(error, line), _traceback_of(error), captured)
        return {"ok": True, "stdout": captured.getvalue()}

    def _run_statement(self, statement: ast.stmt, want: str | None, captured: io.StringIO) -> None:
        printed = io.StringIO()
        value: Any = None
        raised: BaseException | None = None
        with contextlib.redirect_stdout(printed):
            try:
                if isinstance(statement, ast.Expr):
                    expression = ast.Expression(statement.value)
                    value = eval(compile(expression, README, "eval"), self.namespace)
                else:
                    module = ast.Module([statement], type_ignores=[])
                    exec(compile(module, README, "exec"), self.namespace)
            except Exception as error:
                raised = error
        captured.write(printed.getvalue())
        if want is None:
            if raised is not None:
                raise raised
            return
        if raised is not None:
            got = f"{type(raised).__name__}: {raised}"
            if not matches(want, got):
                raise _Mismatch(f"raised {got}\nthe README says -> {want}") from raised
            return
        got = printed.getvalue() if printed.getvalue() else repr(value)
        if not matches(want, got):
            raise _Mismatch(f"got      {got.rstrip()}\nthe README says -> {want}")

    def run_sql(self, code: str, first_line: int) -> dict[str, Any]:
        from shoal import Client
        from tests.support.readme_blocks import split_sql

        if self._sql_client is None:
            self._sql_client = Client(self.target)
        captured = io.StringIO()
        for line, statement in split_sql(code, first_line):
            try:
                rows = self._sql_client.sql(statement).fetchall()
            except Exception as error:
                return _failure(line, f"{type(error).__name__}: {error}\n{statement}", captured)
            for row in rows:
                captured.write(" | ".join(str(cell) for cell in row) + "\n")
        return {"ok": True, "stdout": captured.getvalue()}


def _error_line(error: BaseException, default: int) -> int:
    """The last README.md line of the traceback (the statement's own, or a function's)."""
    line = default
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == README and frame.lineno is not None:
            line = frame.lineno
    return line


def _traceback_of(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    in_readme = [frame for frame in frames if frame.filename == README]
    listed = "".join(traceback.format_list(in_readme or frames[-6:]))
    return listed + "".join(traceback.format_exception_only(error))


def _failure(line: int, error: str, captured: io.StringIO) -> dict[str, Any]:
    return {"ok": False, "line": line, "error": error, "stdout": captured.getvalue()}


def main() -> int:
    # The protocol keeps the real standard output; README code prints into a buffer.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    session: PythonSession | None = None
    for request_line in sys.stdin:
        request = json.loads(request_line)
        if session is None:
            session = PythonSession(request["target"])
        if request["kind"] == "python":
            answer = session.run_python(request["code"], request["first_line"])
        else:
            answer = session.run_sql(request["code"], request["first_line"])
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
