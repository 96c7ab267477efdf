"""Which optional services a server offers, so scenarios needing a missing one are skipped.

SQL and sketches arrive in later issues. A scenario needing one is skipped, with a
message saying why, when the SDK has no such call (AttributeError) or the server
answers UNIMPLEMENTED; any other answer, an error included, means the service is
there, so its errors are counted as failures rather than hidden.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import grpc

from shoal import Client

log = logging.getLogger("shoal.load")

KEY_VALUE = "kv"
TRANSACTIONS = "transactions"
SQL = "sql"
SKETCHES = "sketches"
PROCEDURES = "procedures"
# The procedure the load test calls (loadtests/procedures/bank.py).
BANK_PROCEDURE = "bank_transfer"

# The SDK maps UNIMPLEMENTED to InternalError, keeping grpc's details as the message.
_UNIMPLEMENTED_MESSAGES = ("method not found", "method not implemented", "unimplemented")


def is_unimplemented(error: BaseException) -> bool:
    """Whether an error means "this call does not exist here" rather than a failure."""
    if isinstance(error, AttributeError | NotImplementedError):
        return True
    code = getattr(error, "code", None)
    if callable(code):  # a raw grpc.RpcError
        code = code()
    if code in (grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED"):
        return True
    return type(error).__name__ == "InternalError" and any(
        message in str(error).lower() for message in _UNIMPLEMENTED_MESSAGES
    )


def _probe_sql(client: Client) -> None:
    sql: Any = client.sql  # type: ignore[attr-defined,unused-ignore]
    sql("SELECT 1").fetchall()


def _probe_sketches(client: Client, prefix: str) -> None:
    sketches: Any = client.sketches  # type: ignore[attr-defined,unused-ignore]
    sketches.estimate(f"{prefix}_feature_probe", "probe")


class ProcedureMissingError(Exception):
    """The server serves procedures, but not the one the load test calls."""


def _probe_procedures(client: Client) -> None:
    procedures: Any = client.procedures  # type: ignore[attr-defined,unused-ignore]
    if BANK_PROCEDURE not in {item["name"] for item in procedures()}:
        raise ProcedureMissingError(
            f"no procedure {BANK_PROCEDURE} (shoal serve --procedures loadtests/procedures)"
        )


def probe(client: Client, feature: str, prefix: str = "load") -> str | None:
    """None when the server offers the feature, else the reason it is missing."""
    probes: dict[str, Callable[[], None]] = {
        SQL: lambda: _probe_sql(client),
        SKETCHES: lambda: _probe_sketches(client, prefix),
        PROCEDURES: lambda: _probe_procedures(client),
    }
    check = probes.get(feature)
    if check is None:
        return None
    try:
        check()
    except Exception as error:
        if is_unimplemented(error) or isinstance(error, ProcedureMissingError):
            return f"{type(error).__name__}: {error}"
    return None


class FeatureCache:
    """The probe answers of one process, each feature probed once per target: the users
    that start together wait for the first one's probe rather than each sending one (a
    burst of probes, SQL streams among them, is load the test did not ask for)."""

    def __init__(self) -> None:
        self._missing: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()
        self._probing: dict[tuple[str, str], threading.Lock] = {}

    def missing(self, client: Client, target: str, feature: str, prefix: str) -> str | None:
        key = (target, feature)
        with self._lock:
            if key in self._missing:
                return self._missing[key]
            probing = self._probing.setdefault(key, threading.Lock())
        with probing:
            with self._lock:
                if key in self._missing:
                    return self._missing[key]
            reason = probe(client, feature, prefix)
            with self._lock:
                self._missing[key] = reason
        if reason is not None:
            log.warning(
                "skipping the %s tasks: %s does not offer %s (%s)",
                feature,
                target,
                feature.upper() if feature == SQL else feature,
                reason,
            )
        return reason


FEATURES = FeatureCache()
