"""Schema patterns, compiled by RE2 so that matching takes time linear in the value.

Python's `re` backtracks: a pattern such as ``(a+)+$`` takes exponential time on
``"a" * 40 + "!"`` while holding the worker thread (and the GIL), which stalls the
whole server. RE2 guarantees linear-time matching and bounds the memory of a compiled
pattern, at the price of refusing what needs backtracking (backreferences,
lookaround); those patterns are refused when the schema is created.
"""

from __future__ import annotations

from typing import Protocol, cast

import re2

from grid.errors import InvalidArgument

# The memory one compiled pattern may take; a pattern whose program is larger is refused
# when the schema is made, so a schema cannot claim unbounded memory either.
PATTERN_MEMORY_BYTES_MAX = 8 * 1024 * 1024
PATTERN_CHARACTERS_MAX = 4096


class Pattern(Protocol):
    """The part of a compiled RE2 pattern that validation uses."""

    pattern: str

    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PATTERN_MEMORY_BYTES_MAX
    # RE2 would otherwise print every refused pattern to the server's stderr.
    options.log_errors = False
    return options


_OPTIONS = _options()


def compile_pattern(pattern: str, where: str) -> Pattern:
    """The compiled pattern, or InvalidArgument naming `where` when RE2 cannot run it."""
    if len(pattern) > PATTERN_CHARACTERS_MAX:
        raise InvalidArgument(
            f"{where}.pattern has {len(pattern)} characters; the limit is {PATTERN_CHARACTERS_MAX}",
            field=where,
        )
    try:
        return cast(Pattern, re2.compile(pattern, _OPTIONS))
    except re2.error as error:
        reason = error.args[0] if error.args else "unsupported"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidArgument(
            f"{where}.pattern is not a regular expression RE2 can run in linear time "
            f"({reason}); backreferences and lookaround are not supported",
            field=where,
        ) from None
