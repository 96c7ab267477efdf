"""Sandboxes in the SDK: ``client.sandboxes`` (create, list, describe, delete, diff) and
``client.sandbox(name)``, a client connected to one.

Creating a seeded sandbox and diffing are long operations: the server answers at once
with an operation id, and these methods wait for it (``wait=False`` returns the
`Operation` to poll with ``operation(id)`` or follow with ``watch(id)``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import grpc

from shoal import _errors
from shoal.v1 import sandbox_pb2, sandbox_pb2_grpc

if TYPE_CHECKING:
    from shoal._client import Client

WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")
# How long waiting for an operation may take in all (a seed of millions of keys).
OPERATION_TIMEOUT_S = 3600.0
# A delete waits for the sandbox's process to stop cleanly (up to 15 s, then SIGKILL).
DELETE_TIMEOUT_S = 60.0
READY_POLL_S = 0.2


@dataclass(frozen=True)
class SandboxInfo:
    name: str
    address: str
    state: str
    error: str
    created_at_ms: int
    expires_at_ms: int
    ttl_ms: int
    age_ms: int
    from_snapshot: bool
    snapshot_version: int
    snapshot_at_ms: int
    maps: list[str]
    seeded_entries: int
    memory_bytes: int
    memory_bytes_max: int
    disk_bytes: int
    pid: int
    data_dir: str
    replays: list[str]
    restarts: int

    @staticmethod
    def from_message(message: sandbox_pb2.SandboxInfo) -> SandboxInfo:
        values: dict[str, Any] = {}
        for item in fields(SandboxInfo):
            value = getattr(message, item.name)
            values[item.name] = list(value) if item.name in ("maps", "replays") else value
        return SandboxInfo(**values)


@dataclass(frozen=True)
class Operation:
    """A long operation on the server: ``state`` is running, succeeded or failed."""

    id: str
    kind: str
    sandbox: str
    state: str
    phase: str
    done: int
    total: int
    unit: str
    started_at_ms: int
    finished_at_ms: int
    error_code: str
    error: str
    result: Any = field(default=None)

    @property
    def finished(self) -> bool:
        return self.state != "running"

    @staticmethod
    def from_message(message: sandbox_pb2.Operation) -> Operation:
        return Operation(
            id=message.id,
            kind=message.kind,
            sandbox=message.sandbox,
            state=message.state,
            phase=message.phase,
            done=message.done,
            total=message.total,
            unit=message.unit,
            started_at_ms=message.started_at_ms,
            finished_at_ms=message.finished_at_ms,
            error_code=message.error_code,
            error=message.error,
            result=json.loads(message.result_json) if message.result_json else None,
        )

    def raise_if_failed(self) -> None:
        if self.state == "failed":
            kind = getattr(grpc.StatusCode, self.error_code, grpc.StatusCode.UNKNOWN)
            error_class = _errors._BY_CODE.get(kind, _errors.InternalError)
            raise error_class(f"{self.kind} {self.id} failed: {self.error}")


Progress = Callable[[Operation], None]


def _stub(stubs: Any) -> Any:
    stub = stubs.extra.get("sandboxes")
    if stub is None:
        stub = stubs.extra["sandboxes"] = sandbox_pb2_grpc.SandboxesStub(stubs.channel)
    return stub


class Sandboxes:
    """``client.sandboxes``: the sandboxes the client's coordinator supervises."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        name: str,
        *,
        from_snapshot: bool = False,
        maps: Sequence[str] = (),
        ttl_s: float | None = None,
        wait: bool = True,
        on_progress: Progress | None = None,
    ) -> SandboxInfo | Operation:
        """Creates a sandbox, empty or seeded from a snapshot of production (every map,
        or ``maps`` and the maps they reference); returns its description once it serves
        (or the operation, with ``wait=False``)."""
        if isinstance(maps, str):
            maps = [maps]
        request = sandbox_pb2.CreateSandboxRequest(
            name=name,
            from_snapshot=from_snapshot,
            maps=list(maps),
            ttl_ms=0 if ttl_s is None else _milliseconds(ttl_s, "ttl_s"),
        )
        operation = Operation.from_message(
            self._client._call(lambda s: _stub(s).Create, request, idempotent=False)
        )
        if not wait:
            return operation
        self.wait(operation.id, on_progress=on_progress)
        return self.describe(name)

    def list(self) -> list[SandboxInfo]:
        reply = self._client._call(
            lambda s: _stub(s).List, sandbox_pb2.ListSandboxesRequest(), idempotent=True
        )
        return [SandboxInfo.from_message(item) for item in reply.sandboxes]

    def describe(self, name: str) -> SandboxInfo:
        reply = self._client._call(
            lambda s: _stub(s).Describe, sandbox_pb2.SandboxRequest(name=name), idempotent=True
        )
        return SandboxInfo.from_message(reply)

    def delete(self, name: str) -> bool:
        """Stops the sandbox's process and removes its data."""
        reply = self._client._call(
            lambda s: _stub(s).Delete,
            sandbox_pb2.SandboxRequest(name=name),
            idempotent=True,
            timeout_s=max(self._client.timeout_s, DELETE_TIMEOUT_S),
        )
        return bool(reply.deleted)

    def diff(
        self,
        name: str,
        *,
        maps: Sequence[str] = (),
        sample: int = 10,
        wait: bool = True,
        on_progress: Progress | None = None,
    ) -> dict[str, Any] | Operation:
        """Compares the sandbox with production, map by map; returns the report (see the
        README), or the operation with ``wait=False``."""
        if isinstance(maps, str):
            maps = [maps]
        if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample < 2**32:
            raise _errors.InvalidArgumentError(
                f"sample must be a number of keys from 0, got {sample!r}", field="sample"
            )
        request = sandbox_pb2.DiffRequest(sandbox=name, maps=list(maps), sample=sample)
        operation = Operation.from_message(
            self._client._call(lambda s: _stub(s).Diff, request, idempotent=True)
        )
        if not wait:
            return operation
        finished = self.wait(operation.id, on_progress=on_progress)
        report: dict[str, Any] = finished.result
        return report

    def operation(self, operation_id: str) -> Operation:
        reply = self._client._call(
            lambda s: _stub(s).GetOperation,
            sandbox_pb2.OperationRequest(id=operation_id),
            idempotent=True,
        )
        return Operation.from_message(reply)

    def watch(
        self, operation_id: str, *, timeout_s: float = OPERATION_TIMEOUT_S
    ) -> Iterator[Operation]:
        """The operation now and at every change, until it has finished."""
        stub = _stub(self._client._connection.current)
        stream = stub.WatchOperation(
            sandbox_pb2.OperationRequest(id=operation_id),
            timeout=timeout_s,
            metadata=self._client._metadata,
        )
        try:
            for message in stream:
                yield Operation.from_message(message)
        except grpc.RpcError as error:
            raise _errors.from_rpc_error(error) from None
        finally:
            stream.cancel()

    def wait(self, operation_id: str, *, on_progress: Progress | None = None) -> Operation:
        """Follows the operation to its end; raises its error when it failed."""
        last: Operation | None = None
        for last in self.watch(operation_id):
            if on_progress is not None:
                on_progress(last)
        if last is None or not last.finished:
            last = self.operation(operation_id)
        last.raise_if_failed()
        return last


def wait_ready(sandboxes: Sandboxes, name: str, timeout_s: float) -> SandboxInfo:
    """The sandbox once it is ready; FailedPreconditionError when it failed, or is still
    not ready after ``timeout_s`` (creating, or restarting after production restarted)."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = sandboxes.describe(name)
        if info.state == "ready":
            return info
        if info.state not in ("creating", "restarting") or time.monotonic() >= deadline:
            detail = f": {info.error}" if info.error else ""
            raise _errors.FailedPreconditionError(
                f"sandbox '{name}' is {info.state}, not ready{detail}", field="sandbox"
            )
        time.sleep(READY_POLL_S)


def sandbox_target(address: str, production_target: str) -> str:
    """The sandbox's address as this client reaches it: a sandbox listening on every
    interface is reached at the host production was reached at."""
    host, _, port = address.rpartition(":")
    if host in WILDCARD_HOSTS:
        production_host = production_target.rpartition(":")[0]
        return f"{production_host}:{port}"
    return address


def _milliseconds(seconds: float, what: str) -> int:
    if not isinstance(seconds, int | float) or not 0 < seconds < float("inf"):
        raise _errors.InvalidArgumentError(
            f"{what} must be a positive number of seconds, got {seconds!r}", field=what
        )
    # ttl_ms travels as uint64; a longer time is sent as the longest, which the server
    # refuses naming its own limit (sandbox_ttl_max_ms).
    return min(max(int(seconds * 1000), 1), 2**64 - 1)
