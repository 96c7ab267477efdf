from shoal.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadEntry(_message.Message):
    __slots__ = ("map", "key", "version")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    version: int
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class WriteOp(_message.Message):
    __slots__ = ("map", "key", "kind", "value", "condition")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[WriteOp.Kind]
        PUT: _ClassVar[WriteOp.Kind]
        DELETE: _ClassVar[WriteOp.Kind]
        INCREMENT: _ClassVar[WriteOp.Kind]
        APPEND: _ClassVar[WriteOp.Kind]
        SKETCH_ADD: _ClassVar[WriteOp.Kind]
    KIND_UNSPECIFIED: WriteOp.Kind
    PUT: WriteOp.Kind
    DELETE: WriteOp.Kind
    INCREMENT: WriteOp.Kind
    APPEND: WriteOp.Kind
    SKETCH_ADD: WriteOp.Kind
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    kind: WriteOp.Kind
    value: bytes
    condition: _common_pb2.Condition
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ..., kind: _Optional[_Union[WriteOp.Kind, str]] = ..., value: _Optional[bytes] = ..., condition: _Optional[_Union[_common_pb2.Condition, _Mapping]] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("txn_id", "reads", "writes")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    txn_id: bytes
    reads: _containers.RepeatedCompositeFieldContainer[ReadEntry]
    writes: _containers.RepeatedCompositeFieldContainer[WriteOp]
    def __init__(self, txn_id: _Optional[bytes] = ..., reads: _Optional[_Iterable[_Union[ReadEntry, _Mapping]]] = ..., writes: _Optional[_Iterable[_Union[WriteOp, _Mapping]]] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("versions", "replayed")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedScalarFieldContainer[int]
    replayed: bool
    def __init__(self, versions: _Optional[_Iterable[int]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TransactionSummary(_message.Message):
    __slots__ = ("txn_id", "state", "partitions", "lease_expires_at_ms", "started_at_ms")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    state: str
    partitions: _containers.RepeatedScalarFieldContainer[int]
    lease_expires_at_ms: int
    started_at_ms: int
    def __init__(self, txn_id: _Optional[str] = ..., state: _Optional[str] = ..., partitions: _Optional[_Iterable[int]] = ..., lease_expires_at_ms: _Optional[int] = ..., started_at_ms: _Optional[int] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("transactions",)
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[TransactionSummary]
    def __init__(self, transactions: _Optional[_Iterable[_Union[TransactionSummary, _Mapping]]] = ...) -> None: ...

class TransactionStoryRequest(_message.Message):
    __slots__ = ("txn_id",)
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    def __init__(self, txn_id: _Optional[str] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("at_ms", "event", "detail")
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    at_ms: int
    event: str
    detail: str
    def __init__(self, at_ms: _Optional[int] = ..., event: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class TransactionStoryResponse(_message.Message):
    __slots__ = ("transitions",)
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    def __init__(self, transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ...) -> None: ...
