"""The README test's reading of Markdown: blocks, directives, SQL statements, `# ->` comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.readme_blocks import blocks_of, split_sql
from tests.support.readme_driver import PythonSession, matches, wanted_by_line

MARKDOWN = """# Title

```python
x = 1
x + 1   # -> 2
```

<!-- readme-test: skip: needs Docker -->
```sh
docker compose up
```

<!-- readme-test: output -->
```text
hello
```

```python
# pipelines/orders.py
print("a module")
```

<!-- readme-test: eventually -->
```bash
shoal get m k
```
"""


def test_blocks_carry_their_language_first_line_and_directive(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(MARKDOWN)
    blocks = blocks_of(readme)
    assert [block.language for block in blocks] == ["python", "sh", "text", "python", "bash"]
    assert blocks[0].first_line == 4
    assert blocks[0].code == "x = 1\nx + 1   # -> 2\n"
    assert blocks[0].runnable
    assert blocks[1].skip_reason == "needs Docker"
    assert not blocks[1].runnable
    assert blocks[2].is_expected_output and not blocks[2].runnable
    assert blocks[3].file_path == "pipelines/orders.py"
    assert blocks[0].file_path is None
    assert blocks[4].eventually and blocks[4].runnable


@pytest.mark.parametrize(
    ("directive", "message"),
    [("skip", "needs a reason"), ("run twice", "unknown readme-test directive")],
)
def test_bad_directives_are_refused(tmp_path: Path, directive: str, message: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- readme-test: {directive} -->\n```sh\ntrue\n```\n")
    with pytest.raises(ValueError, match=message):
        [block.skip_reason for block in blocks_of(readme)]


def test_an_unclosed_block_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("text\n```python\nx = 1\n")
    with pytest.raises(ValueError, match="line 2: the code block is never closed"):
        blocks_of(readme)


def test_sql_statements_split_on_semicolons_outside_quotes_and_comments() -> None:
    script = (
        "CREATE TABLE t (a VARCHAR);   -- one; transaction\n"
        "INSERT INTO t VALUES ('x;y'),\n"
        "                     ('z');\n"
        "\n"
        "SELECT * FROM t;\n"
    )
    assert split_sql(script, 10) == [
        (10, "CREATE TABLE t (a VARCHAR)"),
        (11, "INSERT INTO t VALUES ('x;y'),\n                     ('z')"),
        (14, "SELECT * FROM t"),
    ]
    with pytest.raises(ValueError, match="line 1: a SQL statement does not end"):
        split_sql("SELECT 1", 1)


def test_wanted_values_are_read_from_arrow_comments_by_readme_line() -> None:
    code = 'c.get("m", "k")   # -> {\'a\': 1}\nc.put(1)   # a plain comment\nx  # -> 3\n'
    assert wanted_by_line(code, 50) == {50: "{'a': 1}", 52: "3"}


def test_matching_allows_ellipsis_and_whitespace_runs() -> None:
    assert matches("{'alice': {...}}", "{'alice': {'owner': 'Alice'}}")
    assert matches("(version ...)", "(version 15)\n")
    assert matches('{ "total": 30 }', '{\n  "total": 30\n}')
    assert not matches("{'alice': {...}}", "{'bob': {'owner': 'Bob'}}")
    assert not matches("True", "False")


def test_a_python_session_checks_values_prints_and_errors_by_readme_line() -> None:
    session = PythonSession("127.0.0.1:1")
    assert session.run_python("x = 2\nx * 2   # -> 4\nprint('hi', x)   # -> hi 2\n", 10)["ok"]
    assert session.run_python("int('a')   # -> ValueError: invalid literal ...\n", 20)["ok"]
    assert session.run_python("x + 1   # -> 3\n", 30) == {"ok": True, "stdout": ""}

    wrong = session.run_python("y = x\ny   # -> 5\n", 40)
    assert (wrong["ok"], wrong["line"]) == (False, 41)
    assert "got      2" in wrong["error"] and "-> 5" in wrong["error"]

    raised = session.run_python("def f():\n    raise KeyError('k')\n\nf()\n", 50)
    assert (raised["ok"], raised["line"]) == (False, 51)
    assert "KeyError: 'k'" in raised["error"]


def test_a_python_session_refuses_unchecked_arrows_and_reports_syntax_errors() -> None:
    session = PythonSession("127.0.0.1:1")
    nested = session.run_python("if True:\n    1 + 1   # -> 2\n    pass\n", 10)
    assert (nested["ok"], nested["line"]) == (False, 11)
    assert "must end a top-level statement" in nested["error"]
    broken = session.run_python("x = 1\ny = (\n", 20)
    assert (broken["ok"], broken["line"]) == (False, 21)
    assert broken["error"].startswith("SyntaxError")
