"""How the command line words a failure: `CODE: message`, on one line, for a person.

The CLI's commands and the SQL shell both print failures through `describe`, so a
coordinator that is not there reads the same everywhere:
`UNAVAILABLE: no coordinator at 127.0.0.1:50051 (is shoal serve running?)`.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal._errors import ShoalError, UnavailableError

# What gRPC says when no connection could be made or the one in use was lost.
_CONNECTION_LOST = ("failed to connect", "Socket closed", "Connection reset", "Broken pipe")


def no_coordinator(targets: Sequence[str]) -> str:
    return f"no coordinator at {', '.join(targets)} (is shoal serve running?)"


def describe(error: ShoalError, targets: Sequence[str]) -> str:
    message = error.message
    if isinstance(error, UnavailableError) and any(
        phrase in message for phrase in _CONNECTION_LOST
    ):
        message = no_coordinator(targets)
    where = f" (field {shown(error.field)})" if error.field else ""
    return f"{error.code}: {shown(message)}{where}"


def shown(text: str) -> str:
    """``text`` on one line: control characters (a newline in a key the message quotes)
    are written as escapes, as Python writes them (``\\n``); other characters stay."""
    if text.isprintable():
        return text
    return "".join(
        character if character.isprintable() else repr(character)[1:-1] for character in text
    )
