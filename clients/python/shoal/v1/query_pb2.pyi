from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResultFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_FORMAT_UNSPECIFIED: _ClassVar[ResultFormat]
    ARROW: _ClassVar[ResultFormat]
    JSON: _ClassVar[ResultFormat]
RESULT_FORMAT_UNSPECIFIED: ResultFormat
ARROW: ResultFormat
JSON: ResultFormat

class ExecuteRequest(_message.Message):
    __slots__ = ("statement", "params_json", "format", "batch_rows", "timeout_ms")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    statement: str
    params_json: bytes
    format: ResultFormat
    batch_rows: int
    timeout_ms: int
    def __init__(self, statement: _Optional[str] = ..., params_json: _Optional[bytes] = ..., format: _Optional[_Union[ResultFormat, str]] = ..., batch_rows: _Optional[int] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class ResultHeader(_message.Message):
    __slots__ = ("columns", "arrow_schema", "kind")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ARROW_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    arrow_schema: bytes
    kind: str
    def __init__(self, columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., arrow_schema: _Optional[bytes] = ..., kind: _Optional[str] = ...) -> None: ...

class ResultSummary(_message.Message):
    __slots__ = ("rows", "rows_affected", "elapsed_us", "rows_scanned")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_US_FIELD_NUMBER: _ClassVar[int]
    ROWS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    rows: int
    rows_affected: int
    elapsed_us: int
    rows_scanned: int
    def __init__(self, rows: _Optional[int] = ..., rows_affected: _Optional[int] = ..., elapsed_us: _Optional[int] = ..., rows_scanned: _Optional[int] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("header", "arrow_batches", "json_rows", "summary")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ARROW_BATCHES_FIELD_NUMBER: _ClassVar[int]
    JSON_ROWS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    header: ResultHeader
    arrow_batches: _containers.RepeatedScalarFieldContainer[bytes]
    json_rows: _containers.RepeatedScalarFieldContainer[bytes]
    summary: ResultSummary
    def __init__(self, header: _Optional[_Union[ResultHeader, _Mapping]] = ..., arrow_batches: _Optional[_Iterable[bytes]] = ..., json_rows: _Optional[_Iterable[bytes]] = ..., summary: _Optional[_Union[ResultSummary, _Mapping]] = ...) -> None: ...
