"""Channels to one or more coordinators, with failover and retries of idempotent calls.

Any coordinator can serve any call, so on UNAVAILABLE an idempotent call moves to the
next address and tries again with exponential backoff (tenacity). Writes carry a
client-chosen request or transaction id, which makes their retries idempotent too.
Each client starts at a coordinator drawn at random, so many clients given the same list
spread their calls over every coordinator of a shared backend; a call that is not
idempotent is not retried, but the client's next calls go to the next address.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from shoal._errors import ShoalError, UnavailableError, from_rpc_error
from shoal._tls import TLSConfig, explain_unavailable
from shoal._tracing import async_interceptors, intercepted
from shoal.v1 import (
    admin_pb2_grpc,
    data_pb2_grpc,
    query_pb2_grpc,
    sketches_pb2_grpc,
    transactions_pb2_grpc,
)

if TYPE_CHECKING:
    import tenacity

Reply = TypeVar("Reply")

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 0),
]


def parse_targets(target: str | Sequence[str]) -> list[str]:
    if isinstance(target, str):
        targets = [item.strip() for item in target.split(",") if item.strip()]
    else:
        targets = [item.strip() for item in target if item.strip()]
    if not targets:
        raise ValueError("give at least one coordinator address, like '127.0.0.1:50051'")
    return [item.removeprefix("grpc://") for item in targets]


@dataclass
class RetryPolicy:
    """How idempotent calls are retried on UNAVAILABLE: the n-th wait is drawn uniformly
    from [0, min(max_backoff_s, initial_backoff_s * 2**n)] ("full jitter")."""

    attempts: int = 5
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0

    def retrying(self) -> tenacity.Retrying:
        # Imported on the first retry: most processes never retry, and a short-lived one
        # (the `shoal` command) should not pay for it at start-up.
        import tenacity

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_random_exponential(
                multiplier=self.initial_backoff_s, max=self.max_backoff_s
            ),
            retry=tenacity.retry_if_exception_type(UnavailableError),
            reraise=True,
        )

    def async_retrying(self) -> tenacity.AsyncRetrying:
        import tenacity

        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_random_exponential(
                multiplier=self.initial_backoff_s, max=self.max_backoff_s
            ),
            retry=tenacity.retry_if_exception_type(UnavailableError),
            reraise=True,
        )


def _wait_ready(channel: grpc.Channel, timeout_s: float) -> bool:
    """True once the channel is READY; False on its first failure to connect, or when
    ``timeout_s`` passes first.

    grpc's public way to watch a channel, ``subscribe``, leaves a helper thread polling
    it for a while afterwards, and a channel closed under that thread makes it print
    "Channel closed!" tracebacks. The channel's core object answers the same questions
    synchronously in this thread (grpc's own helper asks it the same way), so no thread
    outlives the wait.
    """
    from grpc._cython import cygrpc

    core = channel._channel
    states = cygrpc.ConnectivityState
    deadline = time.time() + max(timeout_s, 0.0)
    state = core.check_connectivity_state(True)
    while state not in (states.ready, states.transient_failure, states.shutdown):
        if not core.watch_connectivity_state(state, deadline).success:
            return False  # the deadline passed first
        state = core.check_connectivity_state(False)
    return bool(state == states.ready)


class Stubs:
    def __init__(self, channel: Any, raw_channel: Any = None) -> None:
        # `channel` carries the trace context (shoal._tracing); `raw_channel` is grpc's
        # own, whose connectivity `_wait_ready` reads.
        self.channel = channel
        self.raw_channel = channel if raw_channel is None else raw_channel
        self.data = data_pb2_grpc.DataStub(channel)
        self.admin = admin_pb2_grpc.AdminStub(channel)
        self.transactions = transactions_pb2_grpc.TransactionsStub(channel)
        self.query = query_pb2_grpc.QueryStub(channel)
        self.sketches = sketches_pb2_grpc.SketchesStub(channel)
        self.extra: dict[str, Any] = {}


class Connection:
    """Synchronous channels, one per address, opened on first use."""

    def __init__(
        self, targets: list[str], retry: RetryPolicy, tls: TLSConfig | None = None
    ) -> None:
        self.targets = targets
        self.retry = retry
        self.tls = tls
        self._index = random.randrange(len(targets))
        self._stubs: list[Stubs | None] = [None] * len(targets)
        self._lock = threading.Lock()
        self.current = self._open(self._index)

    def _open(self, index: int) -> Stubs:
        stubs = self._stubs[index]
        if stubs is None:
            target = self.targets[index]
            if self.tls is None:
                channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.secure_channel(
                    target,
                    self.tls.credentials(),
                    options=[*CHANNEL_OPTIONS, *self.tls.channel_options()],
                )
            stubs = Stubs(intercepted(channel), channel)
            self._stubs[index] = stubs
        return stubs

    def connect(self, timeout_s: float) -> bool:
        """Waits until a coordinator accepts a connection and makes it the current one;
        False when none did within ``timeout_s``.

        A refused connection is known at once (the channel reports TRANSIENT_FAILURE),
        so this answers fast when nothing listens, and within ``timeout_s`` when the
        address swallows packets, instead of after a call's whole deadline and retries.
        """
        deadline = time.monotonic() + timeout_s
        for offset in range(len(self.targets)):
            index = (self._index + offset) % len(self.targets)
            if _wait_ready(self._open(index).raw_channel, deadline - time.monotonic()):
                with self._lock:
                    self._index = index
                    self.current = self._open(index)
                return True
        return False

    def fail_over(self, failed: Stubs) -> None:
        with self._lock:
            if self.current is failed and len(self.targets) > 1:
                self._index = (self._index + 1) % len(self.targets)
                self.current = self._open(self._index)

    def call(
        self,
        method: Callable[[Stubs], Callable[..., Reply]],
        request: Any,
        *,
        timeout_s: float,
        idempotent: bool,
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> Reply:
        try:
            return self._call(
                method, request, timeout_s=timeout_s, idempotent=idempotent, metadata=metadata
            )
        except UnavailableError as error:
            explained = explain_unavailable(error.message, self.tls)
            if explained is error.message:
                raise
            raise UnavailableError(explained, trace_id=error.trace_id) from None

    def _call(
        self,
        method: Callable[[Stubs], Callable[..., Reply]],
        request: Any,
        *,
        timeout_s: float,
        idempotent: bool,
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> Reply:
        stubs = self.current
        try:
            return method(stubs)(request, timeout=timeout_s, metadata=metadata)
        except grpc.RpcError as error:
            failure = from_rpc_error(error)
        if not isinstance(failure, UnavailableError):
            raise failure
        self.fail_over(stubs)
        if not idempotent:
            raise failure
        for attempt in self.retry.retrying():
            with attempt:
                stubs = self.current
                try:
                    return method(stubs)(request, timeout=timeout_s, metadata=metadata)
                except grpc.RpcError as error:
                    failure = from_rpc_error(error)
                    if isinstance(failure, UnavailableError):
                        self.fail_over(stubs)
                    raise failure from None
        raise failure  # pragma: no cover - tenacity reraises

    def close(self) -> None:
        for stubs in self._stubs:
            if stubs is not None:
                stubs.channel.close()
        self._stubs = [None] * len(self.targets)


class AsyncConnection:
    """grpc.aio channels, one per address, opened on first use."""

    def __init__(
        self, targets: list[str], retry: RetryPolicy, tls: TLSConfig | None = None
    ) -> None:
        self.targets = targets
        self.retry = retry
        self.tls = tls
        self._index = random.randrange(len(targets))
        self._stubs: list[Stubs | None] = [None] * len(targets)
        self.current = self._open(self._index)

    def _open(self, index: int) -> Stubs:
        stubs = self._stubs[index]
        if stubs is None:
            target = self.targets[index]
            if self.tls is None:
                channel = grpc.aio.insecure_channel(
                    target, options=CHANNEL_OPTIONS, interceptors=async_interceptors()
                )
            else:
                channel = grpc.aio.secure_channel(
                    target,
                    self.tls.credentials(),
                    options=[*CHANNEL_OPTIONS, *self.tls.channel_options()],
                    interceptors=async_interceptors(),
                )
            stubs = Stubs(channel)
            self._stubs[index] = stubs
        return stubs

    def fail_over(self, failed: Stubs) -> None:
        if self.current is failed and len(self.targets) > 1:
            self._index = (self._index + 1) % len(self.targets)
            self.current = self._open(self._index)

    async def call(
        self,
        method: Callable[[Stubs], Callable[..., Any]],
        request: Any,
        *,
        timeout_s: float,
        idempotent: bool,
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> Any:
        try:
            return await self._call(
                method, request, timeout_s=timeout_s, idempotent=idempotent, metadata=metadata
            )
        except UnavailableError as error:
            explained = explain_unavailable(error.message, self.tls)
            if explained is error.message:
                raise
            raise UnavailableError(explained, trace_id=error.trace_id) from None

    async def _call(
        self,
        method: Callable[[Stubs], Callable[..., Any]],
        request: Any,
        *,
        timeout_s: float,
        idempotent: bool,
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> Any:
        stubs = self.current
        try:
            return await method(stubs)(request, timeout=timeout_s, metadata=metadata)
        except grpc.RpcError as error:
            failure: ShoalError = from_rpc_error(error)
        if not isinstance(failure, UnavailableError):
            raise failure
        self.fail_over(stubs)
        if not idempotent:
            raise failure
        async for attempt in self.retry.async_retrying():
            with attempt:
                stubs = self.current
                try:
                    return await method(stubs)(request, timeout=timeout_s, metadata=metadata)
                except grpc.RpcError as error:
                    failure = from_rpc_error(error)
                    if isinstance(failure, UnavailableError):
                        self.fail_over(stubs)
                    raise failure from None
        raise failure  # pragma: no cover - tenacity reraises

    async def close(self) -> None:
        for stubs in self._stubs:
            if stubs is not None:
                await stubs.channel.close()
        self._stubs = [None] * len(self.targets)
