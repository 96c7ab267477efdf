"""Locust, as the README runs it from the repository root, listens on loopback only.

The web UI (the README's command without --web-host) and a distributed master are
started, and the addresses their sockets listen on are read from the process (psutil,
which Locust depends on) once they listen.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from tests.support.server_process import REPO_ROOT

pytestmark = pytest.mark.integration

LISTEN_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def locust(*arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", *arguments],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def listening_addresses(process: subprocess.Popen[bytes], port: int) -> set[str]:
    """The addresses the process listens on at `port`, once it listens there."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "locust exited before listening"
        found = {
            connection.laddr.ip
            for connection in psutil.Process(process.pid).net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        }
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {LISTEN_TIMEOUT_S} s")


def test_the_web_ui_listens_on_loopback_by_default(shoal_server: str) -> None:
    port = free_port()
    with locust("--host", f"grpc://{shoal_server}", "--web-port", str(port)) as process:
        assert listening_addresses(process, port) == {"127.0.0.1"}


def test_a_master_listens_on_loopback_by_default(shoal_server: str) -> None:
    port = free_port()
    with locust(
        "--master", "--master-bind-port", str(port), "--host", f"grpc://{shoal_server}"
    ) as process:
        assert listening_addresses(process, port) == {"127.0.0.1"}


def test_the_web_ui_opens_to_every_interface_when_asked(shoal_server: str) -> None:
    port = free_port()
    with locust(
        "--host", f"grpc://{shoal_server}", "--web-port", str(port), "--web-host", "0.0.0.0"
    ) as process:
        assert listening_addresses(process, port) == {"0.0.0.0"}
