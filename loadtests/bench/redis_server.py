"""A private redis-server for one benchmark run: its own free port, no persistence.

The bench never uses a shared Redis (it flushes and fills it), and two benchmark runs
at once (two checkouts) must not meet on a fixed port. The process id is kept so the
memory figures can read the server's RSS the same way as a coordinator's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """`with RedisServer() as server:` a running redis-server on `server.port`."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> RedisServer:
        program = shutil.which("redis-server")
        if program is None:
            raise RuntimeError("redis-server is missing: make redis-up installs it (Debian)")
        self._folder = tempfile.TemporaryDirectory(prefix="shoal-bench-redis-")
        for _ in range(5):
            self.port = _free_port()
            self.process = subprocess.Popen(
                [
                    program,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self._folder.name,
                    "--logfile",
                    str(Path(self._folder.name) / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                return self
            self._stop()
        raise RuntimeError("redis-server did not answer PING on a free port")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 20
        client = redis.Redis(port=self.port)
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    return False  # most likely the port was taken meanwhile
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __exit__(self, *exc_info: object) -> None:
        self._stop()
        if self._folder is not None:
            self._folder.cleanup()
