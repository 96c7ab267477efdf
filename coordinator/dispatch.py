"""Serves the synchronous servicers on grpc.aio: admission, thread pools and stream flow.

Every call is admitted on the event loop against a limit (RESOURCE_EXHAUSTED past it),
then its handler runs in a thread pool: unary calls in the calls pool, each step of a
stream (one message) in the streams pool, and admin calls in a pool of their own, so a
flood of slow queries or stalled readers cannot hold the capacity that keys, admin
calls and health checks need. A stream's next message is produced only after the
previous one was taken by gRPC's flow control, so a reader that stops reading costs a
suspended coroutine and one buffered message, not a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from coordinator.config import ServerConfig
from coordinator.services.guard import Undecodable, tolerant

log = logging.getLogger(__name__)

Behavior = Callable[[Any, Any], Any]
# The check a call passes on the loop before it is admitted (authentication and
# permissions, coordinator/security/gate.py): returns who the call is from, or aborts it.
Gate = Callable[[str, Any, "grpc.aio.ServicerContext[Any, Any]"], Awaitable[Any]]
# Whether the caller a gate admitted may still be served (its token not revoked): asked
# before each message of a stream, so a revocation ends a long stream too.
Recheck = Callable[[Any], bool]


class CallAborted(Exception):
    """Raised in a handler's thread by ``abort``; the loop then ends the call with it."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class CallContext:
    """What a synchronous handler sees of its call: the part of ``grpc.ServicerContext``
    the services use, over the call's grpc.aio context."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], *, watch: bool) -> None:
        self._context = context
        # Read here, on the loop, while the call is alive: grpc.aio frees the call's
        # metadata when it ends, and a handler thread reading it after a cancellation
        # got freed memory ("Invalid encoding" errors, found by a flood of cancelled
        # calls).
        self._metadata: tuple[tuple[str, str | bytes], ...] = tuple(
            context.invocation_metadata() or ()
        )
        # The loop's context of the call (its span, its log fields), for the threads that
        # run a stream's steps.
        self.variables = contextvars.copy_context()
        remaining: float | None = context.time_remaining()
        self._deadline = None if remaining is None else time.monotonic() + remaining
        self._callbacks: list[Callable[[], None]] = []
        self._finished = False
        # Who the call is from, when auth is on (set by the gate before the handler runs).
        self.identity: Any = None
        if watch:
            # A stream learns at once that its call ended (cancelled, deadline passed);
            # a unary call's end is when its handler returns.
            context.add_done_callback(lambda _: self.finish())

    def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise CallAborted(code, details)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._context.set_trailing_metadata(tuple(metadata))

    def invocation_metadata(self) -> Sequence[tuple[str, str | bytes]]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        left: float = max(self._deadline - time.monotonic(), 0.0)
        return left

    def is_active(self) -> bool:
        return not self._finished

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Runs ``callback`` when the call ends (finished, cancelled or timed out)."""
        if self._finished:
            return False
        self._callbacks.append(callback)
        return True

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("a call's end callback failed")


@dataclass
class Admission:
    """Counts calls in progress; touched only on the event loop, so it needs no lock."""

    calls_max: int
    name: str
    in_progress: int = 0

    def enter(self) -> bool:
        if self.in_progress >= self.calls_max:
            return False
        self.in_progress += 1
        return True

    def leave(self) -> None:
        self.in_progress -= 1


class Workers:
    """Threads that run unary handlers for the event loop, one hop each way: a call is
    queued with its loop future, and its answer set through ``call_soon_threadsafe``
    (``run_in_executor`` adds a concurrent future and a second callback chain)."""

    def __init__(self, count: int, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{index}", daemon=True)
            for index in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, behavior: Behavior, request: Any, call: CallContext) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        # The handler runs in the caller's context (its span, its log fields): a
        # contextvar set on the loop does not cross the queue by itself.
        variables = contextvars.copy_context()
        self._queue.put((loop, answer, variables, behavior, request, call))
        return answer

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, answer, variables, behavior, request, call = item
            try:
                result = variables.run(behavior, request, call)
            except BaseException as error:
                loop.call_soon_threadsafe(_fail, answer, error)
            else:
                loop.call_soon_threadsafe(_succeed, answer, result)

    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


def _succeed(answer: asyncio.Future[Any], result: Any) -> None:
    if not answer.done():
        answer.set_result(result)


def _fail(answer: asyncio.Future[Any], error: BaseException) -> None:
    if not answer.done():
        answer.set_exception(error)


@dataclass
class Lane:
    """Where a group of methods runs: its admission and its thread pools."""

    admission: Admission
    calls: Workers
    streams: futures.ThreadPoolExecutor
    # Closes the generators of ended streams; never busy for long, so an ended stream
    # always gives back what it holds (a SQL connection) even when `streams` is full.
    closer: futures.ThreadPoolExecutor
    # How long a stream may wait for its reader to take one message.
    stall_s: float
    # At most this many of the lane's streams have a live generator at once; the others
    # wait on the loop. Without it, statements waiting for a DuckDB connection filled the
    # SQL threads while the steps that would finish the statements holding connections
    # waited behind them, and every statement hung. With threads + connections - 1 live
    # statements, fewer than `threads` can be waiting for a connection (only when all
    # connections are held), so a holder's next step always finds a thread.
    generators: asyncio.Semaphore | None = None


# Admin calls (maps, schemas, cluster information) are few and short; their own lane
# keeps them answering while the others are full. SQL statements stream from their own
# pool, so statements waiting for a DuckDB connection never hold the scans' threads.
ADMIN_SERVICES = frozenset({"shoal.v1.Admin", "shoal.v1.ProcedureAdmin", "shoal.v1.Auth"})
QUERY_SERVICES = frozenset({"shoal.v1.Query"})
# Procedure calls run on a few threads of their own: a call holds the GIL for most of its
# run, and 16 threads taking turns at it cost a third more CPU per call than 2 to 4
# (measured with the 2-partition transfer procedure, docs/architecture/procedures.md).
PROCEDURE_SERVICES = frozenset({"shoal.v1.Procedures"})
ADMIN_WORKERS = 2
CLOSER_WORKERS = 2


@dataclass
class Lanes:
    main: Lane
    query: Lane
    admin: Lane
    procedures: Lane

    @classmethod
    def from_config(cls, config: ServerConfig, *, sql_connections: int) -> Lanes:
        limits = config.limits
        stall_s = config.stream_stall_ms / 1000
        closer = futures.ThreadPoolExecutor(CLOSER_WORKERS, thread_name_prefix="grpc-closer")
        calls = Workers(config.workers, "grpc-calls")
        # Shared by the main and query lanes: one limit over every call but admin calls.
        admission = Admission(limits.concurrent_calls_max, "concurrent_calls_max")
        admin_pool = futures.ThreadPoolExecutor(ADMIN_WORKERS, thread_name_prefix="grpc-admin")
        return cls(
            main=Lane(
                admission,
                calls=calls,
                streams=futures.ThreadPoolExecutor(
                    config.workers, thread_name_prefix="grpc-streams"
                ),
                closer=closer,
                stall_s=stall_s,
            ),
            query=Lane(
                admission,
                calls=calls,
                streams=futures.ThreadPoolExecutor(config.workers, thread_name_prefix="grpc-sql"),
                closer=closer,
                stall_s=stall_s,
                generators=asyncio.Semaphore(config.workers + sql_connections - 1),
            ),
            admin=Lane(
                Admission(limits.admin_calls_max, "admin_calls_max"),
                calls=Workers(ADMIN_WORKERS, "grpc-admin-calls"),
                streams=admin_pool,
                closer=closer,
                stall_s=stall_s,
            ),
            procedures=Lane(
                admission,
                calls=Workers(max(config.procedure_workers, 1), "grpc-procedures"),
                streams=admin_pool,
                closer=closer,
                stall_s=stall_s,
            ),
        )

    def lane_of(self, service: str) -> Lane:
        if service in ADMIN_SERVICES:
            return self.admin
        if service in QUERY_SERVICES:
            return self.query
        if service in PROCEDURE_SERVICES:
            return self.procedures
        return self.main

    def pools(self) -> list[Workers | futures.ThreadPoolExecutor]:
        """Every pool once, the closer last: stopping pools may end streams to close."""
        lanes = (self.main, self.query, self.admin, self.procedures)
        pools: dict[int, Workers | futures.ThreadPoolExecutor] = {}
        for lane in lanes:
            pools.setdefault(id(lane.calls), lane.calls)
            pools.setdefault(id(lane.streams), lane.streams)
        return [*pools.values(), self.main.closer]

    def shutdown(self) -> None:
        for pool in self.pools():
            pool.shutdown(wait=True, cancel_futures=True)


# Methods that never wait (a key's lookup in a dict) are answered on the event loop: a
# hop to a thread and back would cost more than the call.
INLINE_METHODS = frozenset({"/shoal.v1.Data/Get"})

_END = object()


def _next_or_end(iterator: Iterator[Any]) -> Any:
    return next(iterator, _END)


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("closing a stream's generator failed")


def close_when_done(
    closer: futures.Executor, step: futures.Future[Any] | None, iterator: Iterator[Any]
) -> None:
    """Closes a stream's generator (running its cleanup: a SQL connection goes back to
    its pool) once its last step is done; a step still running (a cancelled call's)
    cannot be interrupted, and a generator cannot be closed while it runs."""
    if step is None or step.done():
        _submit_close(closer, iterator)
    else:
        step.add_done_callback(lambda _: _submit_close(closer, iterator))


def _submit_close(closer: futures.Executor, iterator: Iterator[Any]) -> None:
    try:
        closer.submit(_close, iterator)
    except RuntimeError:
        # The server is stopping and the closer is shut down: close here.
        _close(iterator)


async def _refuse(context: grpc.aio.ServicerContext[Any, Any], admission: Admission) -> None:
    await context.abort(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the server is serving its limit of {admission.calls_max} concurrent calls "
        f"({admission.name}); retry later",
    )


async def _end(context: grpc.aio.ServicerContext[Any, Any], error: Exception, name: str) -> None:
    if isinstance(error, CallAborted):
        await context.abort(error.code, error.details)
        return
    log.error("unexpected error in %s", name, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def unary_behavior(behavior: Behavior, lane: Lane, name: str, gate: Gate | None = None) -> Behavior:
    if name in INLINE_METHODS:
        return inline_behavior(behavior, lane, name, gate)

    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        identity = None if gate is None else await gate(name, request, context)
        if not lane.admission.enter():
            await _refuse(context, lane.admission)
        try:
            call = CallContext(context, watch=False)
            call.identity = identity
            try:
                return await lane.calls.run(behavior, request, call)
            except Exception as error:
                await _end(context, error, name)
            finally:
                call.finish()
        finally:
            lane.admission.leave()

    return handle


def inline_behavior(
    behavior: Behavior, lane: Lane, name: str, gate: Gate | None = None
) -> Behavior:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if gate is not None:
            await gate(name, request, context)
        try:
            return behavior(request, CallContext(context, watch=False))
        except Exception as error:
            await _end(context, error, name)

    return handle


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Marks a write's failure as seen: the call was cancelled while it waited."""
    if not task.cancelled():
        task.exception()


def stream_behavior(
    behavior: Behavior,
    lane: Lane,
    name: str,
    check: Gate | None = None,
    recheck: Recheck | None = None,
) -> Behavior:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        identity = None if check is None else await check(name, request, context)
        if not lane.admission.enter():
            await _refuse(context, lane.admission)
        iterator: Iterator[Any] | None = None
        step: futures.Future[Any] | None = None
        gate = lane.generators
        holding = False
        try:
            call = CallContext(context, watch=True)
            call.identity = identity
            try:
                if gate is not None:
                    await gate.acquire()
                    holding = True
                iterator = iter(behavior(request, call))
                while True:
                    # One message at a time: the next is made only once gRPC took the last.
                    # Steps never overlap, so each runs in the call's one context.
                    step = lane.streams.submit(call.variables.run, _next_or_end, iterator)
                    message = await asyncio.wrap_future(step)
                    step = None
                    if message is _END:
                        return
                    if recheck is not None and identity is not None and not recheck(identity):
                        raise CallAborted(
                            grpc.StatusCode.UNAUTHENTICATED,
                            "the credentials of this stream were revoked or expired",
                        )
                    # Not wait_for: a write cannot be cancelled and then followed by a status.
                    write = asyncio.ensure_future(context.write(message))
                    write.add_done_callback(_retrieve)
                    done, _ = await asyncio.wait((write,), timeout=lane.stall_s)
                    if not done:
                        # The reader stopped reading: the stream gives back what its
                        # generator holds (a SQL connection, a snapshot) and keeps only
                        # this message, then ends once the reader takes it.
                        stalled, iterator = iterator, None
                        close_when_done(lane.closer, None, stalled)
                        if gate is not None and holding:
                            gate.release()
                            holding = False
                    await write
                    if iterator is None:
                        raise CallAborted(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"the reader took no message for {lane.stall_s:g} s "
                            "(stream_stall_ms), so the stream was ended",
                        )
            except Exception as error:
                await _end(context, error, name)
        finally:
            lane.admission.leave()
            if iterator is not None:
                close_when_done(lane.closer, step, iterator)
            if gate is not None and holding:
                gate.release()

    return handle


async def _refuse_undecodable(
    name: str, request: Undecodable, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    log.info("INVALID_ARGUMENT: %s: undecodable request (%s)", name, request.reason)
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the request body is not a valid message for {name} ({request.reason})",
    )


def loop_handler(name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """An async handler (health checking, reflection) guarded as the servicers are: an
    undecodable body is INVALID_ARGUMENT, an unimplemented method UNIMPLEMENTED, one log
    line each."""
    if handler.request_streaming:
        return _loop_stream_handler(name, handler)

    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, Undecodable):
            await _refuse_undecodable(name, request, context)
        behavior = handler.unary_unary or handler.unary_stream
        try:
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result
        except NotImplementedError:
            log.info("UNIMPLEMENTED: %s", name)
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented")

    make = (
        grpc.unary_unary_rpc_method_handler
        if handler.unary_unary is not None
        else grpc.unary_stream_rpc_method_handler
    )
    return make(
        guarded,
        request_deserializer=tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _loop_stream_handler(name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The same for a method that streams requests (reflection): each request is checked
    as it arrives, before the servicer takes it."""

    async def guarded(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async def checked() -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await _refuse_undecodable(name, request, context)
                yield request

        async for reply in handler.stream_stream(checked(), context):
            yield reply

    return grpc.stream_stream_rpc_method_handler(
        guarded,
        request_deserializer=tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


class OnLoop:
    """Stands in for a grpc server for servicers that run on the event loop (health)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        guarded = {
            method: loop_handler(f"/{service}/{method}", handler)
            for method, handler in handlers.items()
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, guarded),)
        )
        with contextlib.suppress(AttributeError):
            self._server.add_registered_method_handlers(service, guarded)


class Registrar:
    """Stands in for a grpc server in the generated ``add_*Servicer_to_server`` functions,
    and registers each method on the real server through its lane."""

    def __init__(
        self,
        server: grpc.aio.Server,
        lane_of: Callable[[str], Lane],
        *,
        wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler] | None = None,
        observe: Callable[[str, Behavior], Behavior] | None = None,
        gate: Gate | None = None,
        recheck: Recheck | None = None,
    ) -> None:
        self._server = server
        self._lane_of = lane_of
        self._wrap = wrap
        # Wraps each method's handler on the loop (metrics, the server span).
        self._observe = observe or (lambda name, behavior: behavior)
        self._gate = gate
        self._recheck = recheck
        # Every method registered, so the server can tell which have no permission rule.
        self.methods: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        # The generated code registers each service twice; the registered handlers are used.
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        lane = self._lane_of(service)
        adapted: dict[str, grpc.RpcMethodHandler] = {}
        for method, given in handlers.items():
            name = f"/{service}/{method}"
            handler = given if self._wrap is None else self._wrap(name, given)
            self.methods.append(name)
            if handler.unary_unary is not None:
                adapted[method] = grpc.unary_unary_rpc_method_handler(
                    self._observe(
                        name, unary_behavior(handler.unary_unary, lane, name, self._gate)
                    ),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
            elif handler.unary_stream is not None:
                adapted[method] = grpc.unary_stream_rpc_method_handler(
                    self._observe(
                        name,
                        stream_behavior(
                            handler.unary_stream, lane, name, self._gate, self._recheck
                        ),
                    ),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
            else:
                raise TypeError(f"{name}: only unary and server-streaming methods are served")
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, adapted),)
        )
        with contextlib.suppress(AttributeError):
            self._server.add_registered_method_handlers(service, adapted)
