"""SQL results: a cursor over the streamed batches of one statement.

Rows arrive as Arrow record batches when pyarrow is installed (``pip install
shoal-client[arrow]``) and as JSON rows otherwise; either way ``fetchall`` returns
tuples of plain Python values. The cursor reads the stream as it is consumed, so a
large result is never held whole unless asked for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from shoal import _codec, _requests
from shoal._errors import InvalidArgumentError, from_rpc_error
from shoal.v1 import query_pb2

if TYPE_CHECKING:
    from shoal._client import Client

# pyarrow is imported on the first result that carries Arrow data, not with the SDK: it
# costs about a tenth of a second, which every `shoal get` would otherwise pay.
HAVE_ARROW = importlib.util.find_spec("pyarrow") is not None


def _arrow() -> Any:
    import pyarrow
    import pyarrow.ipc

    return pyarrow


CHANGE_KINDS = ("insert", "update", "delete", "create", "drop")
# Integers wider than 64 bits (`sum()` of a BIGINT column is a HUGEINT) travel in Arrow as
# 38-digit decimals; rows give them as Python ints, as DuckDB's own Python API does.
INTEGER_DECIMAL_TYPES = frozenset({"HUGEINT", "UHUGEINT"})


def encode_parameters(parameters: Sequence[Any] | None) -> bytes:
    if parameters is None:
        return b""
    if isinstance(parameters, str | bytes) or not isinstance(parameters, Sequence):
        raise InvalidArgumentError(
            "params must be a sequence (list or tuple) of values for the ? placeholders",
            field="params",
        )
    return _codec.encode(list(parameters), what="params")


class Cursor:
    """The result of one statement (PEP 249 shaped: description, rowcount, fetch*)."""

    arraysize = 100

    def __init__(self, client: Client) -> None:
        self._client = client
        self._stream: Any = None
        self._pending: list[tuple[Any, ...]] = []
        self._arrow_schema: Any = None
        self._arrow_batches: list[Any] = []
        self._unconverted: list[Any] = []
        self._integer_columns: list[int] = []
        self._done = True
        self.description: list[tuple[str, str, None, None, None, None, None]] | None = None
        self.rowcount = -1
        self.kind = ""
        self.elapsed_ms = 0.0
        self.rows_scanned = 0

    def execute(
        self,
        statement: str,
        params: Sequence[Any] | None = None,
        *,
        timeout_s: float | None = None,
        batch_rows: int = 0,
    ) -> Cursor:
        self.close()
        if timeout_s is not None:
            timeout_s = _requests.check_seconds(timeout_s, "timeout_s")
        request = _requests.build(
            query_pb2.ExecuteRequest,
            statement=statement,
            params_json=encode_parameters(params),
            format=query_pb2.ARROW if HAVE_ARROW else query_pb2.JSON,
            batch_rows=batch_rows,
            timeout_ms=int((timeout_s or self._client.timeout_s) * 1000),
        )
        self._stream = self._client._connection.current.query.Execute(
            request,
            timeout=(timeout_s or self._client.timeout_s) + 5,
            metadata=self._client._metadata,
        )
        self._done = False
        self._pending = []
        self._arrow_batches = []
        self._unconverted = []
        self.rowcount = -1
        # The header arrives first: read it so `description` is set at once. A statement
        # that changes the grid answers one small row: read it all, so rowcount is set.
        self._read_until_header()
        if self.kind in CHANGE_KINDS:
            self._fill(None)
        return self

    def executemany(self, statement: str, seq_of_params: Sequence[Sequence[Any]]) -> Cursor:
        total = 0
        for params in seq_of_params:
            self.execute(statement, params)
            self.fetchall()
            total += max(self.rowcount, 0)
        self.rowcount = total
        return self

    def _next_message(self) -> query_pb2.ExecuteResponse | None:
        if self._done or self._stream is None:
            return None
        try:
            message: query_pb2.ExecuteResponse = next(self._stream)
            return message
        except StopIteration:
            self._done = True
            return None
        except grpc.RpcError as error:
            self._done = True
            raise from_rpc_error(error) from None

    def _read_until_header(self) -> None:
        message = self._next_message()
        if message is None:
            return
        self._handle(message)

    def _handle(self, message: query_pb2.ExecuteResponse) -> None:
        if message.HasField("header"):
            header = message.header
            self.kind = header.kind
            self.description = [
                (column.name, column.type, None, None, None, None, None)
                for column in header.columns
            ]
            self._integer_columns = [
                index
                for index, column in enumerate(header.columns)
                if column.type in INTEGER_DECIMAL_TYPES
            ]
            if header.arrow_schema and HAVE_ARROW:
                arrow = _arrow()
                self._arrow_schema = arrow.ipc.read_schema(arrow.py_buffer(header.arrow_schema))
        for data in message.arrow_batches:
            arrow = _arrow()
            batch = arrow.ipc.read_record_batch(arrow.py_buffer(data), self._arrow_schema)
            self._arrow_batches.append(batch)
            # Rows are made from the batch only when fetched: to_arrow() needs none.
            self._unconverted.append(batch)
        for data in message.json_rows:
            self._pending.extend(tuple(row) for row in _codec.decode_array(data))
        if message.HasField("summary"):
            summary = message.summary
            self.elapsed_ms = summary.elapsed_us / 1000
            self.rows_scanned = summary.rows_scanned
            self.rowcount = summary.rows_affected if self.kind in CHANGE_KINDS[:3] else summary.rows
            self._done = True

    def _fill(self, wanted: int | None) -> None:
        while True:
            while self._unconverted and (wanted is None or len(self._pending) < wanted):
                batch = self._unconverted.pop(0)
                columns = [column.to_pylist() for column in batch.columns]
                for index in self._integer_columns:
                    columns[index] = [None if v is None else int(v) for v in columns[index]]
                self._pending.extend(zip(*columns, strict=True))
            if (wanted is not None and len(self._pending) >= wanted) or self._done:
                return
            message = self._next_message()
            if message is None:
                if not self._unconverted:
                    return
                continue
            self._handle(message)

    def fetchone(self) -> tuple[Any, ...] | None:
        self._fill(1)
        return self._pending.pop(0) if self._pending else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        count = size or self.arraysize
        self._fill(count)
        taken, self._pending = self._pending[:count], self._pending[count:]
        return taken

    def fetchall(self) -> list[tuple[Any, ...]]:
        self._fill(None)
        taken, self._pending = self._pending, []
        return taken

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            row = self.fetchone()
            if row is None:
                return
            yield row

    def to_arrow(self) -> Any:
        """The whole result as a pyarrow.Table (needs pyarrow)."""
        if not HAVE_ARROW:
            raise InvalidArgumentError("to_arrow needs pyarrow: pip install shoal-client[arrow]")
        while not self._done:
            message = self._next_message()
            if message is None:
                break
            self._handle(message)
        self._pending = []
        self._unconverted = []
        if self._arrow_schema is None:
            return _arrow().table({})
        return _arrow().Table.from_batches(self._arrow_batches, schema=self._arrow_schema)

    def to_pandas(self) -> Any:
        """The whole result as a pandas.DataFrame (needs pyarrow and pandas)."""
        return self.to_arrow().to_pandas()

    def close(self) -> None:
        if self._stream is not None and not self._done:
            self._stream.cancel()
        self._stream = None
        self._done = True

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
