"""How the command line words a failure: `CODE: message`, on one line, for a person.

The CLI's commands and the SQL shell both print failures through `describe`, so a
coordinator that is not there reads the same everywhere:
`UNAVAILABLE: no coordinator at 127.0.0.1:50051 (is shoal serve running?)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shoal._errors import ShoalError, UnavailableError

if TYPE_CHECKING:
    from shoal._client import Client

# How long to try to reach the coordinator again before saying it is not there.
PROBE_TIMEOUT_S = 1.0


def no_coordinator(targets: Sequence[str]) -> str:
    return f"no coordinator at {', '.join(targets)} (is shoal serve running?)"


def describe(error: ShoalError, client: Client) -> str:
    message = error.message
    # UNAVAILABLE is gRPC's word for a lost or refused connection, and the server's for
    # a part of it that cannot serve (a failed log, stopped pipelines). Which one it is
    # shows in whether the coordinator still takes a connection; gRPC's own text about
    # sockets helps nobody.
    if isinstance(error, UnavailableError) and not client._connection.connect(PROBE_TIMEOUT_S):
        message = no_coordinator(client.targets)
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
