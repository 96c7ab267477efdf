"""How production reaches its sandboxes: a Unix domain socket in the sandbox's private directory.

Every call production makes into a sandbox (a diff reading its maps, a replay passed
on, the replays a describe lists, the health check that makes it `ready`) goes through
`open_channel`. A sandbox serves users on its TCP port with production's TLS, and
production on `<data_dir>/sandboxes/<name>/control.sock`, plaintext: the directory is
0700, so only production's user reaches the socket, from this machine only, and no CA
or client certificate is needed. Tokens are still checked there (auth is the server's,
not the port's), so production passes the caller's own token on.

A socket's path is limited to 107 bytes, and a data directory's may be longer. Both
sides therefore name the socket through a descriptor of its directory,
`/proc/self/fd/N/control.sock`, which stays short whatever the directory's path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

SOCKET_ENV = "SHOAL_SANDBOX_SOCKET"
SOCKET_NAME = "control.sock"


def _short_target(path: Path) -> tuple[str, int]:
    """A `unix:` target for `path` through a descriptor of its directory (to close)."""
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    return f"unix:/proc/self/fd/{directory}/{path.name}", directory


@contextmanager
def open_channel(path: Path, options: Sequence[tuple[str, Any]] = ()) -> Iterator[grpc.Channel]:
    """A plaintext channel to the sandbox listening on the socket at `path`."""
    target, directory = _short_target(path)
    try:
        with grpc.insecure_channel(target, options=list(options)) as channel:
            yield channel
    finally:
        os.close(directory)


def listening_target(environment: dict[str, str] | None = None) -> str | None:
    """In a sandbox's process: the `unix:` target to serve production on, or None when
    this process is not a sandbox. The directory's descriptor stays open for the
    process's life (the server binds, and unlinks, through it)."""
    raw = (os.environ if environment is None else environment).get(SOCKET_ENV, "")
    if not raw:
        return None
    path = Path(raw)
    path.unlink(missing_ok=True)
    target, _ = _short_target(path)
    return target
