"""The process's tracer provider: parent-based ratio sampling, OTLP (gRPC) or console export.

Spans are made at the edges only (the RPC layer, the transaction manager's action
driver, the SQL engine, the pipeline runner): `grid/` and the pure state machines never
import OpenTelemetry. Without an exporter spans are never sampled (they still carry ids
for the logs); with metrics and tracing both off `shoal serve` installs nothing at all.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

log = logging.getLogger(__name__)

EXPORTERS = ("none", "otlp", "console")
TRACER_NAME = "shoal.coordinator"

# A proxy until a provider is installed, then that provider's tracer.
tracer = trace.get_tracer(TRACER_NAME)


def exporter_of(kind: str, otlp_endpoint: str) -> SpanExporter | None:
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        # Imported here: the OTLP exporter pulls in its gRPC stubs, needed only when used.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)
    raise ValueError(f"unknown trace exporter {kind!r}: use one of {', '.join(EXPORTERS)}")


def configure(
    kind: str, sample_ratio: float, otlp_endpoint: str, *, service_name: str = "shoal"
) -> TracerProvider | None:
    """Installs the process's tracer provider with an exporter of `kind`. Spans are
    sampled by the caller's decision when it sent a trace context, else at
    `sample_ratio`. Without an exporter nothing is sampled, but spans still get ids, so
    every log line of a call names its trace. A provider already installed (an
    embedding application's, a test's) is kept and given the exporter."""
    exporter = exporter_of(kind, otlp_endpoint)
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if exporter is not None:
            current.add_span_processor(BatchSpanProcessor(exporter))
        return current
    sampler = (
        ParentBased(TraceIdRatioBased(sample_ratio))
        if exporter is not None
        else ParentBased(ALWAYS_OFF, remote_parent_sampled=ALWAYS_OFF)
    )
    provider = TracerProvider(
        sampler=sampler, resource=Resource.create({"service.name": service_name})
    )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info("tracing: %s exporter, sampling ratio %g", kind, sample_ratio)
    trace.set_tracer_provider(provider)
    return provider
