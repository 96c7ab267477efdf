"""SQL text cut into statements at the semicolons that end them, as a SQL shell reads it.

A semicolon inside a string ('a;b'), a quoted name ("a;b") or a comment (-- a;b, /* a;b */)
does not end a statement; a quote is escaped by doubling it (''). Text after the last
semicolon is kept until more arrives: the rest of a statement typed over several lines.
"""

from __future__ import annotations

QUOTES = "'\""


def split_statements(text: str) -> tuple[list[str], str]:
    """The complete statements in ``text`` (without their semicolons, stripped, those
    holding only comments left out) and the unfinished rest, returned unchanged."""
    statements: list[str] = []
    start = 0
    has_content = False
    index = 0
    while index < len(text):
        character = text[index]
        if character in QUOTES:
            end = _closing_quote(text, index)
            if end < 0:
                break
            index = end + 1
            has_content = True
        elif text.startswith("--", index):
            end = text.find("\n", index)
            if end < 0:
                break
            index = end + 1
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                break
            index = end + 2
        elif character == ";":
            if has_content:
                statements.append(text[start:index].strip())
            start = index + 1
            has_content = False
            index += 1
        else:
            has_content = has_content or not character.isspace()
            index += 1
    return statements, text[start:]


def _closing_quote(text: str, opening: int) -> int:
    """Where the quote opened at ``opening`` closes, or -1 when it does not yet."""
    quote = text[opening]
    index = opening + 1
    while True:
        end = text.find(quote, index)
        if end < 0:
            return -1
        if text.startswith(quote * 2, end):
            index = end + 2
            continue
        return end


def last_statement(rest: str) -> str | None:
    """The statement left at the end of the input without a semicolon, if any."""
    statements, _ = split_statements(rest + "\n;")
    return statements[0] if statements else None
