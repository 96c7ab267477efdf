"""Logging with trace ids: every log line can name the call, batch or transaction it serves."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

current_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="-")


def trace_id_from(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (version-traceid-spanid-flags)."""
    for key, value in metadata or ():
        if key == "traceparent":
            parts = str(value).split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return None


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            record.trace_id = current_trace_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "trace_id": getattr(record, "trace_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
