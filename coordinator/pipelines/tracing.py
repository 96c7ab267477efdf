"""W3C trace context from Kafka headers to the span of the batch that applies the events.

The first record of a batch that carries a ``traceparent`` header becomes the parent of
the batch's span, so one trace runs from the producer through the pipeline to the
commit; other records' trace contexts become links of the span.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
LINKS_MAX = 16

_propagator = TraceContextTextMapPropagator()


def carrier_of(headers: Iterable[tuple[str, bytes]]) -> dict[str, str] | None:
    """The trace-context headers of a record, or None when it has no traceparent."""
    carrier: dict[str, str] | None = None
    for name, value in headers:
        if name in (TRACEPARENT, TRACESTATE):
            if carrier is None:
                carrier = {}
            carrier[name] = value.decode("ascii", errors="replace")
    if carrier is None or TRACEPARENT not in carrier:
        return None
    return carrier


def batch_context(
    carriers: Iterable[dict[str, str]],
) -> tuple[otel_context.Context | None, list[trace.Link]]:
    """The parent context (the first valid traceparent) and links to the others."""
    parent: otel_context.Context | None = None
    parent_span: trace.SpanContext | None = None
    links: list[trace.Link] = []
    seen: set[tuple[int, int]] = set()
    for carrier in carriers:
        extracted = _propagator.extract(carrier)
        span_context = trace.get_current_span(extracted).get_span_context()
        if not span_context.is_valid:
            continue
        identity = (span_context.trace_id, span_context.span_id)
        if identity in seen:
            continue
        seen.add(identity)
        if parent is None:
            parent = extracted
            parent_span = span_context
        elif len(links) < LINKS_MAX and span_context != parent_span:
            links.append(trace.Link(span_context))
    return parent, links


def trace_id_hex(span: Any) -> str:
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return "-"
    return f"{span_context.trace_id:032x}"
