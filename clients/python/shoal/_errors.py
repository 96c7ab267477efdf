"""Typed exceptions, one per gRPC status the service answers with."""

from __future__ import annotations

from typing import Any

import grpc


class ShoalError(Exception):
    """An error answered by Shoal (or found before sending).

    ``code`` is the gRPC status name, ``field`` the part of the input at fault when the
    server named one, ``rule`` the schema rule broken, and ``trace_id`` the id to find
    the call in the server's logs.
    """

    code = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule
        self.trace_id = trace_id

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(ShoalError):
    code = "INVALID_ARGUMENT"


class NotFoundError(ShoalError):
    code = "NOT_FOUND"


class AlreadyExistsError(ShoalError):
    code = "ALREADY_EXISTS"


class FailedPreconditionError(ShoalError):
    code = "FAILED_PRECONDITION"


class ProcedureError(FailedPreconditionError):
    """A procedure raised: ``error_type`` is its exception's type name (``"ValueError"``),
    and the message says ``procedure 'transfer' raised ValueError: <its message>``."""

    @property
    def error_type(self) -> str:
        return self.rule or ""


class ConflictError(ShoalError):
    """The transaction conflicted with another and was aborted; it can be retried."""

    code = "ABORTED"


class ResourceExhaustedError(ShoalError):
    code = "RESOURCE_EXHAUSTED"


class UnauthenticatedError(ShoalError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(ShoalError):
    code = "PERMISSION_DENIED"


class UnavailableError(ShoalError):
    code = "UNAVAILABLE"


class DeadlineExceededError(ShoalError):
    code = "DEADLINE_EXCEEDED"


class CancelledError(ShoalError):
    code = "CANCELLED"


class InternalError(ShoalError):
    code = "INTERNAL"


class UnimplementedError(ShoalError):
    """The coordinator does not serve this call (an older version, or a service left out)."""

    code = "UNIMPLEMENTED"


_BY_CODE: dict[grpc.StatusCode, type[ShoalError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
}


def from_rpc_error(error: grpc.RpcError) -> ShoalError:
    """The typed exception for a failed call."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    trailing: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    found = dict(trailing or ())
    kind = _BY_CODE.get(code, InternalError)
    return kind(
        details or code.name,
        field=_text(found, "shoal-field"),
        rule=_text(found, "shoal-rule"),
        trace_id=_text(found, "shoal-trace-id"),
    )


def _text(metadata: dict[str, Any], name: str) -> str | None:
    """A metadata entry the server may send binary (`name-bin`, UTF-8: any key or field
    name fits) or as text (printable ASCII only)."""
    binary = metadata.get(f"{name}-bin")
    if isinstance(binary, bytes):
        return binary.decode("utf-8", "replace")
    text = metadata.get(name)
    return text if isinstance(text, str) else None
