"""The serving model under hostile load: ports in use, unread streams, call limits, memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.server_process import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.integration


def test_a_second_server_on_a_port_in_use_says_so_in_one_line(
    fresh_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fresh_server.start()
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(fresh_server.port),
            "--data-dir",
            str(tmp_path_factory.mktemp("second") / "data"),
        ],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert second.stdout == ""
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert str(fresh_server.port) in lines[0]
    assert "already in use" in lines[0]
