"""A coordinator with auth on for the security tests: the first admin's token is given
through the environment (so no test depends on reading it from the terminal)."""

from __future__ import annotations

from pathlib import Path

from tests.support.server_process import ServerProcess

BOOTSTRAP_TOKEN = "test-bootstrap-admin-token-0123456789abcdef"


def secured_server(data_dir: Path, *extra_args: str) -> ServerProcess:
    """Not started yet."""
    return ServerProcess(
        data_dir,
        extra_args=["--auth", "on", *extra_args],
        environment={"SHOAL_AUTH_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
    )
