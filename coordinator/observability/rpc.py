"""Per-RPC metrics and the server span: requests, errors by code, latency, calls in flight.

`RpcTelemetry.wrap` wraps each method's handler on the event loop (coordinator/dispatch
registers every method through it), so admission refusals and queueing for a thread are
inside the measured time. The caller's W3C trace context (the `traceparent` metadata
the SDK sends) parents the server span; dispatch copies the call's context into the
worker thread, so spans and log lines made by the handler are children of this span.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from coordinator.metrics import Registry
from coordinator.observability.tracing import tracer
from coordinator.observability.transactions import commit_origin

Handle = Callable[[Any, Any], Awaitable[Any]]

_propagator = TraceContextTextMapPropagator()
_CONTEXT_KEYS = frozenset({"traceparent", "tracestate"})

# Whose commits a service's calls make (the `origin` label of transaction metrics).
ORIGINS = {
    "shoal.v1.Query": "sql",
    "shoal.v1.Procedures": "procedure",
}


def split_method(full_name: str) -> tuple[str, str]:
    """'/shoal.v1.Data/Put' -> ('shoal.v1.Data', 'Put')."""
    service, _, method = full_name.lstrip("/").partition("/")
    return service, method


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        for member in grpc.StatusCode:
            if member.value[0] == code:
                return str(member.name)
    return "UNKNOWN"


class RpcTelemetry:
    def __init__(self, metrics: Registry) -> None:
        self.requests = metrics.counter(
            "shoal_rpc_requests_total", "calls received, by method", ("service", "method")
        )
        self.errors = metrics.counter(
            "shoal_rpc_errors_total",
            "calls that ended with a status other than OK, by method and code",
            ("service", "method", "code"),
        )
        self.latency = metrics.histogram(
            "shoal_rpc_duration_seconds",
            "time from a call's arrival to its status, by method",
            ("service", "method"),
        )
        self.in_flight = metrics.gauge(
            "shoal_rpc_in_flight", "calls in progress, by method", ("service", "method")
        )

    def wrap(self, full_name: str, handle: Handle) -> Handle:
        service, method = split_method(full_name)
        requests = self.requests.labels(service=service, method=method)
        latency = self.latency.labels(service=service, method=method)
        in_flight = self.in_flight.labels(service=service, method=method)
        errors = self.errors
        span_name = f"{service}/{method}"
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        origin = ORIGINS.get(service, "sdk")

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            requests.inc()
            in_flight.inc()
            carrier = {
                key: str(value)
                for key, value in context.invocation_metadata() or ()
                if key in _CONTEXT_KEYS
            }
            parent = _propagator.extract(carrier) if carrier else None
            span = tracer.start_span(
                span_name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
            )
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            origin_token = commit_origin.set(origin)
            code = "OK"
            try:
                result = await handle(request, context)
                ended = context.code()
                if ended is not None:
                    code = _code_name(ended)
                return result
            except BaseException as error:
                ended = context.code()
                code = _code_name(ended) if ended is not None else _unexpected(error)
                raise
            finally:
                commit_origin.reset(origin_token)
                otel_context.detach(token)
                if code != "OK":
                    span.set_status(Status(StatusCode.ERROR, code))
                    span.set_attribute("rpc.grpc.status_code", code)
                    errors.labels(service=service, method=method, code=code).inc()
                span.end()
                latency.observe(time.perf_counter() - started)
                in_flight.dec()

        return observed


def _unexpected(error: BaseException) -> str:
    import asyncio

    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"
