"""Maps grid errors to gRPC status codes, with the field at fault and a trace id."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from coordinator.telemetry import trace_id_from
from grid.errors import GridError

log = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def error_metadata(trace_id: str, field: str | None, rule: str | None) -> list[tuple[str, Any]]:
    """The trailing metadata of an error answer.

    gRPC refuses text metadata that is not printable ASCII, and answers the whole call
    with INTERNAL "Invalid metadata" instead. A field or rule may name any key or field
    (non-ASCII, newline, NUL), so each travels as binary metadata (`-bin`, UTF-8), which
    takes any bytes; the text form is added as well when it is printable ASCII, for
    clients that read only that.
    """
    metadata: list[tuple[str, Any]] = [("shoal-trace-id", trace_id)]
    for name, text in (("shoal-field", field), ("shoal-rule", rule)):
        if not text:
            continue
        metadata.append((f"{name}-bin", text.encode("utf-8", "surrogatepass")))
        if text.isascii() and text.isprintable():
            metadata.append((name, text))
    return metadata


def abort_with(context: grpc.ServicerContext, error: GridError) -> None:
    trace_id = _trace_id(context)
    rule = getattr(error, "rule", None)
    context.set_trailing_metadata(tuple(error_metadata(trace_id, error.field, rule)))
    log.info("%s: %s", error.status, error.message, extra={"trace_id": trace_id})
    context.abort(grpc.StatusCode[error.status], error.message)


def abort_internal(context: grpc.ServicerContext, handler_name: str) -> None:
    """Answers an unexpected error as INTERNAL, logged with the call's trace id."""
    trace_id = _trace_id(context)
    log.exception("internal error in %s", handler_name, extra={"trace_id": trace_id})
    context.set_trailing_metadata((("shoal-trace-id", trace_id),))
    context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")


def _trace_id(context: grpc.ServicerContext) -> str:
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
