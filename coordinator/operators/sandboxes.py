"""Sandboxes: isolated grids as child coordinators that production creates, supervises and removes.

A sandbox is a `shoal serve` child process (`sandbox_process`) with its own port and
data directory under production's, `<data_dir>/sandboxes/<name>/`, created empty or
seeded from one read version of production (`sandbox_seed`). The supervisor here:

* creates a sandbox as an operation (`operations`): seed, start, ready;
* watches every sandbox each `SUPERVISE_INTERVAL_S`: removes it once its TTL passed,
  starts its process again when it died (at most `RESTARTS_MAX` times), and stops it
  when its resident memory exceeds `sandbox_memory_bytes_max`;
* deletes one: its process stopped and reaped, its directory removed, its record last;
* at production's start, finds its sandboxes again from the registry
  (`sandbox_registry`): waits for the processes of the previous run to end (their
  lifeline closed with that run), removes the expired and the half made, and starts
  the others again from their data directories, on their old ports when free.

Other operator tools call into a sandbox through `channel` (its private socket, see
`sandbox_channel`), and use `describe` and `note_replay` (see `coordinator.operators`).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from coordinator.clock import Clock
from coordinator.operators import sandbox_channel, sandbox_process
from coordinator.operators.operations import Operations, OperationView, Progress
from coordinator.operators.sandbox_process import Child, ChildSettings
from coordinator.operators.sandbox_registry import (
    CREATING,
    FAILED,
    READY,
    RESTARTING,
    SandboxRecord,
    SandboxRegistry,
    check_sandbox_name,
)
from coordinator.operators.sandbox_seed import Production, seeded_definitions, write_seed
from grid.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)

log = logging.getLogger(__name__)

DELETING = "deleting"
SUPERVISE_INTERVAL_S = 0.5
RESTARTS_MAX = 5
TTL_DEFAULT_MS = 4 * 3_600_000


@dataclass(frozen=True)
class SandboxLimits:
    sandboxes_max: int = 4
    memory_bytes_max: int = 2 * 1024**3
    ttl_max_ms: int = 7 * 24 * 3_600_000
    ttl_default_ms: int = TTL_DEFAULT_MS


@dataclass(frozen=True)
class SandboxView:
    """A sandbox as described to callers: its record and what is measured now."""

    record: SandboxRecord
    age_ms: int
    memory_bytes: int
    disk_bytes: int

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def address(self) -> str:
        return self.record.address

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "name": record.name,
            "address": record.address,
            "state": record.state,
            "error": record.error,
            "created_at_ms": record.created_at_ms,
            "expires_at_ms": record.expires_at_ms,
            "ttl_ms": record.ttl_ms,
            "age_ms": self.age_ms,
            "from_snapshot": record.from_snapshot,
            "snapshot_version": record.snapshot_version,
            "snapshot_at_ms": record.snapshot_at_ms,
            "maps": list(record.maps),
            "seeded_entries": record.seeded_entries,
            "memory_bytes": self.memory_bytes,
            "memory_bytes_max": record.memory_bytes_max,
            "disk_bytes": self.disk_bytes,
            "pid": record.pid,
            "data_dir": str(Path(record.data_dir) / "data"),
            "replays": list(record.replays),
            "restarts": record.restarts,
        }


@dataclass(frozen=True)
class ChildShape:
    """What every sandbox's process shares with production's: listening host, partition
    count (so a seed's partitions map one to one) and fsync policy."""

    host: str
    partitions: int
    fsync: str
    # Production's TLS and auth settings, so a sandbox is reached as securely as
    # production and answers to the same tokens (its copy of the auth map is seeded).
    extra_args: tuple[str, ...] = ()
    # System maps every sandbox is seeded with, even an empty one (`__auth`).
    system_maps: tuple[str, ...] = ()


class Sandboxes:
    """The sandboxes of one coordinator; thread-safe."""

    def __init__(
        self,
        root: Path,
        production: Production,
        shape: ChildShape,
        limits: SandboxLimits,
        *,
        clock: Clock,
        operations: Operations,
        memory_estimate: Callable[[Sequence[str]], int],
        replays_of: Callable[[grpc.Channel], list[str]] = lambda channel: [],
    ) -> None:
        self.root = root
        self.production = production
        self.shape = shape
        self.limits = limits
        self.clock = clock
        self.operations = operations
        self._memory_estimate = memory_estimate
        self._replays_of = replays_of
        self.registry = SandboxRegistry(root)
        self._children: dict[str, Child] = {}
        # Held while a sandbox changes state (created, started, stopped, removed), so the
        # supervisor and a caller never act on the same sandbox at once.
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # Lifecycle of the supervisor ---------------------------------------------------

    def start(self) -> None:
        """Finds the sandboxes of the previous run again (in the supervisor's thread, so
        production serves meanwhile), then supervises them."""
        if self.limits.sandboxes_max == 0 and not self.registry.all():
            return
        # The previous run's processes are ending with it: none is ready until started
        # again and answering.
        for record in self.registry.all():
            if record.state == READY:
                self.registry.update(record.name, state=RESTARTING)
        self._thread = threading.Thread(target=self._run, name="sandbox-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Production is stopping: every sandbox process stops cleanly; their records and
        data stay, and the next start brings them back."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for name, child in list(self._children.items()):
                log.info("stopping sandbox '%s' (pid %d)", name, child.pid)
                child.stop()
            self._children.clear()

    def _run(self) -> None:
        try:
            self.recover()
        except Exception:
            log.exception("finding the sandboxes of the previous run failed")
        while not self._stopping.wait(SUPERVISE_INTERVAL_S):
            try:
                self.supervise()
            except Exception:
                log.exception("supervising sandboxes failed")

    # Operations callers use --------------------------------------------------------

    def create(
        self, name: str, *, from_snapshot: bool, maps: Sequence[str] = (), ttl_ms: int = 0
    ) -> OperationView:
        check_sandbox_name(name)
        limits = self.limits
        if ttl_ms == 0:
            ttl_ms = limits.ttl_default_ms
        if ttl_ms > limits.ttl_max_ms:
            raise InvalidArgument(
                f"ttl_ms {ttl_ms} is longer than the longest allowed, {limits.ttl_max_ms} ms "
                "(sandbox_ttl_max_ms)",
                field="ttl_ms",
            )
        if maps and not from_snapshot:
            raise InvalidArgument(
                "maps choose what a snapshot seeds: give from_snapshot too", field="maps"
            )
        with self._lock:
            if limits.sandboxes_max == 0:
                raise ResourceExhausted(
                    "this coordinator runs no sandboxes (sandboxes_max is 0)",
                    field="sandboxes_max",
                )
            if self.registry.get(name) is not None:
                raise AlreadyExists(f"sandbox '{name}' already exists", field="name")
            existing = self.registry.all()
            if len(existing) >= limits.sandboxes_max:
                raise ResourceExhausted(
                    f"at most {limits.sandboxes_max} sandboxes may exist at once "
                    f"(sandboxes_max); delete one of: {', '.join(r.name for r in existing)}",
                    field="sandboxes_max",
                )
            definitions = seeded_definitions(self.production.catalog, maps) if from_snapshot else []
            names = [definition.name for definition in definitions]
            estimate = self._memory_estimate(names) if names else 0
            if estimate > limits.memory_bytes_max:
                raise ResourceExhausted(
                    f"seeding {', '.join(names)} needs about {_mib(estimate)} of memory, more "
                    f"than a sandbox may use ({_mib(limits.memory_bytes_max)}, "
                    "sandbox_memory_bytes_max); seed fewer maps",
                    field="sandbox_memory_bytes_max",
                )
            directory = self.root / name
            if directory.exists():
                # Left by a run that stopped between making it and recording it.
                shutil.rmtree(directory)
            record = SandboxRecord(
                name=name,
                state=CREATING,
                data_dir=str(directory),
                host=self.shape.host,
                created_at_ms=self.clock.now_ms(),
                ttl_ms=ttl_ms,
                from_snapshot=from_snapshot,
                maps=tuple(names),
                memory_bytes_max=limits.memory_bytes_max,
            )
            self.registry.put(record)

        def work(progress: Progress) -> dict[str, Any]:
            try:
                return self._make(record, definitions, progress)
            except BaseException:
                self._discard(name)
                raise

        return self.operations.start(
            "create_sandbox", name, work, phase="snapshot" if from_snapshot else "starting"
        )

    def _make(
        self, record: SandboxRecord, definitions: Sequence[Any], progress: Progress
    ) -> dict[str, Any]:
        directory = Path(record.data_dir)
        data_dir = directory / "data"
        if record.from_snapshot or self.shape.system_maps:

            def report(phase: str, done: int, total: int) -> None:
                if done == 0:
                    unit = "partitions" if phase == "snapshot" else "keys"
                    progress.phase(phase, total=total, unit=unit)
                else:
                    progress.advance(done, total)

            seed = write_seed(
                data_dir,
                self.production,
                definitions,
                report,
                system_maps=self.shape.system_maps,
            )
            if record.from_snapshot:
                self.registry.update(
                    record.name,
                    snapshot_version=seed.version,
                    snapshot_at_ms=seed.at_ms,
                    seeded_entries=seed.entries,
                )
        progress.phase("starting")
        child = sandbox_process.start_child(self._settings(record, port=0))
        with self._lock:
            current = self.registry.get(record.name)
            if current is None or current.state != CREATING:
                child.stop()
                raise NotFound(f"sandbox '{record.name}' was deleted while it was created")
            self._children[record.name] = child
            self.registry.update(
                record.name,
                state=READY,
                port=child.port,
                pid=child.pid,
                pid_started=sandbox_process.process_started(child.pid),
            )
        log.info("sandbox '%s' ready on %s:%d", record.name, record.host, child.port)
        return self.describe(record.name).to_json()

    def _settings(self, record: SandboxRecord, *, port: int) -> ChildSettings:
        directory = Path(record.data_dir)
        return ChildSettings(
            name=record.name,
            host=record.host,
            port=port,
            data_dir=directory / "data",
            log_path=directory / "serve.log",
            partitions=self.shape.partitions,
            fsync=self.shape.fsync,
            extra_args=self.shape.extra_args,
        )

    def list(self) -> list[SandboxView]:
        """Every sandbox, from what the supervisor knows (no call to any sandbox: the
        metrics collector lists them on every scrape)."""
        return [self._view(record) for record in self.registry.all()]

    def describe(self, name: str) -> SandboxView:
        """One sandbox, with the replays it ran asked of the sandbox itself."""
        return self._view(self._record(name), ask_replays=True)

    def delete(self, name: str) -> bool:
        record = self._record(name)
        if record.state == CREATING:
            raise FailedPrecondition(
                f"sandbox '{name}' is being created; delete it once its create operation ended",
                field="name",
            )
        self._remove(name, reason="deleted")
        return True

    def address_of(self, name: str) -> str:
        """The address users reach a ready sandbox at (NotFound: no such sandbox;
        FailedPrecondition: it is not ready)."""
        return self._ready(name).address

    def channel(
        self, name: str, options: Sequence[tuple[str, Any]] = ()
    ) -> AbstractContextManager[grpc.Channel]:
        """The one way production calls into a sandbox: a channel over its private socket
        (`sandbox_channel`), opened on entering. Whether the sandbox exists and is ready
        is checked now, so a wrong name fails the caller's call itself."""
        return sandbox_channel.open_channel(_socket_path(self._ready(name)), options)

    def _ready(self, name: str) -> SandboxRecord:
        record = self._record(name)
        if record.state != READY:
            detail = f": {record.error}" if record.error else ""
            raise FailedPrecondition(
                f"sandbox '{name}' is {record.state}, not ready{detail}", field="sandbox"
            )
        return record

    def note_replay(self, name: str, replay_id: str) -> None:
        """Records that a replay ran (or runs) into the sandbox, for `describe`."""
        with self._lock:
            record = self._record(name)
            if replay_id not in record.replays:
                self.registry.update(name, replays=(*record.replays, replay_id))

    def _record(self, name: str) -> SandboxRecord:
        check_sandbox_name(name, field_name="sandbox")
        record = self.registry.get(name)
        if record is None or record.state == DELETING:
            known = ", ".join(item.name for item in self.registry.all()) or "none"
            raise NotFound(f"no sandbox named '{name}' (sandboxes: {known})", field="sandbox")
        return record

    def _view(self, record: SandboxRecord, *, ask_replays: bool = False) -> SandboxView:
        child = self._children.get(record.name)
        alive = child is not None and child.alive()
        if ask_replays and alive and record.state == READY:
            with sandbox_channel.open_channel(_socket_path(record)) as channel:
                found = [item for item in self._replays_of(channel) if item not in record.replays]
            if found:
                record = replace(record, replays=(*record.replays, *found))
        return SandboxView(
            record=record,
            age_ms=max(self.clock.now_ms() - record.created_at_ms, 0),
            memory_bytes=sandbox_process.resident_bytes(child.pid) if child and alive else 0,
            disk_bytes=sandbox_process.directory_bytes(Path(record.data_dir)),
        )

    # Supervision -------------------------------------------------------------------

    def supervise(self) -> None:
        """One round: expire, restart the dead, stop the ones over their memory."""
        now_ms = self.clock.now_ms()
        for record in self.registry.all():
            if self._stopping.is_set():
                return
            if record.state in (CREATING, DELETING):
                continue
            if record.expires_at_ms <= now_ms:
                log.info("sandbox '%s' expired (TTL %d ms)", record.name, record.ttl_ms)
                self._remove(record.name, reason="expired")
                continue
            if record.state == FAILED:
                continue
            child = self._children.get(record.name)
            if child is None or not child.alive():
                # Outside the lock: a start takes seconds, and callers must not wait.
                self._restart(record, child)
                continue
            with self._lock:
                resident = sandbox_process.resident_bytes(child.pid)
                if resident > record.memory_bytes_max:
                    message = (
                        f"its process used {_mib(resident)} of memory, more than a sandbox may "
                        f"use ({_mib(record.memory_bytes_max)}, sandbox_memory_bytes_max); it "
                        "was stopped: delete it, or create it again with fewer maps"
                    )
                    log.warning("sandbox '%s': %s", record.name, message)
                    child.stop()
                    self._children.pop(record.name, None)
                    self.registry.update(record.name, state=FAILED, error=message, pid=0)

    def _restart(self, record: SandboxRecord, dead: Child | None) -> None:
        if dead is not None:
            returncode = dead.process.returncode
            dead.close_lifeline()
            log.warning(
                "sandbox '%s' process %d ended (status %s); starting it again",
                record.name,
                dead.pid,
                returncode,
            )
        with self._lock:
            current = self.registry.get(record.name)
            if current is None or current.state not in (READY, RESTARTING):
                return
            record = current
            self._children.pop(record.name, None)
            if record.restarts >= RESTARTS_MAX:
                tail = sandbox_process.log_tail(Path(record.data_dir) / "serve.log")
                self.registry.update(
                    record.name,
                    state=FAILED,
                    pid=0,
                    error=f"its process ended {record.restarts + 1} times; last log lines: {tail}",
                )
                return
            self.registry.update(record.name, state=RESTARTING, restarts=record.restarts + 1)
        port = record.port
        if port and not sandbox_process.port_free(record.host, port):
            port = 0
        try:
            child = sandbox_process.start_child(self._settings(record, port=port))
        except Exception as error:
            log.warning("sandbox '%s' did not start again: %s", record.name, error)
            return
        with self._lock:
            current = self.registry.get(record.name)
            if current is None or current.state != RESTARTING:
                # Deleted (or expired) while it started: it goes again, with its directory.
                child.stop()
                shutil.rmtree(record.data_dir, ignore_errors=True)
                return
            self._children[record.name] = child
            self.registry.update(
                record.name,
                state=READY,
                port=child.port,
                pid=child.pid,
                pid_started=sandbox_process.process_started(child.pid),
                error="",
            )
        log.info("sandbox '%s' serving again on %s:%d", record.name, record.host, child.port)

    def recover(self) -> None:
        """At start: ends what the previous run left, then brings its sandboxes back."""
        records = self.registry.all()
        known = {Path(record.data_dir).name for record in records}
        if self.root.exists():
            for leftover in self.root.iterdir():
                if leftover.is_dir() and leftover.name not in known:
                    log.info("removing %s: no sandbox of that name", leftover)
                    shutil.rmtree(leftover, ignore_errors=True)
        for record in records:
            if self._stopping.is_set():
                return
            # The previous run's process shuts down once its lifeline closed; it holds
            # the data directory's lock until it has.
            if record.pid:
                sandbox_process.end_stray(record.pid, record.pid_started)
            if record.state in (CREATING, DELETING):
                log.info(
                    "removing sandbox '%s': it was %s when the last run ended",
                    record.name,
                    record.state,
                )
                self._discard(record.name)
                continue
            if record.state == FAILED:
                self.registry.update(record.name, pid=0)
                continue
            if record.expires_at_ms <= self.clock.now_ms():
                continue  # the first supervision round removes it
            self._restart(record, None)

    # Removal -----------------------------------------------------------------------

    def _remove(self, name: str, *, reason: str) -> None:
        with self._lock:
            record = self.registry.update(name, state=DELETING)
            if record is None:
                return
            child = self._children.pop(name, None)
        if child is not None:
            child.stop()
        elif record.pid:
            sandbox_process.end_stray(record.pid, record.pid_started)
        self._discard(name)
        log.info("sandbox '%s' %s", name, reason)

    def _discard(self, name: str) -> None:
        """Its process (if any) stopped, then its directory, then its record."""
        with self._lock:
            child = self._children.pop(name, None)
            record = self.registry.get(name)
        if child is not None:
            child.stop()
        if record is not None:
            shutil.rmtree(record.data_dir, ignore_errors=True)
        self.registry.remove(name)


def _socket_path(record: SandboxRecord) -> Path:
    return Path(record.data_dir) / sandbox_channel.SOCKET_NAME


def _mib(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MiB"
