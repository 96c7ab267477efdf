"""The Sandboxes service: operators' sandboxes, diffs against them, and their operations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import orjson

from coordinator.operators.export import export_definitions, export_maps
from coordinator.operators.operations import Operations, OperationView
from coordinator.operators.sandboxes import Sandboxes, SandboxView
from coordinator.services.errors import streaming, unary
from coordinator.sql.snapshot import Snapshots
from grid.catalog import Catalog
from grid.errors import InvalidArgument
from shoal.v1 import sandbox_pb2, sandbox_pb2_grpc

# How long one message of WatchOperation waits for a change before it repeats the state
# (a person's progress bar keeps moving, and a vanished watcher frees its thread).
WATCH_STEP_S = 1.0
SAMPLE_DEFAULT = 10
SAMPLE_MAX = 1000

# Starts a diff of a sandbox: (sandbox, maps, sample, the caller's credentials) -> operation.
DiffStarter = Callable[[str, list[str], int, tuple[tuple[str, str], ...]], OperationView]


def credentials_of(context: grpc.ServicerContext) -> tuple[tuple[str, str], ...]:
    """The caller's bearer token, to read a sandbox on its behalf: a sandbox of a
    production that checks tokens checks the same ones, so the caller's own
    permissions decide what the diff may read there."""
    return tuple(
        (key, value)
        for key, value in context.invocation_metadata() or ()
        if key == "authorization" and isinstance(value, str)
    )


def sandbox_info(view: SandboxView) -> sandbox_pb2.SandboxInfo:
    described = view.to_json()
    return sandbox_pb2.SandboxInfo(**described)


def operation_message(view: OperationView) -> sandbox_pb2.Operation:
    return sandbox_pb2.Operation(
        id=view.id,
        kind=view.kind,
        sandbox=view.subject,
        state=view.state,
        phase=view.phase,
        done=view.done,
        total=view.total,
        unit=view.unit,
        started_at_ms=view.started_at_ms,
        finished_at_ms=view.finished_at_ms,
        error_code=view.error_code,
        error=view.error,
        result_json=b"" if view.result is None else orjson.dumps(view.result, default=_default),
    )


def _default(value: Any) -> Any:
    return str(value)


class SandboxesService(sandbox_pb2_grpc.SandboxesServicer):
    def __init__(
        self,
        sandboxes: Sandboxes,
        operations: Operations,
        catalog: Catalog,
        snapshots: Snapshots,
        read_version: Callable[[], int],
        start_diff: DiffStarter,
    ) -> None:
        self.sandboxes = sandboxes
        self.operations = operations
        self.catalog = catalog
        self.snapshots = snapshots
        self.read_version = read_version
        self.start_diff = start_diff

    @unary
    def Create(
        self, request: sandbox_pb2.CreateSandboxRequest, context: grpc.ServicerContext
    ) -> sandbox_pb2.Operation:
        return operation_message(
            self.sandboxes.create(
                request.name,
                from_snapshot=request.from_snapshot,
                maps=list(request.maps),
                ttl_ms=request.ttl_ms,
            )
        )

    @unary
    def List(
        self, request: sandbox_pb2.ListSandboxesRequest, context: grpc.ServicerContext
    ) -> sandbox_pb2.ListSandboxesResponse:
        return sandbox_pb2.ListSandboxesResponse(
            sandboxes=[sandbox_info(view) for view in self.sandboxes.list()]
        )

    @unary
    def Describe(
        self, request: sandbox_pb2.SandboxRequest, context: grpc.ServicerContext
    ) -> sandbox_pb2.SandboxInfo:
        return sandbox_info(self.sandboxes.describe(request.name))

    @unary
    def Delete(
        self, request: sandbox_pb2.SandboxRequest, context: grpc.ServicerContext
    ) -> sandbox_pb2.DeleteSandboxResponse:
        return sandbox_pb2.DeleteSandboxResponse(deleted=self.sandboxes.delete(request.name))

    @unary
    def Diff(
        self, request: sandbox_pb2.DiffRequest, context: grpc.ServicerContext
    ) -> sandbox_pb2.Operation:
        sample = request.sample or SAMPLE_DEFAULT
        if sample > SAMPLE_MAX:
            raise InvalidArgument(
                f"sample {sample} is more than the most keys shown, {SAMPLE_MAX}", field="sample"
            )
        return operation_message(
            self.start_diff(request.sandbox, list(request.maps), sample, credentials_of(context))
        )

    @unary
    def GetOperation(
        self, request: sandbox_pb2.OperationRequest, context: grpc.ServicerContext
    ) -> sandbox_pb2.Operation:
        return operation_message(self.operations.get(request.id))

    @streaming
    def WatchOperation(
        self, request: sandbox_pb2.OperationRequest, context: grpc.ServicerContext
    ) -> Iterator[sandbox_pb2.Operation]:
        view = self.operations.get(request.id)
        yield operation_message(view)
        while not view.finished:
            view = self.operations.wait_change(request.id, view.revision, WATCH_STEP_S)
            yield operation_message(view)

    @streaming
    def ExportMaps(
        self, request: sandbox_pb2.ExportMapsRequest, context: grpc.ServicerContext
    ) -> Iterator[sandbox_pb2.ExportMapsChunk]:
        definitions = export_definitions(
            self.catalog, list(request.maps), missing_ok=request.missing_ok
        )
        for piece in export_maps(self.snapshots, definitions, self.read_version()):
            yield sandbox_pb2.ExportMapsChunk(
                map=piece.map,
                definition_json=piece.definition_json,
                arrow_ipc=piece.arrow_ipc,
                read_version=piece.read_version,
            )
