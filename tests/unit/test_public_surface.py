"""Pins the SDK's public names, so a user's import never breaks (or grows) by accident."""

from __future__ import annotations

import shoal

EXPORTED = [
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncTransaction",
    "CancelledError",
    "Client",
    "ClusterInfo",
    "CommitResult",
    "ConflictError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "MapInfo",
    "NotFoundError",
    "Operation",
    "PermissionDeniedError",
    "ProcedureError",
    "ResourceExhaustedError",
    "RetryPolicy",
    "SandboxInfo",
    "ShoalError",
    "Snapshot",
    "TLSConfig",
    "Transaction",
    "TransactionRetry",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "Versioned",
]


def test_exports_are_pinned() -> None:
    # Changing this list is a change of the SDK's contract: update it on purpose only.
    assert sorted(shoal.__all__) == EXPORTED
    assert shoal.__all__ == EXPORTED, "keep __all__ sorted"


def test_every_export_exists() -> None:
    for name in shoal.__all__:
        assert getattr(shoal, name) is not None, name


def test_star_import_gives_exactly_the_exports() -> None:
    namespace: dict[str, object] = {}
    exec("from shoal import *", namespace)
    assert sorted(name for name in namespace if name != "__builtins__") == EXPORTED


def test_contract_names_of_the_foundation() -> None:
    """The names acceptance checks use: Client and AsyncClient with the README calls."""
    for client_class in (shoal.Client, shoal.AsyncClient):
        for method in ("create_map", "put", "get", "get_many", "delete"):
            assert callable(getattr(client_class, method)), (client_class, method)


def test_errors_mirror_status_codes() -> None:
    codes = {
        name: getattr(shoal, name).code
        for name in shoal.__all__
        if name.endswith("Error") and name != "ShoalError"
    }
    assert codes == {
        "AlreadyExistsError": "ALREADY_EXISTS",
        "CancelledError": "CANCELLED",
        "ConflictError": "ABORTED",
        "DeadlineExceededError": "DEADLINE_EXCEEDED",
        "FailedPreconditionError": "FAILED_PRECONDITION",
        "InternalError": "INTERNAL",
        "InvalidArgumentError": "INVALID_ARGUMENT",
        "NotFoundError": "NOT_FOUND",
        "PermissionDeniedError": "PERMISSION_DENIED",
        # A FailedPreconditionError that also names the procedure's exception type.
        "ProcedureError": "FAILED_PRECONDITION",
        "ResourceExhaustedError": "RESOURCE_EXHAUSTED",
        "UnauthenticatedError": "UNAUTHENTICATED",
        "UnavailableError": "UNAVAILABLE",
        "UnimplementedError": "UNIMPLEMENTED",
    }
    for name in codes:
        assert issubclass(getattr(shoal, name), shoal.ShoalError)
