"""Starts a real `shoal serve` process for tests and stops it without leaking it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "SHOAL_READY "


@dataclass
class ServerProcess:
    """A coordinator subprocess on a free port with its own data directory."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    # What runs the server, and where: the README test runs `shoal serve` in a reader's folder.
    program: list[str] = field(default_factory=lambda: [sys.executable, "-m", "coordinator.server"])
    cwd: Path = REPO_ROOT
    # What the server printed on standard output up to its ready line (the first admin's
    # token is printed there, never logged).
    output: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log_file = self.log_path.open("a")
        command = [
            *self.program,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            # Many servers run at once: none takes the default metrics port unless asked
            # (a later --metrics-port in extra_args wins).
            "--metrics-port",
            "0",
            *self.extra_args,
        ]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **self.environment}
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env=environment,
        )
        log_file.close()
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"shoal serve exited with {self.process.returncode}: {self.log_tail()}"
                )
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                self.output.append(line)
                if line.startswith(READY_PREFIX):
                    self.port = int(line.strip().rsplit(":", 1)[1])
                    return self
        self.kill()
        raise RuntimeError(f"shoal serve did not become ready: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 90.0) -> int:
        """SIGTERM and wait (a graceful shutdown); SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"shoal serve did not stop within {timeout_s} s of SIGTERM: {self.log_tail()}"
            ) from None
        finally:
            self._close_pipes()

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no checkpoint."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._close_pipes()

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout_s)
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def restart(self, *, keep_port: bool = True) -> ServerProcess:
        if not keep_port:
            self.port = 0
        self.stop()
        return self.start()
