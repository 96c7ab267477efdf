"""README.md's examples run in order, as written, against a real server: the README cannot drift.

A reader's session is played: a server as `make run` starts it (port free, data in
`./data` of a fresh folder), then every python, sh and sql block in README order. Python
blocks share one interpreter (tests/support/readme_driver.py); sql blocks run statement by
statement through the SDK; sh blocks run in bash with `set -euo pipefail`, `shoal` on the
PATH and SHOAL_TARGET naming the server. `127.0.0.1:50051` and `127.0.0.1:9092` in the
code stand for the test's server and Kafka broker. A `shoal serve ...` line replaces the
running server by that command (same port, same folder), as a reader stopping `make run`
to start it would. `# -> WANT` comments and `<!-- readme-test: output -->` blocks are
checked; `<!-- readme-test: skip: <reason> -->` before a block is the only way out (see
tests/support/readme_blocks.py). A failure names the README line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.readme_blocks import PYTHON, SHELL, SQL, Block, blocks_of
from tests.support.readme_driver import matches
from tests.support.server_process import REPO_ROOT, ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.slow]

README = REPO_ROOT / "README.md"
BIN = Path(sys.executable).parent
SHOAL = BIN / "shoal"
README_TARGET = "127.0.0.1:50051"
README_KAFKA = "127.0.0.1:9092"
BLOCK_TIMEOUT_S = 180.0
EVENTUALLY_S = 120.0
_SERVE_LINE = re.compile(r"^\s*shoal\s+serve(\s|$)")
_SHELL_WANT = re.compile(r"^(?P<command>.*?)\s+# -> (?P<want>.*)$")
_SERVER_FLAGS_WITH_VALUE = {"--host", "--port", "--data-dir"}


@dataclass
class Outcome:
    ok: bool
    stdout: str = ""
    line: int = 0
    error: str = ""


class Reader:
    """One reader's folder, server, Python session and shell environment."""

    def __init__(self, folder: Path, kafka: str | None) -> None:
        self.folder = folder
        self.kafka = kafka
        self.server = self._server([], port=0)
        self.server.start()
        self.environment = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SHOAL_TARGET": self.server.target,
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.driver = subprocess.Popen(
            [sys.executable, "-m", "tests.support.readme_driver"],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self.environment,
        )

    def _server(self, readme_arguments: list[str], port: int) -> ServerProcess:
        kept, data_dir = _server_arguments(readme_arguments)
        return ServerProcess(
            self.folder / data_dir,
            extra_args=["--fsync", "batch", *kept],
            port=port,
            program=[str(SHOAL), "serve"],
            cwd=self.folder,
        )

    def close(self) -> None:
        if self.driver.stdin is not None:
            self.driver.stdin.close()
        try:
            self.driver.wait(30)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait(30)
        if self.driver.stdout is not None:
            self.driver.stdout.close()
        self.server.kill()

    def substituted(self, code: str) -> str:
        code = code.replace(README_TARGET, self.server.target)
        if self.kafka is not None:
            code = code.replace(README_KAFKA, self.kafka)
        return code

    def run(self, block: Block) -> Outcome:
        path = block.file_path
        if path is not None:
            file = self.folder / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(block.code, encoding="utf-8")
            return Outcome(ok=True)
        code = self.substituted(block.code)
        if block.language in SHELL:
            return self._run_shell(code, block.first_line)
        kind = "python" if block.language in PYTHON else "sql"
        assert block.language in PYTHON | SQL
        return self._ask_driver(kind, code, block.first_line)

    def _ask_driver(self, kind: str, code: str, first_line: int) -> Outcome:
        assert self.driver.stdin is not None and self.driver.stdout is not None
        request = {"kind": kind, "code": code, "first_line": first_line}
        self.driver.stdin.write(json.dumps({**request, "target": self.server.target}) + "\n")
        self.driver.stdin.flush()
        answer_line = self.driver.stdout.readline()
        if not answer_line:
            return Outcome(ok=False, line=first_line, error="the Python session died")
        answer: dict[str, Any] = json.loads(answer_line)
        return Outcome(
            ok=answer["ok"],
            stdout=answer["stdout"],
            line=answer.get("line", 0),
            error=answer.get("error", ""),
        )

    def _run_shell(self, code: str, first_line: int) -> Outcome:
        stdout: list[str] = []
        for segment_line, segment in _segments(code, first_line):
            if _SERVE_LINE.match(segment):
                outcome = self._replace_server(segment, segment_line)
            else:
                outcome = self._run_script(segment, segment_line)
            stdout.append(outcome.stdout)
            if not outcome.ok:
                return Outcome(False, "".join(stdout), outcome.line, outcome.error)
        return Outcome(ok=True, stdout="".join(stdout))

    def _replace_server(self, line_text: str, line: int) -> Outcome:
        arguments = shlex.split(line_text, comments=True)[2:]
        self.server.stop()
        self.server = self._server(arguments, port=self.server.port)
        try:
            self.server.start()
        except RuntimeError as error:
            return Outcome(ok=False, line=line, error=str(error))
        return Outcome(ok=True)

    def _run_script(self, script: str, first_line: int) -> Outcome:
        outputs = self.folder / ".readme-outputs"
        outputs.mkdir(exist_ok=True)
        lines = script.split("\n")
        wanted: dict[int, str] = {}
        for index, text in enumerate(lines):
            match = _SHELL_WANT.match(text)
            if match:
                line = first_line + index
                wanted[line] = match.group("want")
                lines[index] = f'{{ {match.group("command")} ; }} | tee "{outputs}/{line}"'
        # Line 1 is the preamble, so the script's line N is README line first_line + N - 2.
        preamble = (
            "set -Eeuo pipefail; "
            f"trap 'echo \"README_LINE=$((LINENO + {first_line - 2}))\" >&2' ERR"
        )
        try:
            done = subprocess.run(
                ["bash", "-c", "\n".join([preamble, *lines])],
                cwd=self.folder,
                env=self.environment,
                stdin=subprocess.DEVNULL,  # an interactive command ends at once, as in CI
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(False, "", first_line, f"still running after {BLOCK_TIMEOUT_S} s")
        if done.returncode != 0:
            found = re.findall(r"README_LINE=(\d+)", done.stderr)
            line = int(found[0]) if found else first_line
            stderr = re.sub(r"README_LINE=\d+\n?", "", done.stderr)
            return Outcome(False, done.stdout, line, f"exit {done.returncode}\n{stderr}")
        for line, want in wanted.items():
            got = (outputs / str(line)).read_text(encoding="utf-8")
            if not matches(want, got):
                error = f"got      {got.rstrip()}\nthe README says -> {want}"
                return Outcome(False, done.stdout, line, error)
        return Outcome(ok=True, stdout=done.stdout)


def _server_arguments(readme_arguments: list[str]) -> tuple[list[str], str]:
    """The README's `shoal serve` arguments less the address and data folder, which the
    test sets (the port stays the reader's server's), and that data folder."""
    kept: list[str] = []
    data_dir = "data"
    iterator = iter(readme_arguments)
    for argument in iterator:
        name, equals, value = argument.partition("=")
        if name in _SERVER_FLAGS_WITH_VALUE:
            value = value if equals else next(iterator)
            if name == "--data-dir":
                data_dir = value
            continue
        kept.append(argument)
    return kept, data_dir


def _segments(code: str, first_line: int) -> Iterator[tuple[int, str]]:
    """The script cut around each `shoal serve` line: (README line, text) in order."""
    current: list[str] = []
    current_line = first_line
    for index, text in enumerate(code.rstrip("\n").split("\n")):
        if _SERVE_LINE.match(text):
            if current:
                yield current_line, "\n".join(current)
            yield first_line + index, text
            current = []
            current_line = first_line + index + 1
        else:
            current.append(text)
    if current:
        yield current_line, "\n".join(current)


def _where(block: Block, line: int) -> str:
    return f"README.md:{line} (in the {block.language} block at line {block.first_line})"


def _expected_output_after(blocks: list[Block], index: int) -> str | None:
    following = blocks[index + 1] if index + 1 < len(blocks) else None
    if following is not None and following.is_expected_output:
        return following.code.rstrip("\n")
    return None


def _check(reader: Reader, block: Block, expected: str | None) -> Outcome:
    """Runs the block; a mismatch with its output block is a failure of the block."""
    outcome = reader.run(block)
    if outcome.ok and expected is not None and not matches(expected, outcome.stdout):
        error = f"printed\n{outcome.stdout}\nbut the output block after it says\n{expected}"
        return Outcome(False, outcome.stdout, block.first_line, error)
    return outcome


# The whole README in one walk-through: about 30 CLI processes and three server starts,
# which take a few minutes on a saturated two-core machine.
@pytest.mark.timeout(900)
def test_readme_examples_run_in_order(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    blocks = blocks_of(README)
    unnamed = [block.first_line - 1 for block in blocks if not block.language]
    assert not unnamed, f"README.md lines {unnamed}: say the block's language (sh, python...)"
    runnable = [block for block in blocks if block.runnable]
    assert runnable, "README.md has no runnable block"
    needs_kafka = any(README_KAFKA in block.code for block in runnable)
    kafka = str(request.getfixturevalue("kafka_bootstrap")) if needs_kafka else None
    folder = tmp_path / "reader"
    folder.mkdir()
    reader = Reader(folder, kafka)
    try:
        for index, block in enumerate(blocks):
            if block.is_expected_output:
                ran = blocks[index - 1] if index else None
                assert ran is not None and ran.runnable, (
                    f"README.md:{block.first_line}: an output block must follow a block that runs"
                )
                continue
            if not block.runnable:
                continue
            expected = _expected_output_after(blocks, index)
            outcome = _check(reader, block, expected)
            deadline = time.monotonic() + EVENTUALLY_S
            while block.eventually and not outcome.ok and time.monotonic() < deadline:
                time.sleep(0.5)
                outcome = _check(reader, block, expected)
            if not outcome.ok:
                pytest.fail(
                    f"{_where(block, outcome.line)} failed:\n{outcome.error}\n"
                    f"output so far:\n{outcome.stdout}\nserver log:\n{reader.server.log_tail(10)}",
                    pytrace=False,
                )
    finally:
        reader.close()
