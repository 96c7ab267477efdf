"""Runs procedure calls: arguments in, one transaction per attempt, retries, answers out.

A call decodes its JSON arguments and checks them against the function's parameters,
then runs attempts until one commits: each attempt takes a read version, runs the
function with a fresh `ProcedureTransaction`, and commits what it wrote through the
transaction manager (nothing to commit when it only read: its reads saw one read
version, a prefix of the commit order). A conflict (at a read, at a write that would
abort, at commit) runs the function again after a random backoff, up to
`attempts_max` times and within the call's time limit. Everything else ends the call:
the procedure's own exception as FAILED_PRECONDITION naming its type, a grid error
with its own status, the time limit as DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import inspect
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from coordinator.clock import Clock
from coordinator.node import Node
from coordinator.pipelines.transaction import encode_value
from coordinator.procedures.discovery import load_procedures
from coordinator.procedures.guard import (
    ProcedureIORefused,
    ProcedureTimeout,
    Watchdog,
    install_audit_hook,
)
from coordinator.procedures.transaction import GridAccess, ProcedureTransaction
from coordinator.transactions.manager import TransactionManager
from grid.errors import (
    Conflict,
    FailedPrecondition,
    GridError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from grid.protocol import Read, Write
from shoal import _codec
from shoal.procedures import ProcedureSpec

# Checks a run's reads and writes before it commits or answers; raises to refuse.
Authorize = Callable[[Sequence[Read], Sequence[Write]], None]

log = logging.getLogger(__name__)

# Outcomes counted per procedure (ListProcedures shows them).
OUTCOMES = ("committed", "failed", "conflicted", "timed_out", "retries")
# Room in a reply for what surrounds the result (the other fields, framing).
RESULT_HEADROOM_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProcedureConfig:
    # Time limit of one call, all attempts included (0: none).
    timeout_ms: int = 5000
    # Attempts of one call before its conflict is answered ABORTED.
    attempts_max: int = 20
    # The n-th retry waits a random time up to min(backoff_max_ms, backoff_initial_ms * 2**n).
    backoff_initial_ms: float = 1.0
    backoff_max_ms: float = 50.0


@dataclass(frozen=True)
class CallResult:
    result_json: bytes
    attempts: int
    # The commit's version (0 when the call wrote nothing).
    version: int


class ProcedureFailed(FailedPrecondition):
    """The procedure raised: its exception's type travels as the answer's rule."""

    def __init__(self, name: str, error: BaseException) -> None:
        kind = type(error).__name__
        super().__init__(f"procedure '{name}' raised {kind}: {error}", field="procedure")
        self.rule = kind


class ProcedureTimedOut(GridError):
    status = "DEADLINE_EXCEEDED"


@dataclass(frozen=True)
class ProcedureStatus:
    spec: ProcedureSpec
    counters: dict[str, int]


def _arguments(
    spec: ProcedureSpec, args_json: bytes, kwargs_json: bytes
) -> tuple[list[Any], dict[str, Any]]:
    try:
        args = _codec.decode(args_json) if args_json else []
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(f"args_json is not valid JSON: {error}", field="args") from None
    try:
        kwargs = _codec.decode(kwargs_json) if kwargs_json else {}
    except orjson.JSONDecodeError as error:
        raise InvalidArgument(f"kwargs_json is not valid JSON: {error}", field="kwargs") from None
    if not isinstance(args, list):
        raise InvalidArgument("args_json must be a JSON array of arguments", field="args")
    if not isinstance(kwargs, dict):
        raise InvalidArgument("kwargs_json must be a JSON object of arguments", field="kwargs")
    return args, kwargs


def procedures_for(node: Node) -> Procedures:
    """The procedures `--procedures` names, served over the node's grid (none when unset)."""
    config = node.config
    specs = load_procedures(config.procedures) if config.procedures else {}
    return Procedures(
        specs,
        GridAccess(
            catalog=node.catalog,
            planner=node.planner,
            partitions=node.backend.partitions,
            partition_of=node.partitioner.partition_of,
            limits=node.limits,
        ),
        node.transactions,
        config=ProcedureConfig(
            timeout_ms=config.procedure_timeout_ms,
            attempts_max=config.procedure_attempts_max,
        ),
        clock=node.clock,
        rng=random.Random(node.rng.random()),
    )


def _positional_counts(signature: inspect.Signature) -> tuple[int, int] | None:
    """How many positional arguments after `tx` a call may pass without keywords (least,
    most), or None when the signature needs a full bind (keyword-only without default)."""
    parameters = list(signature.parameters.values())[1:]
    least = most = 0
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            if parameter.default is parameter.empty:
                least = most
        elif parameter.kind is parameter.VAR_POSITIONAL:
            most = 1 << 30
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return None
    return least, most


class Procedures:
    """The procedures a coordinator serves, and the running of their calls."""

    def __init__(
        self,
        specs: Mapping[str, ProcedureSpec],
        grid: GridAccess,
        manager: TransactionManager,
        *,
        config: ProcedureConfig,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._specs = dict(specs)
        self._signatures = {
            name: inspect.signature(spec.function) for name, spec in self._specs.items()
        }
        self._positional = {
            name: _positional_counts(signature) for name, signature in self._signatures.items()
        }
        self._grid = grid
        self._manager = manager
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._watchdog = Watchdog(config.timeout_ms)
        self._counters: dict[str, Counter[str]] = {name: Counter() for name in self._specs}
        self._counters_lock = threading.Lock()
        if self._specs:
            install_audit_hook()
            self._watchdog.start()

    def close(self) -> None:
        self._watchdog.stop()

    def statuses(self) -> list[ProcedureStatus]:
        with self._counters_lock:
            return [
                ProcedureStatus(
                    spec, {outcome: self._counters[name][outcome] for outcome in OUTCOMES}
                )
                for name, spec in sorted(self._specs.items())
            ]

    def _count(self, name: str, outcome: str, amount: int = 1) -> None:
        with self._counters_lock:
            self._counters[name][outcome] += amount

    def call(
        self,
        name: str,
        args_json: bytes = b"",
        kwargs_json: bytes = b"",
        call_id: bytes = b"",
        *,
        authorize: Authorize | None = None,
    ) -> CallResult:
        """Runs the procedure as one transaction. `authorize` sees every key it read and
        wrote before anything commits or answers, and raises to refuse (auth on: the
        caller's permissions on every map the procedure touched)."""
        spec = self._specs.get(name)
        if spec is None:
            known = ", ".join(sorted(self._specs)) or "none are loaded"
            raise NotFound(f"no procedure named '{name}' (known: {known})", field="name")
        if call_id and len(call_id) < 8:
            raise InvalidArgument("call_id must hold at least 8 random bytes", field="call_id")
        args, kwargs = _arguments(spec, args_json, kwargs_json)
        counts = self._positional[name]
        try:
            # The common call (positional arguments only, as many as the function takes)
            # fits without binding; anything else is bound as Python would.
            if kwargs or counts is None or not counts[0] <= len(args) <= counts[1]:
                self._signatures[name].bind(None, *args, **kwargs)
        except TypeError as error:
            raise InvalidArgument(
                f"arguments do not fit procedure '{name}({spec.parameters})': {error}",
                field="args",
            ) from None
        run = self._watchdog.begin()
        try:
            result = self._attempts(spec, args, kwargs, call_id or os.urandom(16), run, authorize)
        except (ProcedureTimeout, ProcedureIORefused) as error:
            run.finish()
            stopped = run.stopped or error
            if isinstance(stopped, ProcedureTimeout):
                self._count(name, "timed_out")
                raise ProcedureTimedOut(
                    f"procedure '{name}': {stopped}", field="procedure"
                ) from None
            self._count(name, "failed")
            raise ProcedureFailed(name, stopped) from None
        except Conflict:
            self._count(name, "conflicted")
            raise
        except GridError:
            self._count(name, "failed")
            raise
        finally:
            self._watchdog.end(run)
        self._count(name, "committed")
        if result.attempts > 1:
            self._count(name, "retries", result.attempts - 1)
        return result

    def _attempts(
        self,
        spec: ProcedureSpec,
        args: list[Any],
        kwargs: dict[str, Any],
        call_id: bytes,
        run: Any,
        authorize: Authorize | None = None,
    ) -> CallResult:
        function = spec.function
        manager = self._manager
        attempts_max = max(self.config.attempts_max, 1)
        attempt = 0
        while True:
            attempt += 1
            tx = ProcedureTransaction(self._grid, manager.read_version(), run)
            try:
                try:
                    run.enter_procedure()
                    try:
                        result = function(tx, *args, **kwargs)
                    finally:
                        # Back in the coordinator's code: nothing can interrupt it from here.
                        try:
                            run.leave_procedure()
                        finally:
                            tx.end()
                except BaseException:
                    # An exception's message goes back to the caller and may carry what
                    # the procedure read: the caller must be allowed those reads first.
                    if authorize is not None:
                        authorize(tx.reads(), tx.writes())
                    raise
                try:
                    result_json = encode_value(result)
                except InvalidArgument as error:
                    raise ProcedureFailed(
                        spec.name, TypeError(f"its result cannot be sent as JSON: {error}")
                    ) from None
                # Refused before anything commits: an answer too large to send would
                # leave the caller with an error for a call that did commit.
                result_max = self._grid.limits.message_bytes_max - RESULT_HEADROOM_BYTES
                if len(result_json) > result_max:
                    raise ResourceExhausted(
                        f"procedure '{spec.name}' returned {len(result_json)} bytes of JSON, "
                        f"more than a reply carries ({result_max}); nothing was committed",
                        field="result",
                    )
                writes = tx.writes()
                if authorize is not None:
                    authorize(tx.reads(), writes)
                if not writes:
                    return CallResult(result_json, attempt, 0)
                txn_id = call_id + attempt.to_bytes(2, "big")
                committed = manager.commit(txn_id, tx.reads(), writes)
                version = max(committed.versions, default=0)
                return CallResult(result_json, attempt, version)
            except Conflict:
                if attempt >= attempts_max:
                    raise
            except (GridError, ProcedureTimeout, ProcedureIORefused):
                raise
            except BaseException as error:
                raise ProcedureFailed(spec.name, error) from None
            self._backoff(attempt, run.deadline_s)

    def _backoff(self, attempt: int, deadline_s: float) -> None:
        config = self.config
        ceiling_ms = min(config.backoff_max_ms, config.backoff_initial_ms * 2 ** min(attempt, 16))
        wait_s = self._rng.uniform(0, ceiling_ms) / 1000
        left_s = deadline_s - time.monotonic()
        if left_s <= wait_s:
            raise ProcedureTimeout(
                f"the procedure ran past its time limit of {config.timeout_ms} ms (retrying "
                f"a conflict, attempt {attempt})"
            )
        self._clock.sleep_s(wait_s)
