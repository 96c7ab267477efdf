"""Spans of this test process in memory: the process's tracer provider, set once, with an
in-memory exporter that tests read and clear."""

from __future__ import annotations

from functools import cache

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON


@cache
def memory_exporter() -> InMemorySpanExporter:
    """The exporter every span of this process reaches (OpenTelemetry lets a process set
    its provider once; a provider set before is given the exporter)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=ALWAYS_ON)
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def spans_of_trace(trace_id: int) -> list[ReadableSpan]:
    return [
        span
        for span in memory_exporter().get_finished_spans()
        if span.context is not None and span.context.trace_id == trace_id
    ]
