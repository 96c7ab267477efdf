from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateMapRequest(_message.Message):
    __slots__ = ("name", "schema_json", "if_not_exists", "sketch_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    IF_NOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    SKETCH_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    schema_json: bytes
    if_not_exists: bool
    sketch_json: bytes
    def __init__(self, name: _Optional[str] = ..., schema_json: _Optional[bytes] = ..., if_not_exists: _Optional[bool] = ..., sketch_json: _Optional[bytes] = ...) -> None: ...

class MapInfo(_message.Message):
    __slots__ = ("name", "schema_json", "schema_version", "entries", "memory_bytes", "sketch_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    SKETCH_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    schema_json: bytes
    schema_version: int
    entries: int
    memory_bytes: int
    sketch_json: bytes
    def __init__(self, name: _Optional[str] = ..., schema_json: _Optional[bytes] = ..., schema_version: _Optional[int] = ..., entries: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., sketch_json: _Optional[bytes] = ...) -> None: ...

class DropMapRequest(_message.Message):
    __slots__ = ("name", "if_exists")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    if_exists: bool
    def __init__(self, name: _Optional[str] = ..., if_exists: _Optional[bool] = ...) -> None: ...

class DropMapResponse(_message.Message):
    __slots__ = ("dropped",)
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    dropped: bool
    def __init__(self, dropped: _Optional[bool] = ...) -> None: ...

class ListMapsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMapsResponse(_message.Message):
    __slots__ = ("maps",)
    MAPS_FIELD_NUMBER: _ClassVar[int]
    maps: _containers.RepeatedCompositeFieldContainer[MapInfo]
    def __init__(self, maps: _Optional[_Iterable[_Union[MapInfo, _Mapping]]] = ...) -> None: ...

class DescribeMapRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AlterMapSchemaRequest(_message.Message):
    __slots__ = ("name", "schema_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    schema_json: bytes
    def __init__(self, name: _Optional[str] = ..., schema_json: _Optional[bytes] = ...) -> None: ...

class ClusterInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClusterInfoResponse(_message.Message):
    __slots__ = ("version", "node_id", "backend", "partitions", "data_dir", "fsync", "uptime_ms", "maps", "entries", "limits_json")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    FSYNC_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_JSON_FIELD_NUMBER: _ClassVar[int]
    version: str
    node_id: str
    backend: str
    partitions: int
    data_dir: str
    fsync: str
    uptime_ms: int
    maps: int
    entries: int
    limits_json: bytes
    def __init__(self, version: _Optional[str] = ..., node_id: _Optional[str] = ..., backend: _Optional[str] = ..., partitions: _Optional[int] = ..., data_dir: _Optional[str] = ..., fsync: _Optional[str] = ..., uptime_ms: _Optional[int] = ..., maps: _Optional[int] = ..., entries: _Optional[int] = ..., limits_json: _Optional[bytes] = ...) -> None: ...
