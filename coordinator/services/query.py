"""The Query service: SQL statements with results streamed as Arrow IPC or JSON rows."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator
from typing import Any

import grpc
import orjson
import pyarrow as pa

from coordinator.services.errors import streaming
from coordinator.sql.engine import Cancellation, Header, SqlEngine, Summary
from grid import values
from grid.errors import InvalidArgument
from shoal.v1 import query_pb2, query_pb2_grpc


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return values.bytes_document(value)
    if isinstance(value, datetime.datetime):
        return values.timestamp_document(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        # A HUGEINT (`sum()` of a BIGINT column) arrives as a decimal of scale 0: an int.
        exponent = value.as_tuple().exponent
        if value.is_finite() and isinstance(exponent, int) and exponent >= 0:
            return int(value)
        return float(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot send a {type(value).__name__}")


def json_rows(batch: pa.RecordBatch) -> bytes:
    columns = [column.to_pylist() for column in batch.columns]
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else []
    return orjson.dumps(rows, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


MESSAGE_BYTES_TARGET = 1024 * 1024
KNOWN_FORMATS = frozenset({query_pb2.RESULT_FORMAT_UNSPECIFIED, query_pb2.ARROW, query_pb2.JSON})


class QueryService(query_pb2_grpc.QueryServicer):
    def __init__(self, engine: SqlEngine) -> None:
        self.engine = engine

    @streaming
    def Execute(
        self, request: query_pb2.ExecuteRequest, context: grpc.ServicerContext
    ) -> Iterator[query_pb2.ExecuteResponse]:
        parameters: list[Any] = []
        if request.params_json:
            try:
                parameters = orjson.loads(request.params_json)
            except orjson.JSONDecodeError as error:
                raise InvalidArgument(
                    f"params are not valid JSON: {error}", field="params"
                ) from None
            if not isinstance(parameters, list):
                raise InvalidArgument("params must be a JSON array", field="params")
            # An integer past 64 bits would bind as a float, silently changed.
            values.check_document(request.params_json, parameters, what="params")
        if request.format not in KNOWN_FORMATS:
            # proto3 keeps an enum value it does not know; answering in some format
            # anyway would hide the client's mistake.
            raise InvalidArgument(
                f"unknown result format {request.format}: use ARROW ({query_pb2.ARROW}) or "
                f"JSON ({query_pb2.JSON})",
                field="format",
            )
        as_json = request.format == query_pb2.JSON
        cancellation = Cancellation()
        context.add_callback(cancellation.cancel)
        # Batches are gathered into messages of about `batch_rows` rows (DuckDB hands out
        # small ones, one per input chunk), and the last message is held back so the
        # summary rides with it: a small result is one message, header to summary.
        pending = query_pb2.ExecuteResponse()
        pending_rows = 0
        pending_bytes = 0
        rows_per_message = min(
            request.batch_rows or self.engine.config.batch_rows, self.engine.config.batch_rows
        )
        for event in self.engine.execute(
            request.statement,
            parameters,
            batch_rows=request.batch_rows,
            timeout_ms=request.timeout_ms,
            cancellation=cancellation,
        ):
            if isinstance(event, Header):
                header = pending.header
                header.kind = event.kind
                header.columns.extend(
                    query_pb2.Column(name=name, type=kind) for name, kind in event.columns
                )
                if not as_json:
                    header.arrow_schema = event.schema.serialize().to_pybytes()
            elif isinstance(event, Summary):
                pending.summary.rows = event.rows
                pending.summary.rows_affected = event.rows_affected
                pending.summary.elapsed_us = event.elapsed_us
                pending.summary.rows_scanned = event.rows_scanned
                yield pending
                return
            else:
                if pending_rows >= rows_per_message or pending_bytes >= MESSAGE_BYTES_TARGET:
                    yield pending
                    pending = query_pb2.ExecuteResponse()
                    pending_rows = pending_bytes = 0
                if as_json:
                    data = json_rows(event)
                    pending.json_rows.append(data)
                else:
                    data = event.serialize().to_pybytes()
                    pending.arrow_batches.append(data)
                pending_rows += event.num_rows
                pending_bytes += len(data)
        yield pending
