"""Shoal: the Python SDK of the Shoal in-memory data grid.

from shoal import Client
client = Client("127.0.0.1:50051")
client.put("accounts", "alice", {"owner": "Alice", "balance": 100})
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal._async_client import AsyncClient, AsyncTransaction
    from shoal._client import Client
    from shoal._connection import RetryPolicy
    from shoal._errors import (
        AlreadyExistsError,
        CancelledError,
        ConflictError,
        DeadlineExceededError,
        FailedPreconditionError,
        InternalError,
        InvalidArgumentError,
        NotFoundError,
        PermissionDeniedError,
        ProcedureError,
        ResourceExhaustedError,
        ShoalError,
        UnauthenticatedError,
        UnavailableError,
        UnimplementedError,
    )
    from shoal._model import ClusterInfo, MapInfo, Versioned
    from shoal._sandbox import Operation, SandboxInfo
    from shoal._snapshot import Snapshot
    from shoal._tls import TLSConfig
    from shoal._transaction import CommitResult, Transaction, TransactionRetry

__version__ = "0.1.0"

__all__ = [
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

# Each public name and the private module it lives in. The modules are imported on first
# use (PEP 562), so `import shoal.cli` or `import shoal.v1` does not pay for the async
# client (grpc.aio) or anything else a command does not touch.
_HOMES = {
    "AsyncClient": "_async_client",
    "AsyncTransaction": "_async_client",
    "Client": "_client",
    "RetryPolicy": "_connection",
    "ClusterInfo": "_model",
    "MapInfo": "_model",
    "Versioned": "_model",
    "Operation": "_sandbox",
    "SandboxInfo": "_sandbox",
    "Snapshot": "_snapshot",
    "TLSConfig": "_tls",
    "CommitResult": "_transaction",
    "Transaction": "_transaction",
    "TransactionRetry": "_transaction",
    **{name: "_errors" for name in __all__ if name.endswith("Error")},
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shoal' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"shoal.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
