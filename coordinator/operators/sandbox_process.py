"""A sandbox's process: a child `shoal serve` started, watched and stopped by production.

The child gets its own port, its own data directory and none of production's settings
(every `SHOAL_*` variable is removed from its environment, so it never runs
production's pipelines, joins its consumer groups or reads its configuration file). It
holds the read end of a pipe whose write end only production holds (the *lifeline*,
`coordinator.operators.lifeline`): when production's process ends for any reason,
`kill -9` included, the kernel closes the write end and the child shuts down cleanly.
So no child outlives its supervisor, and the next supervisor starts it again from its
data directory.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.operators.sandbox_channel import SOCKET_ENV, SOCKET_NAME, open_channel
from grid.errors import Unavailable

log = logging.getLogger(__name__)

LIFELINE_ENV = "SHOAL_SANDBOX_LIFELINE_FD"
# The line `shoal serve` prints once it serves (see coordinator.server.serve).
READY_PREFIX = b"SHOAL_READY "
START_TIMEOUT_S = 120.0
HEALTH_TIMEOUT_S = 2.0
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class ChildSettings:
    """How a sandbox's `shoal serve` is started."""

    name: str
    host: str
    port: int
    data_dir: Path
    log_path: Path
    partitions: int
    fsync: str
    # Production's transport and auth settings the child takes too (TLS files, auth on).
    extra_args: tuple[str, ...] = ()

    @property
    def socket_path(self) -> Path:
        """Where the child serves production (`sandbox_channel`): in its own directory."""
        return self.log_path.parent / SOCKET_NAME


def child_command(settings: ChildSettings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coordinator.server",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--data-dir",
        str(settings.data_dir),
        "--partitions",
        str(settings.partitions),
        "--fsync",
        settings.fsync,
        "--node-id",
        f"sandbox-{settings.name}",
        # A sandbox supervises no sandboxes of its own.
        "--sandboxes-max",
        "0",
        # Nor serves metrics: production's endpoint exports its sandboxes' figures, and a
        # child on the default port would be scraped in production's place.
        "--metrics-port",
        "0",
        *settings.extra_args,
    ]


def child_environment(
    environment: Mapping[str, str], lifeline_fd: int, socket_path: Path | None = None
) -> dict[str, str]:
    """Production's environment without any SHOAL_ setting, plus the lifeline and the
    socket production reaches the child on."""
    kept = {name: value for name, value in environment.items() if not name.startswith("SHOAL_")}
    kept[LIFELINE_ENV] = str(lifeline_fd)
    if socket_path is not None:
        kept[SOCKET_ENV] = str(socket_path)
    return kept


@dataclass
class Child:
    """A child this coordinator started: its process and the write end of its lifeline."""

    process: subprocess.Popen[bytes]
    lifeline: int
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM (a clean shutdown: checkpoint, port and lock released), SIGKILL after
        `grace_s`; the process is reaped, so no zombie remains."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("sandbox process %d ignored SIGTERM; killing it", self.pid)
                self.process.kill()
                self.process.wait()
        self.close_lifeline()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.close_lifeline()

    def close_lifeline(self) -> None:
        if self.lifeline >= 0:
            os.close(self.lifeline)
            self.lifeline = -1


def start_child(settings: ChildSettings, timeout_s: float = START_TIMEOUT_S) -> Child:
    """Starts the child and waits until it serves; Unavailable (with the end of its log)
    when it exits or does not serve within `timeout_s`."""
    settings.log_path.parent.mkdir(parents=True, exist_ok=True)
    # Only production's user may reach the socket in it (and read the sandbox's data).
    os.chmod(settings.log_path.parent, 0o700)
    read_end, write_end = os.pipe()
    offset = settings.log_path.stat().st_size if settings.log_path.exists() else 0
    try:
        with settings.log_path.open("ab") as output:
            process = subprocess.Popen(
                child_command(settings),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=child_environment(os.environ, read_end, settings.socket_path),
                pass_fds=(read_end,),
                # Its own session: a Ctrl-C at production's terminal reaches production,
                # which stops its sandboxes itself.
                start_new_session=True,
            )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    child = Child(process, write_end, 0)
    try:
        child.port = _wait_ready(child, settings, offset, timeout_s)
    except BaseException:
        child.kill()
        raise
    return child


def _wait_ready(child: Child, settings: ChildSettings, offset: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        with settings.log_path.open("rb") as handle:
            handle.seek(offset)
            for line in handle.read().splitlines():
                if line.startswith(READY_PREFIX) and answers(settings.socket_path):
                    return int(line.rsplit(b":", 1)[1])
        if not child.alive():
            raise Unavailable(
                f"sandbox '{settings.name}' did not start (exit status "
                f"{child.process.returncode}): {log_tail(settings.log_path, offset)}"
            )
        if time.monotonic() > deadline:
            raise Unavailable(
                f"sandbox '{settings.name}' did not serve within {timeout_s:.0f} s: "
                f"{log_tail(settings.log_path, offset)}"
            )
        time.sleep(0.05)


def answers(socket_path: Path) -> bool:
    """Whether the child answers production's health check on its socket."""
    try:
        with open_channel(socket_path) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_S
            )
    except (grpc.RpcError, OSError):
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def log_tail(path: Path, offset: int = 0, lines: int = 5) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def process_started(pid: int) -> int:
    """The process's start time in clock ticks since boot, or 0 when there is no such
    process (or it is a zombie, already dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) is in parentheses and may hold spaces.
    after = stat[stat.rindex(")") + 2 :].split()
    if after[0] == "Z":
        return 0
    return int(after[19])


def same_process_alive(pid: int, started: int) -> bool:
    return pid > 0 and started > 0 and process_started(pid) == started


def resident_bytes(pid: int) -> int:
    """The process's resident set size, or 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def end_stray(pid: int, started: int, grace_s: float = STOP_GRACE_S) -> None:
    """Ends a sandbox process a previous supervisor started (not our child, so not ours
    to reap): it shuts down on its own once its lifeline closes; SIGTERM, then SIGKILL,
    when it is slow."""
    deadline = time.monotonic() + grace_s
    signalled = False
    while same_process_alive(pid, started):
        if time.monotonic() > deadline:
            log.warning("sandbox process %d outlived its supervisor; killing it", pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace_s
        elif not signalled and time.monotonic() > deadline - grace_s / 2:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            signalled = True
        time.sleep(0.05)


def directory_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def port_free(host: str, port: int) -> bool:
    """Whether a sandbox may listen on the port again (as gRPC binds: TIME_WAIT is free)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError:
        return False
    return True
