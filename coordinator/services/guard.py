"""Guards the servicers' methods: a request body that does not parse is INVALID_ARGUMENT,
and a method the server does not implement is UNIMPLEMENTED, each with one log line.

grpcio answers a request it cannot deserialize with INTERNAL (UNKNOWN on grpc.aio) and
logs an ERROR with a traceback, so random bytes sent to any method flood the log and
look like a server fault; it logs a traceback too for every call of a method whose
servicer raises NotImplementedError. `tolerant` makes a deserializer that never raises:
an undecodable body becomes an `Undecodable` request, which the method's behaviour,
wrapped by `tolerate_undecodable` (the threaded servicers) or `dispatch.loop_handler`
(health and reflection, on the event loop), answers with INVALID_ARGUMENT before the
servicer sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from coordinator.services.errors import abort_with
from grid.errors import InvalidArgument

log = logging.getLogger(__name__)

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class Undecodable:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:
            return Undecodable(f"{type(error).__name__}: {error}")

    return deserialize


def _refusing(method: str, behaviour: Behaviour, streaming: bool) -> Behaviour:
    """The behaviour, answering an Undecodable request with INVALID_ARGUMENT."""

    def refuse(request: Undecodable, context: grpc.ServicerContext) -> None:
        abort_with(
            context,
            InvalidArgument(
                f"the request body is not a valid message for {method} ({request.reason})",
                field="request",
            ),
        )

    def unimplemented(context: grpc.ServicerContext) -> None:
        log.info("UNIMPLEMENTED: %s", method)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")

    if streaming:

        def stream(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, Undecodable):
                refuse(request, context)
                return
            try:
                yield from behaviour(request, context)
            except NotImplementedError:
                unimplemented(context)

        return stream

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            refuse(request, context)
        try:
            return behaviour(request, context)
        except NotImplementedError:
            unimplemented(context)

    return unary


def tolerate_undecodable(method: str, handler: Any) -> Any:
    """The method's handler (unary request) with a deserializer that never raises."""
    deserializer = tolerant(handler.request_deserializer)
    if handler.response_streaming:
        return handler._replace(
            request_deserializer=deserializer,
            unary_stream=_refusing(method, handler.unary_stream, streaming=True),
        )
    return handler._replace(
        request_deserializer=deserializer,
        unary_unary=_refusing(method, handler.unary_unary, streaming=False),
    )
