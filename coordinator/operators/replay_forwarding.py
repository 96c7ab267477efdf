"""Replays into a sandbox, asked of production: the call passed on to the sandbox's coordinator.

A replay runs in the coordinator of the grid it writes into. Production resolves a
sandbox's name to a channel over its private socket (`Sandboxes.channel`), fills in
what the sandbox lacks (the Kafka bootstrap servers, the code of a pipeline named by
name only), passes the call on with the
caller's credentials, notes the replay in the sandbox's description, and answers ids as
``<sandbox>/<id>``; a status, follow or cancel of such an id is passed on the same way.
An error of the sandbox's coordinator is answered with its own status and message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import grpc

from grid.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    GridError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from shoal.v1 import replay_pb2, replay_pb2_grpc

CALL_TIMEOUT_S = 60.0
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
FORWARDED_METADATA = ("authorization",)
_ERRORS: dict[grpc.StatusCode, type[GridError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def grid_error(error: grpc.RpcError, sandbox: str) -> GridError:
    """The sandbox's answer as this coordinator's error, naming the sandbox."""
    call: Any = error
    code = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
    details = call.details() if hasattr(call, "details") else str(error)
    field = None
    trailing = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
    for key, value in trailing or ():
        if key in ("shoal-field", "shoal-field-bin"):
            field = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    kind = _ERRORS.get(code, Unavailable)
    return kind(f"sandbox '{sandbox}': {details}", field=field)


def split_id(replay_id: str) -> tuple[str, str]:
    """(sandbox, local id) of ``incident-42/r-0a1b2c3d4e``; ("", id) without a sandbox."""
    sandbox, _, local = replay_id.rpartition("/")
    return sandbox, local


class SandboxReplays:
    def __init__(
        self,
        channel_of: Callable[..., AbstractContextManager[grpc.Channel]],
        note_replay: Callable[[str, str], None],
    ) -> None:
        # `Sandboxes.channel`: the sandbox's private socket, whatever production's TLS.
        self.channel_of = channel_of
        self.note_replay = note_replay

    def _call(
        self,
        sandbox: str,
        metadata: Sequence[tuple[str, Any]],
        call: Callable[[replay_pb2_grpc.ReplaysStub, list[tuple[str, Any]]], Any],
    ) -> Any:
        opener = self.channel_of(sandbox, CHANNEL_OPTIONS)
        forwarded = [(key, value) for key, value in metadata if key in FORWARDED_METADATA]
        with opener as channel:
            try:
                return call(replay_pb2_grpc.ReplaysStub(channel), forwarded)
            except grpc.RpcError as error:
                raise grid_error(error, sandbox) from None

    @staticmethod
    def _prefixed(status: replay_pb2.ReplayStatus, sandbox: str) -> replay_pb2.ReplayStatus:
        status.id = f"{sandbox}/{status.id}"
        return status

    def start(
        self, request: replay_pb2.StartReplayRequest, metadata: Sequence[tuple[str, Any]]
    ) -> replay_pb2.ReplayStatus:
        sandbox = request.sandbox
        passed = replay_pb2.StartReplayRequest()
        passed.CopyFrom(request)
        passed.sandbox = ""
        status: replay_pb2.ReplayStatus = self._call(
            sandbox,
            metadata,
            lambda stub, forwarded: stub.Start(passed, timeout=CALL_TIMEOUT_S, metadata=forwarded),
        )
        self.note_replay(sandbox, status.id)
        return self._prefixed(status, sandbox)

    def get(self, replay_id: str, metadata: Sequence[tuple[str, Any]]) -> replay_pb2.ReplayStatus:
        sandbox, local = split_id(replay_id)
        status: replay_pb2.ReplayStatus = self._call(
            sandbox,
            metadata,
            lambda stub, forwarded: stub.Get(
                replay_pb2.ReplayRequest(id=local), timeout=CALL_TIMEOUT_S, metadata=forwarded
            ),
        )
        return self._prefixed(status, sandbox)

    def cancel(
        self, replay_id: str, metadata: Sequence[tuple[str, Any]]
    ) -> replay_pb2.ReplayStatus:
        sandbox, local = split_id(replay_id)
        status: replay_pb2.ReplayStatus = self._call(
            sandbox,
            metadata,
            lambda stub, forwarded: stub.Cancel(
                replay_pb2.ReplayRequest(id=local), timeout=CALL_TIMEOUT_S, metadata=forwarded
            ),
        )
        return self._prefixed(status, sandbox)

    def list(
        self, sandbox: str, metadata: Sequence[tuple[str, Any]]
    ) -> list[replay_pb2.ReplayStatus]:
        reply: replay_pb2.ListReplaysResponse = self._call(
            sandbox,
            metadata,
            lambda stub, forwarded: stub.List(
                replay_pb2.ListReplaysRequest(), timeout=CALL_TIMEOUT_S, metadata=forwarded
            ),
        )
        return [self._prefixed(status, sandbox) for status in reply.replays]

    def follow(
        self, replay_id: str, interval_ms: int, metadata: Sequence[tuple[str, Any]]
    ) -> Iterator[replay_pb2.ReplayStatus]:
        sandbox, local = split_id(replay_id)
        opener = self.channel_of(sandbox, CHANNEL_OPTIONS)
        forwarded = [(key, value) for key, value in metadata if key in FORWARDED_METADATA]
        with opener as channel:
            stream = replay_pb2_grpc.ReplaysStub(channel).Follow(
                replay_pb2.FollowReplayRequest(id=local, interval_ms=interval_ms),
                metadata=forwarded,
            )
            try:
                for status in stream:
                    yield self._prefixed(status, sandbox)
            except grpc.RpcError as error:
                raise grid_error(error, sandbox) from None
            finally:
                stream.cancel()
