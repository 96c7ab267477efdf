"""Transaction metrics and spans: commits by kind and origin, aborts by reason, phase latencies.

The transaction manager (the carrier of the 3PC driver's actions) wraps each commit in
`commit` and each participant step in `phase`; the pure machines (`three_phase.py`,
`driver.py`, `grid/participant.py`) know nothing of it. A step's span names its phase
and partition, so a trace shows client -> server -> one span per phase per partition ->
commit. Who asked for the commit (`origin`: sdk, sql, pipeline, procedure, internal) is
a contextvar set by the edge that starts the work.
"""

from __future__ import annotations

import contextvars
import re
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from coordinator.metrics import Registry
from coordinator.observability.tracing import tracer
from coordinator.telemetry import log_fields

commit_origin: contextvars.ContextVar[str] = contextvars.ContextVar(
    "commit_origin", default="internal"
)

ONE_PHASE = "one_phase"
THREE_PHASE = "three_phase"
READ_ONLY = "read_only"

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def phase_name(event: object) -> str:
    """A participant event's (or event class's) phase: Prepare -> prepare, CasStatus ->
    cas_status."""
    kind = event if isinstance(event, type) else type(event)
    return _SNAKE.sub("_", kind.__name__).lower()


def abort_reason(error: BaseException) -> str:
    """Conflict -> conflict, FailedPrecondition -> failed_precondition, ..."""
    return _SNAKE.sub("_", type(error).__name__).lower()


class Untraced:
    """What the manager uses when nothing observes it: no spans, no figures."""

    def commit(self, txn_id: bytes, kind: str) -> AbstractContextManager[Any]:
        return nullcontext()

    def phase(self, partition: int, event: object) -> AbstractContextManager[Any]:
        return nullcontext()


UNTRACED = Untraced()


class TransactionTelemetry(Untraced):
    def __init__(self, metrics: Registry) -> None:
        self.committed = metrics.counter(
            "shoal_transactions_committed_total",
            "transactions committed, by kind (one_phase, three_phase, read_only) and origin",
            ("kind", "origin"),
        )
        self.aborted = metrics.counter(
            "shoal_transactions_aborted_total",
            "transactions aborted or refused, by reason and origin",
            ("reason", "origin"),
        )
        self.duration = metrics.histogram(
            "shoal_transaction_commit_seconds", "time of a whole commit, by kind", ("kind",)
        )
        self.phases = metrics.histogram(
            "shoal_transaction_phase_seconds",
            "time of one participant step of a commit, by phase",
            ("phase",),
        )
        self._phase_children: dict[type, tuple[str, Any]] = {}
        # Children looked up once: `labels()` costs more than the `inc()` it serves.
        self._committed_children: dict[tuple[str, str], Any] = {}
        self._duration_children: dict[str, Any] = {}

    def count_commit(self, kind: str, origin: str, seconds: float) -> None:
        committed = self._committed_children.get((kind, origin))
        if committed is None:
            committed = self._committed_children[(kind, origin)] = self.committed.labels(
                kind=kind, origin=origin
            )
        committed.inc()
        self._time(kind, seconds)

    def count_abort(self, kind: str, reason: str, origin: str, seconds: float) -> None:
        self.aborted.labels(reason=reason, origin=origin).inc()
        self._time(kind, seconds)

    def _time(self, kind: str, seconds: float) -> None:
        duration = self._duration_children.get(kind)
        if duration is None:
            duration = self._duration_children[kind] = self.duration.labels(kind=kind)
        duration.observe(seconds)

    def commit(self, txn_id: bytes, kind: str) -> AbstractContextManager[Any]:
        return _Commit(self, txn_id, kind)

    def phase(self, partition: int, event: object) -> AbstractContextManager[Any]:
        kind = event if isinstance(event, type) else type(event)
        known = self._phase_children.get(kind)
        if known is None:
            name = phase_name(kind)
            known = self._phase_children[kind] = (name, self.phases.labels(phase=name))
        return _Phase(partition, *known)


def _span_wanted() -> bool:
    """Whether a child span here could be sampled. Under a parent that was not sampled
    (a valid span that does not record) the parent-based sampler drops every child: such
    spans would cost about 15 us each and show nowhere, so none is made (log lines keep
    the parent's ids). Without any parent the sampler decides."""
    current = trace.get_current_span()
    return current.is_recording() or not current.get_span_context().is_valid


class _Span:
    """A span made current for a block, or nothing when it could not be sampled."""

    __slots__ = ("_span", "_token")

    def __init__(self) -> None:
        self._span: trace.Span | None = None
        self._token: object = None

    def open(self, name: str, attributes: dict[str, Any]) -> None:
        if _span_wanted():
            self._span = tracer.start_span(
                name, kind=trace.SpanKind.INTERNAL, attributes=attributes
            )
            self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def close(self, error_reason: str | None) -> None:
        span = self._span
        if span is None:
            return
        if error_reason is not None:
            span.set_status(Status(StatusCode.ERROR, error_reason))
        otel_context.detach(self._token)  # type: ignore[arg-type]
        span.end()


class _Commit:
    __slots__ = ("_fields", "_kind", "_origin", "_span", "_started", "_telemetry", "_txn_id")

    def __init__(self, telemetry: TransactionTelemetry, txn_id: bytes, kind: str) -> None:
        self._telemetry = telemetry
        self._txn_id = txn_id
        self._kind = kind
        self._span = _Span()

    def __enter__(self) -> None:
        self._origin = commit_origin.get()
        tag = self._txn_id.hex()
        self._fields = log_fields.bind(txn_id=tag)
        self._span.open(
            "shoal.transaction",
            {"shoal.txn_id": tag, "shoal.commit.kind": self._kind, "shoal.origin": self._origin},
        )
        self._started = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, trace_back: object) -> None:
        seconds = time.perf_counter() - self._started
        reason = None
        if error is not None:
            reason = abort_reason(error)
            self._telemetry.count_abort(self._kind, reason, self._origin, seconds)
        else:
            self._telemetry.count_commit(self._kind, self._origin, seconds)
        self._span.close(reason)
        log_fields.reset(self._fields)


class _Phase:
    __slots__ = ("_histogram", "_name", "_partition", "_span", "_started")

    def __init__(self, partition: int, name: str, histogram: Any) -> None:
        self._partition = partition
        self._name = name
        self._histogram = histogram
        self._span = _Span()

    def __enter__(self) -> None:
        self._span.open(
            f"shoal.{self._name}", {"shoal.partition": self._partition, "shoal.phase": self._name}
        )
        self._started = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, trace_back: object) -> None:
        self._histogram.observe(time.perf_counter() - self._started)
        self._span.close(None if error is None else abort_reason(error))
