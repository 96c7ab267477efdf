"""The fenced code blocks of a Markdown file, with the directives that say how to test them.

A block is run when its language is one of RUNNABLE. A directive is an HTML comment on the
line before the fence (invisible on GitHub):

    <!-- readme-test: skip: <reason> -->   the block cannot run here (the reason is required)
    <!-- readme-test: output -->           (a text block) what the previous block prints
    <!-- readme-test: eventually -->       the block observes something asynchronous (a
                                           pipeline's effects): it is run again until it
                                           passes or two minutes have passed; keep it read-only

A python block whose first line is a comment naming a file (`# pipelines/orders.py`) is
that file's content: it is written, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"sh", "bash", "shell"})
SQL = frozenset({"sql"})
RUNNABLE = PYTHON | SHELL | SQL

_FENCE = re.compile(r"^(```+)\s*([^\s`]*)")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_FILE_HEADER = re.compile(r"^#\s*([\w./-]+\.py)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, its text and the line (1-based) of its first code line."""

    language: str
    code: str
    first_line: int
    directive: str = ""

    @property
    def skip_reason(self) -> str | None:
        if not self.directive.startswith("skip"):
            return None
        reason = self.directive.removeprefix("skip").lstrip(":").strip()
        if not reason:
            raise ValueError(f"line {self.first_line - 1}: a skip directive needs a reason")
        return reason

    @property
    def is_expected_output(self) -> bool:
        return self.directive == "output"

    @property
    def eventually(self) -> bool:
        return self.directive == "eventually"

    @property
    def runnable(self) -> bool:
        return self.language in RUNNABLE and self.skip_reason is None

    @property
    def file_path(self) -> str | None:
        """The relative path a python block is the content of, or None."""
        if self.language not in PYTHON:
            return None
        first = self.code.split("\n", 1)[0]
        match = _FILE_HEADER.match(first)
        return match.group(1) if match else None


def blocks_of(path: Path) -> list[Block]:
    """Every fenced block of the file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        marker, language = fence.group(1), fence.group(2).lower()
        directive = _directive_before(lines, index)
        known = {"skip", "output", "eventually"}
        if directive and directive.split(":", 1)[0].strip() not in known:
            raise ValueError(f"line {index}: unknown readme-test directive {directive!r}")
        end = index + 1
        while end < len(lines) and not lines[end].startswith(marker):
            end += 1
        if end == len(lines):
            raise ValueError(f"line {index + 1}: the code block is never closed")
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(language, code, first_line=index + 2, directive=directive))
        index = end + 1
    return blocks


def _directive_before(lines: list[str], fence_index: int) -> str:
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    if before < 0:
        return ""
    match = _DIRECTIVE.match(lines[before].strip())
    return match.group(1) if match else ""


def split_sql(code: str, first_line: int) -> list[tuple[int, str]]:
    """The statements of a SQL script, each with the line it starts on; a `;` ends a
    statement outside quotes and `--` comments."""
    statements: list[tuple[int, str]] = []
    current: list[str] = []
    start_line = line = first_line
    quote = ""
    index = 0
    while index < len(code):
        char = code[index]
        if not quote and code.startswith("--", index):
            newline = code.find("\n", index)
            index = len(code) if newline < 0 else newline
            continue
        if not quote and char == ";":
            statements.append((start_line, "".join(current).strip()))
            current = []
        else:
            if quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
            if not char.isspace() and not "".join(current).strip():
                start_line = line
            current.append(char)
        line += char == "\n"
        index += 1
    if "".join(current).strip():
        raise ValueError(f"line {start_line}: a SQL statement does not end with ';'")
    return [(start, text) for start, text in statements if text]
