"""Maps grid errors to gRPC status codes, with the field at fault and a trace id."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from coordinator.telemetry import current_ids, trace_id_from
from grid.errors import GridError

log = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])

# An error's message and field travel in the answer's trailing metadata, which a gRPC
# client refuses past 16 KiB, and may refuse past 8 KiB (the whole answer then becomes
# RESOURCE_EXHAUSTED "Stream removed", message and field lost). Messages quote the input
# at fault, which may be megabytes, so both are cut to a size that fits under 8 KiB even
# when every byte is percent-encoded (three bytes each).
MESSAGE_BYTES_MAX = 2048
FIELD_BYTES_MAX = 256


def bounded(text: str, bytes_max: int) -> str:
    """The text, cut to at most about `bytes_max` UTF-8 bytes, saying how long it was."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= bytes_max:
        return text
    head = encoded[:bytes_max].decode("utf-8", "ignore")
    return f"{head}… ({len(text)} characters in all)"


def error_metadata(trace_id: str, field: str | None, rule: str | None) -> list[tuple[str, Any]]:
    """The trailing metadata of an error answer.

    gRPC refuses text metadata that is not printable ASCII, and answers the whole call
    with INTERNAL "Invalid metadata" instead. A field or rule may name any key or field
    (non-ASCII, newline, NUL), so each travels as binary metadata (`-bin`, UTF-8), which
    takes any bytes; the text form is added as well when it is printable ASCII, for
    clients that read only that.
    """
    metadata: list[tuple[str, Any]] = [("shoal-trace-id", trace_id)]
    for name, given in (("shoal-field", field), ("shoal-rule", rule)):
        if not given:
            continue
        text = bounded(given, FIELD_BYTES_MAX)
        metadata.append((f"{name}-bin", text.encode("utf-8", "surrogatepass")))
        if text.isascii() and text.isprintable():
            metadata.append((name, text))
    return metadata


def abort_with(context: grpc.ServicerContext, error: GridError) -> None:
    trace_id = _trace_id(context)
    rule = getattr(error, "rule", None)
    context.set_trailing_metadata(tuple(error_metadata(trace_id, error.field, rule)))
    message = bounded(error.message, MESSAGE_BYTES_MAX)
    log.info("%s: %s", error.status, message, extra={"trace_id": trace_id})
    context.abort(grpc.StatusCode[error.status], message)


def abort_internal(context: grpc.ServicerContext, handler_name: str) -> None:
    """Answers an unexpected error as INTERNAL, logged with the call's trace id."""
    trace_id = _trace_id(context)
    log.exception("internal error in %s", handler_name, extra={"trace_id": trace_id})
    context.set_trailing_metadata((("shoal-trace-id", trace_id),))
    context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")


def _trace_id(context: grpc.ServicerContext) -> str:
    """The call's trace id: its server span's, else the caller's, else a new one."""
    current, _ = current_ids()
    if current != "-":
        return current
    return trace_id_from(context.invocation_metadata()) or os.urandom(16).hex()


def unary(handler: Handler) -> Handler:
    """Answers a unary call's GridError with its status, and any other error as INTERNAL."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
        except GridError as error:
            abort_with(context, error)
        except Exception:
            abort_internal(context, handler.__name__)

    return wrapper  # type: ignore[return-value]


def streaming(handler: Handler) -> Handler:
    """The same for a server-streaming call."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            yield from handler(self, request, context)
        except GridError as error:
            abort_with(context, error)
        except Exception:
            abort_internal(context, handler.__name__)

    return wrapper  # type: ignore[return-value]
