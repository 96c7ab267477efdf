from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateSandboxRequest(_message.Message):
    __slots__ = ("name", "from_snapshot", "maps", "ttl_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_snapshot: bool
    maps: _containers.RepeatedScalarFieldContainer[str]
    ttl_ms: int
    def __init__(self, name: _Optional[str] = ..., from_snapshot: _Optional[bool] = ..., maps: _Optional[_Iterable[str]] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class ListSandboxesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SandboxRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SandboxInfo(_message.Message):
    __slots__ = ("name", "address", "state", "error", "created_at_ms", "expires_at_ms", "ttl_ms", "age_ms", "from_snapshot", "snapshot_version", "snapshot_at_ms", "maps", "seeded_entries", "memory_bytes", "memory_bytes_max", "disk_bytes", "pid", "data_dir", "replays", "restarts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    AGE_MS_FIELD_NUMBER: _ClassVar[int]
    FROM_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    SEEDED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_MAX_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    REPLAYS_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    state: str
    error: str
    created_at_ms: int
    expires_at_ms: int
    ttl_ms: int
    age_ms: int
    from_snapshot: bool
    snapshot_version: int
    snapshot_at_ms: int
    maps: _containers.RepeatedScalarFieldContainer[str]
    seeded_entries: int
    memory_bytes: int
    memory_bytes_max: int
    disk_bytes: int
    pid: int
    data_dir: str
    replays: _containers.RepeatedScalarFieldContainer[str]
    restarts: int
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., age_ms: _Optional[int] = ..., from_snapshot: _Optional[bool] = ..., snapshot_version: _Optional[int] = ..., snapshot_at_ms: _Optional[int] = ..., maps: _Optional[_Iterable[str]] = ..., seeded_entries: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., memory_bytes_max: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., pid: _Optional[int] = ..., data_dir: _Optional[str] = ..., replays: _Optional[_Iterable[str]] = ..., restarts: _Optional[int] = ...) -> None: ...

class ListSandboxesResponse(_message.Message):
    __slots__ = ("sandboxes",)
    SANDBOXES_FIELD_NUMBER: _ClassVar[int]
    sandboxes: _containers.RepeatedCompositeFieldContainer[SandboxInfo]
    def __init__(self, sandboxes: _Optional[_Iterable[_Union[SandboxInfo, _Mapping]]] = ...) -> None: ...

class DeleteSandboxResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class DiffRequest(_message.Message):
    __slots__ = ("sandbox", "maps", "sample")
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    sandbox: str
    maps: _containers.RepeatedScalarFieldContainer[str]
    sample: int
    def __init__(self, sandbox: _Optional[str] = ..., maps: _Optional[_Iterable[str]] = ..., sample: _Optional[int] = ...) -> None: ...

class OperationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("id", "kind", "sandbox", "state", "phase", "done", "total", "unit", "started_at_ms", "finished_at_ms", "error_code", "error", "result_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    sandbox: str
    state: str
    phase: str
    done: int
    total: int
    unit: str
    started_at_ms: int
    finished_at_ms: int
    error_code: str
    error: str
    result_json: bytes
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., sandbox: _Optional[str] = ..., state: _Optional[str] = ..., phase: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., unit: _Optional[str] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., error_code: _Optional[str] = ..., error: _Optional[str] = ..., result_json: _Optional[bytes] = ...) -> None: ...

class ExportMapsRequest(_message.Message):
    __slots__ = ("maps", "missing_ok")
    MAPS_FIELD_NUMBER: _ClassVar[int]
    MISSING_OK_FIELD_NUMBER: _ClassVar[int]
    maps: _containers.RepeatedScalarFieldContainer[str]
    missing_ok: bool
    def __init__(self, maps: _Optional[_Iterable[str]] = ..., missing_ok: _Optional[bool] = ...) -> None: ...

class ExportMapsChunk(_message.Message):
    __slots__ = ("map", "definition_json", "arrow_ipc", "read_version")
    MAP_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    READ_VERSION_FIELD_NUMBER: _ClassVar[int]
    map: str
    definition_json: bytes
    arrow_ipc: bytes
    read_version: int
    def __init__(self, map: _Optional[str] = ..., definition_json: _Optional[bytes] = ..., arrow_ipc: _Optional[bytes] = ..., read_version: _Optional[int] = ...) -> None: ...
