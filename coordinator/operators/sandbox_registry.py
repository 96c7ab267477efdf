"""The sandboxes a coordinator supervises, persisted in its data directory.

One JSON file, `<data_dir>/sandboxes/registry.json`, rewritten whole and atomically
(temporary file, fsync, rename) on every change, so a coordinator that restarts, even
after `kill -9`, finds every sandbox it had: which to start again, which expired while
it was down, which were half made (and must go), and which old process to wait for.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import orjson

from grid.errors import InvalidArgument

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
REGISTRY_FORMAT = 1

# States of a sandbox.
CREATING = "creating"
READY = "ready"
RESTARTING = "restarting"
FAILED = "failed"


def check_sandbox_name(name: str, *, field_name: str = "name") -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidArgument(
            f"sandbox name {name!r} must be 1 to 63 letters, digits, '-' or '_', starting "
            "with a letter or digit",
            field=field_name,
        )


@dataclass(frozen=True)
class SandboxRecord:
    """What the supervisor knows of one sandbox; persisted."""

    name: str
    state: str
    data_dir: str
    host: str
    created_at_ms: int
    ttl_ms: int
    port: int = 0
    pid: int = 0
    # The process's start time in clock ticks since boot (/proc/PID/stat), so a pid the
    # system gave to another process since is never taken for the sandbox's.
    pid_started: int = 0
    from_snapshot: bool = False
    maps: tuple[str, ...] = ()
    snapshot_version: int = 0
    snapshot_at_ms: int = 0
    seeded_entries: int = 0
    replays: tuple[str, ...] = ()
    restarts: int = 0
    error: str = ""
    memory_bytes_max: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expires_at_ms(self) -> int:
        return self.created_at_ms + self.ttl_ms

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port else ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(described: dict[str, Any]) -> SandboxRecord:
        known = {item.name for item in fields(SandboxRecord)}
        values = {name: value for name, value in described.items() if name in known}
        for name in ("maps", "replays"):
            values[name] = tuple(values.get(name, ()))
        return SandboxRecord(**values)


class SandboxRegistry:
    """The records, in memory and in their file; every change is written before it returns."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "registry.json"
        self._lock = threading.RLock()
        self._records: dict[str, SandboxRecord] = {}
        if self.path.exists():
            document = orjson.loads(self.path.read_bytes())
            for described in document.get("sandboxes", []):
                record = SandboxRecord.from_json(described)
                self._records[record.name] = record

    def get(self, name: str) -> SandboxRecord | None:
        with self._lock:
            return self._records.get(name)

    def all(self) -> list[SandboxRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda record: record.name)

    def put(self, record: SandboxRecord) -> None:
        with self._lock:
            self._records[record.name] = record
            self._save()

    def update(self, name: str, **changes: Any) -> SandboxRecord | None:
        with self._lock:
            record = self._records.get(name)
            if record is None:
                return None
            record = replace(record, **changes)
            self._records[name] = record
            self._save()
            return record

    def remove(self, name: str) -> None:
        with self._lock:
            if self._records.pop(name, None) is not None:
                self._save()

    def _save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format": REGISTRY_FORMAT,
            "sandboxes": [record.to_json() for record in self._records.values()],
        }
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
