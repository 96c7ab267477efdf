"""The Query service: SQL statements with results streamed as Arrow IPC or JSON rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import orjson
import pyarrow as pa

from coordinator.services.errors import streaming
from coordinator.sql.engine import Cancellation, Header, SqlEngine, Summary
from grid.errors import InvalidArgument
from shoal.v1 import query_pb2, query_pb2_grpc


def _json_default(value: Any) -> Any:
    import base64
    import datetime
    import decimal

    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return {"$ts": value.isoformat()}
        return {"$ts": value.astimezone(datetime.UTC).isoformat()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot send a {type(value).__name__}")


def json_rows(batch: pa.RecordBatch) -> bytes:
    columns = [column.to_pylist() for column in batch.columns]
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else []
    return orjson.dumps(rows, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


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
        as_json = request.format == query_pb2.JSON
        cancellation = Cancellation()
        context.add_callback(cancellation.cancel)
        for event in self.engine.execute(
            request.statement,
            parameters,
            batch_rows=request.batch_rows,
            timeout_ms=request.timeout_ms,
            cancellation=cancellation,
        ):
            if isinstance(event, Header):
                header = query_pb2.ResultHeader(
                    columns=[
                        query_pb2.Column(name=name, type=kind) for name, kind in event.columns
                    ],
                    kind=event.kind,
                )
                if not as_json:
                    header.arrow_schema = event.schema.serialize().to_pybytes()
                yield query_pb2.ExecuteResponse(header=header)
            elif isinstance(event, Summary):
                yield query_pb2.ExecuteResponse(
                    summary=query_pb2.ResultSummary(
                        rows=event.rows,
                        rows_affected=event.rows_affected,
                        elapsed_us=event.elapsed_us,
                        rows_scanned=event.rows_scanned,
                    )
                )
            elif as_json:
                yield query_pb2.ExecuteResponse(json_rows=json_rows(event))
            else:
                yield query_pb2.ExecuteResponse(arrow_batch=event.serialize().to_pybytes())
