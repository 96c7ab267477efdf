"""W3C trace context on every call: the SDK's gRPC client interceptors.

When OpenTelemetry's API is installed (it is not a dependency of the SDK), each call is a
CLIENT span, child of the application's current span, and its context travels in the
call's metadata as `traceparent` / `tracestate`, so the server's spans join the same
trace. Without OpenTelemetry, or without a tracer provider configured by the
application, calls go out as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

try:
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised where OpenTelemetry is absent
    AVAILABLE = False

TRACER_NAME = "shoal.client"


def _span_name(method: Any) -> str:
    text = method.decode() if isinstance(method, bytes) else str(method)
    return text.lstrip("/")


def _with_context(details: Any) -> Any:
    """The call's details with the current trace context added to its metadata."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    if not carrier:
        return details
    metadata = [*(details.metadata or ()), *carrier.items()]
    return details._replace(metadata=metadata)


class TracingInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
):
    """The synchronous channel's interceptor."""

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        tracer = trace.get_tracer(TRACER_NAME)
        with tracer.start_as_current_span(
            _span_name(details.method),
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc"},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            outcome = continuation(_with_context(details), request)
            if span.is_recording():
                code = outcome.code()
                if code is not None and code != grpc.StatusCode.OK:
                    span.set_status(Status(StatusCode.ERROR, code.name))
                    span.set_attribute("rpc.grpc.status_code", code.name)
            return outcome

    def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        # The span marks the call's start: a stream's end is its reader's business.
        tracer = trace.get_tracer(TRACER_NAME)
        with tracer.start_as_current_span(
            _span_name(details.method),
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.grpc.streaming": True},
        ):
            return continuation(_with_context(details), request)


class AsyncTracingInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[misc]
):
    """The grpc.aio channel's interceptor."""

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        tracer = trace.get_tracer(TRACER_NAME)
        with tracer.start_as_current_span(
            _span_name(details.method),
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc"},
        ):
            call = await continuation(_with_context(details), request)
            await call
            return call

    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        tracer = trace.get_tracer(TRACER_NAME)
        with tracer.start_as_current_span(
            _span_name(details.method),
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.grpc.streaming": True},
        ):
            return await continuation(_with_context(details), request)


def intercepted(channel: grpc.Channel) -> grpc.Channel:
    """The channel with trace context on every call (the channel itself without
    OpenTelemetry)."""
    if not AVAILABLE:
        return channel
    return grpc.intercept_channel(channel, TracingInterceptor())


def async_interceptors() -> list[grpc.aio.ClientInterceptor]:
    return [AsyncTracingInterceptor()] if AVAILABLE else []
