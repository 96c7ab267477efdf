"""SQL statement metrics and spans: statements by kind and outcome, latency, rows, bytes.

The engine hands each statement's events (a header, record batches, a summary) through
`observe`, which counts them as they pass and measures the statement from its first
event asked for to its last: a streamed result is timed as the client reads it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from coordinator.metrics import SIZE_BUCKETS, Registry
from coordinator.observability.tracing import tracer
from coordinator.observability.transactions import abort_reason


class SqlTelemetry:
    def __init__(self, metrics: Registry) -> None:
        self.statements = metrics.counter(
            "shoal_sql_statements_total",
            "SQL statements, by kind (select, insert, ...) and outcome (ok or the error)",
            ("kind", "outcome"),
        )
        self.duration = metrics.histogram(
            "shoal_sql_statement_seconds", "time of a SQL statement, by kind", ("kind",)
        )
        self.rows_scanned = metrics.histogram(
            "shoal_sql_rows_scanned",
            "rows a statement read from the grid",
            buckets=SIZE_BUCKETS,
        )
        self.bytes_returned = metrics.histogram(
            "shoal_sql_result_bytes",
            "bytes of Arrow record batches a statement returned",
            buckets=SIZE_BUCKETS,
        )
        self.snapshot_rebuilds = metrics.counter(
            "shoal_sql_snapshot_rebuilds_total",
            "partition images rebuilt for SQL snapshots (a partition changed since cached)",
        )

    def rebuilt(self, partitions: int) -> None:
        if partitions:
            self.snapshot_rebuilds.inc(partitions)

    def observe(self, events: Iterator[Any]) -> Iterator[Any]:
        from coordinator.sql.engine import Header, Summary

        started = time.perf_counter()
        kind = "unknown"
        outcome = "ok"
        sent_bytes = 0
        summarized = False
        # Not made current: a stream's steps (and its closing) may run in other threads'
        # contexts, where a context attached by an earlier step cannot be detached.
        span = tracer.start_span("shoal.sql", kind=trace.SpanKind.INTERNAL)
        try:
            for event in events:
                if isinstance(event, Header):
                    kind = event.kind or kind
                elif isinstance(event, Summary):
                    summarized = True
                    self.rows_scanned.observe(event.rows_scanned)
                    span.set_attribute("shoal.sql.rows", event.rows)
                    span.set_attribute("shoal.sql.rows_scanned", event.rows_scanned)
                else:
                    sent_bytes += getattr(event, "nbytes", 0)
                yield event
        except GeneratorExit:
            # Closed by its reader: after the summary that is the normal end.
            outcome = "ok" if summarized else "closed"
            raise
        except BaseException as error:
            outcome = abort_reason(error)
            span.set_status(Status(StatusCode.ERROR, outcome))
            raise
        finally:
            span.set_attribute("shoal.sql.kind", kind)
            self.statements.labels(kind=kind, outcome=outcome).inc()
            self.duration.labels(kind=kind).observe(time.perf_counter() - started)
            self.bytes_returned.observe(sent_bytes)
            span.end()
