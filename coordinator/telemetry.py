"""Logging with trace ids: every log line names the call, batch or transaction it serves.

A line written inside a request or a pipeline batch carries the trace and span ids of
the current OpenTelemetry span (the server span of the call, the batch span), and the
fields its edges bound for the work in hand: the transaction id, the pipeline and the
batch id (`log_fields.bind`). Contextvars carry them, so they follow the work into the
thread that runs it (dispatch copies the call's context into its worker).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace

current_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="-")

# The fields a line may carry beyond its trace: set by the edges, read by the filter.
FIELD_NAMES = ("txn_id", "pipeline", "batch_id")


class LogFields:
    """Fields bound to the work in hand (a transaction, a pipeline batch)."""

    def __init__(self) -> None:
        self._fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
            "log_fields", default=None
        )

    def bind(self, **fields: object) -> contextvars.Token[dict[str, str] | None]:
        """Adds fields until `reset(token)`; a None value is left out."""
        merged = dict(self._fields.get() or {})
        merged.update({name: str(value) for name, value in fields.items() if value is not None})
        return self._fields.set(merged)

    def reset(self, token: contextvars.Token[dict[str, str] | None]) -> None:
        self._fields.reset(token)

    def current(self) -> dict[str, str]:
        return self._fields.get() or {}


log_fields = LogFields()


def trace_id_from(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (version-traceid-spanid-flags)."""
    for key, value in metadata or ():
        if key == "traceparent":
            parts = str(value).split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return None


def current_ids() -> tuple[str, str]:
    """The current span's trace and span ids in hex, or the bound trace id and "-"."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"
    return current_trace_id.get(), "-"


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        trace_id, span_id = current_ids()
        if not hasattr(record, "trace_id"):
            record.trace_id = trace_id
        if not hasattr(record, "span_id"):
            record.span_id = span_id
        for name, value in log_fields.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "trace_id": getattr(record, "trace_id", "-"),
            "span_id": getattr(record, "span_id", "-"),
            "message": record.getMessage(),
        }
        for name in FIELD_NAMES:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


class TextFormatter(logging.Formatter):
    """One line: time, level, logger, trace and span, the bound fields, the message."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s span=%(span_id)s"
            "%(bound)s %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        record.bound = "".join(
            f" {name}={getattr(record, name)}"
            for name in FIELD_NAMES
            if getattr(record, name, None) is not None
        )
        return super().format(record)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
