"""Helpers of the sandbox tests: waiting for conditions, checking nothing is left behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal import Client


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Polls `condition` until it returns something true; fails naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, not yet reaped by its new parent)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def processes_serving(data_dir: Path) -> list[int]:
    """Pids of live processes whose command line names this data directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(data_dir).encode() in command and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def checksum(client: Client) -> dict[str, list[tuple[str, Any]]]:
    """Every map's entries, to compare production before and after."""
    return {
        info.name: sorted(client.scan(info.name), key=lambda item: item[0])
        for info in client.list_maps()
    }
