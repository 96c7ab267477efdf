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
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

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

    @contextmanager
    def commit(self, txn_id: bytes, kind: str) -> Iterator[None]:
        origin = commit_origin.get()
        tag = txn_id.hex()
        fields = log_fields.bind(txn_id=tag)
        started = time.perf_counter()
        with tracer.start_as_current_span(
            "shoal.transaction",
            kind=trace.SpanKind.INTERNAL,
            attributes={"shoal.txn_id": tag, "shoal.commit.kind": kind, "shoal.origin": origin},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except BaseException as error:
                reason = abort_reason(error)
                self.aborted.labels(reason=reason, origin=origin).inc()
                span.set_status(Status(StatusCode.ERROR, reason))
                raise
            else:
                self.committed.labels(kind=kind, origin=origin).inc()
            finally:
                self.duration.labels(kind=kind).observe(time.perf_counter() - started)
                log_fields.reset(fields)

    @contextmanager
    def phase(self, partition: int, event: object) -> Iterator[None]:
        kind = event if isinstance(event, type) else type(event)
        known = self._phase_children.get(kind)
        if known is None:
            name = phase_name(kind)
            known = self._phase_children[kind] = (name, self.phases.labels(phase=name))
        name, histogram = known
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"shoal.{name}",
            kind=trace.SpanKind.INTERNAL,
            attributes={"shoal.partition": partition, "shoal.phase": name},
        ):
            try:
                yield
            finally:
                histogram.observe(time.perf_counter() - started)
