"""Shoal: the Python SDK of the Shoal in-memory data grid.

from shoal import Client
client = Client("127.0.0.1:50051")
client.put("accounts", "alice", {"owner": "Alice", "balance": 100})
"""

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
    ResourceExhaustedError,
    ShoalError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from shoal._model import ClusterInfo, MapInfo, Versioned
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
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RetryPolicy",
    "ShoalError",
    "Transaction",
    "TransactionRetry",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "Versioned",
]
