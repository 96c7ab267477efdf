from shoal.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadVersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadVersionResponse(_message.Message):
    __slots__ = ("read_version", "window_ms")
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    read_version: int
    window_ms: int
    def __init__(self, read_version: _Optional[int] = ..., window_ms: _Optional[int] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("map", "key", "read_version", "snapshot")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    read_version: int
    snapshot: bool
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ..., read_version: _Optional[int] = ..., snapshot: _Optional[bool] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value", "version", "read_version", "changed")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    version: int
    read_version: int
    changed: bool
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., version: _Optional[int] = ..., read_version: _Optional[int] = ..., changed: _Optional[bool] = ...) -> None: ...

class GetManyRequest(_message.Message):
    __slots__ = ("map", "keys", "packed_keys", "with_versions", "consistent", "read_version")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    PACKED_KEYS_FIELD_NUMBER: _ClassVar[int]
    WITH_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    map: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    packed_keys: bytes
    with_versions: bool
    consistent: bool
    read_version: int
    def __init__(self, map: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., packed_keys: _Optional[bytes] = ..., with_versions: _Optional[bool] = ..., consistent: _Optional[bool] = ..., read_version: _Optional[int] = ...) -> None: ...

class GetManyResponse(_message.Message):
    __slots__ = ("found_indexes", "values_json", "versions", "read_version", "changed")
    FOUND_INDEXES_FIELD_NUMBER: _ClassVar[int]
    VALUES_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    found_indexes: _containers.RepeatedScalarFieldContainer[int]
    values_json: bytes
    versions: _containers.RepeatedScalarFieldContainer[int]
    read_version: int
    changed: bool
    def __init__(self, found_indexes: _Optional[_Iterable[int]] = ..., values_json: _Optional[bytes] = ..., versions: _Optional[_Iterable[int]] = ..., read_version: _Optional[int] = ..., changed: _Optional[bool] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("map", "key", "value", "request_id", "condition")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    value: bytes
    request_id: bytes
    condition: _common_pb2.Condition
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ..., request_id: _Optional[bytes] = ..., condition: _Optional[_Union[_common_pb2.Condition, _Mapping]] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class PutManyRequest(_message.Message):
    __slots__ = ("map", "keys", "values", "request_id")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    map: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    request_id: bytes
    def __init__(self, map: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[bytes]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class PutManyResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, versions: _Optional[_Iterable[int]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("map", "key", "request_id", "condition")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    request_id: bytes
    condition: _common_pb2.Condition
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ..., request_id: _Optional[bytes] = ..., condition: _Optional[_Union[_common_pb2.Condition, _Mapping]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("map", "prefix", "limit", "chunk_entries", "read_version")
    MAP_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    map: str
    prefix: str
    limit: int
    chunk_entries: int
    read_version: int
    def __init__(self, map: _Optional[str] = ..., prefix: _Optional[str] = ..., limit: _Optional[int] = ..., chunk_entries: _Optional[int] = ..., read_version: _Optional[int] = ...) -> None: ...

class ScanChunk(_message.Message):
    __slots__ = ("keys", "values", "versions", "read_version")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    versions: _containers.RepeatedScalarFieldContainer[int]
    read_version: int
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[bytes]] = ..., versions: _Optional[_Iterable[int]] = ..., read_version: _Optional[int] = ...) -> None: ...
