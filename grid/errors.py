"""Errors raised by the grid, each naming the gRPC status it maps to."""

from __future__ import annotations


class GridError(Exception):
    """Base of every error the grid reports to a caller.

    `status` is the name of the gRPC status code the coordinator answers with;
    `field` names the part of the input at fault, when there is one (an argument such as
    ``key`` or a field of a value, never a key itself); `target` is the (map, key) an
    error about one key is about, for callers that act on it.
    """

    status = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        target: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.target = target

    def __str__(self) -> str:
        return self.message


class InvalidArgument(GridError):
    status = "INVALID_ARGUMENT"


class NotFound(GridError):
    status = "NOT_FOUND"


class AlreadyExists(GridError):
    status = "ALREADY_EXISTS"


class FailedPrecondition(GridError):
    status = "FAILED_PRECONDITION"


class Conflict(GridError):
    """A serialization conflict; the transaction may succeed when retried."""

    status = "ABORTED"


class ReadVersionTooOld(Conflict):
    """A read at a version whose overwritten values are no longer kept; retry afresh."""

    def __init__(self, version: int, oldest: int) -> None:
        super().__init__(
            f"read version too old: {version} is older than the oldest version still "
            f"kept ({oldest}, see mvcc_window_ms); retry the transaction",
            field="read_version",
        )


class StaleVersion(Conflict):
    """A one-phase step refused because a commit numbered later already changed one of its
    keys (several coordinators on a shared store); the coordinator takes a new number and
    applies again. A Conflict, so that one that escapes is retried by the client."""


class ResourceExhausted(GridError):
    status = "RESOURCE_EXHAUSTED"


class PermissionDenied(GridError):
    """The caller's principal lacks a permission on a map (auth on, coordinator/security)."""

    status = "PERMISSION_DENIED"


class Unavailable(GridError):
    status = "UNAVAILABLE"


class StorageFailure(GridError):
    """The durable log could not be written; the partition stops taking writes."""

    status = "UNAVAILABLE"


class ValidationError(InvalidArgument):
    """A value broke a rule of its map's schema."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"field '{field}': {message} (rule: {rule})", field=field)
        self.rule = rule
        self.reason = message
