"""SQL text cut into statements as `shoal sql` reads a script or a terminal."""

from __future__ import annotations

import pytest

from shoal._sql_script import last_statement, split_statements


@pytest.mark.parametrize(
    ("text", "statements", "rest"),
    [
        ("SELECT 1; SELECT 2;\n", ["SELECT 1", "SELECT 2"], "\n"),
        ("SELECT 1;\nSELECT 2", ["SELECT 1"], "\nSELECT 2"),
        ("SELECT\n  1\n;", ["SELECT\n  1"], ""),
        ("SELECT 'a;b';", ["SELECT 'a;b'"], ""),
        ("SELECT 'it''s; fine';", ["SELECT 'it''s; fine'"], ""),
        ('SELECT 1 AS "a;b";', ['SELECT 1 AS "a;b"'], ""),
        ("SELECT 1 -- no; end here\n, 2;", ["SELECT 1 -- no; end here\n, 2"], ""),
        ("SELECT /* ; */ 1;", ["SELECT /* ; */ 1"], ""),
        (";;  ;\n", [], "\n"),
        ("-- a comment only;\n;", [], ""),
        ("/* only */;", [], ""),
    ],
)
def test_statements_end_at_their_semicolons(text: str, statements: list[str], rest: str) -> None:
    assert split_statements(text) == (statements, rest)


@pytest.mark.parametrize(
    ("unfinished", "closing"),
    [
        ("SELECT 'a;", "b'"),
        ('SELECT "a;', 'b"'),
        ("SELECT 1 /* ;", "*/"),
        ("SELECT 1 -- ;", ""),
        ("SELECT 'it''s;", "'"),
    ],
)
def test_an_open_string_or_comment_waits_for_more(unfinished: str, closing: str) -> None:
    assert split_statements(unfinished) == ([], unfinished)
    whole = f"{unfinished}\n{closing};"
    assert split_statements(whole) == ([whole[:-1].strip()], "")


def test_the_last_statement_may_lack_its_semicolon() -> None:
    assert last_statement("\nSELECT 3 AS e") == "SELECT 3 AS e"
    assert last_statement("  \n-- just a comment") is None
    assert last_statement("") is None
