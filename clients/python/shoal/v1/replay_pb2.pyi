from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PipelineCode(_message.Message):
    __slots__ = ("name", "file_name", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    file_name: str
    source: str
    def __init__(self, name: _Optional[str] = ..., file_name: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class StartReplayRequest(_message.Message):
    __slots__ = ("pipeline", "topic", "from_ms", "to_ms", "from_offsets", "to_offsets", "rate_per_s", "kafka", "sandbox")
    class FromOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class ToOffsetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    FROM_MS_FIELD_NUMBER: _ClassVar[int]
    TO_MS_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    TO_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    KAFKA_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineCode
    topic: str
    from_ms: int
    to_ms: int
    from_offsets: _containers.ScalarMap[int, int]
    to_offsets: _containers.ScalarMap[int, int]
    rate_per_s: float
    kafka: str
    sandbox: str
    def __init__(self, pipeline: _Optional[_Union[PipelineCode, _Mapping]] = ..., topic: _Optional[str] = ..., from_ms: _Optional[int] = ..., to_ms: _Optional[int] = ..., from_offsets: _Optional[_Mapping[int, int]] = ..., to_offsets: _Optional[_Mapping[int, int]] = ..., rate_per_s: _Optional[float] = ..., kafka: _Optional[str] = ..., sandbox: _Optional[str] = ...) -> None: ...

class ReplayRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class FollowReplayRequest(_message.Message):
    __slots__ = ("id", "interval_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    interval_ms: int
    def __init__(self, id: _Optional[str] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class ReplayPartition(_message.Message):
    __slots__ = ("partition", "start_offset", "end_offset", "next_offset", "applied", "rejected", "duplicates")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    partition: int
    start_offset: int
    end_offset: int
    next_offset: int
    applied: int
    rejected: int
    duplicates: int
    def __init__(self, partition: _Optional[int] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., next_offset: _Optional[int] = ..., applied: _Optional[int] = ..., rejected: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class ReplayStatus(_message.Message):
    __slots__ = ("id", "state", "error", "pipeline", "topic", "total", "processed", "applied", "rejected", "duplicates", "rate_per_s", "eta_s", "rate_limit_per_s", "dead_letter_topic", "created_ms", "finished_ms", "partitions", "from_ms", "to_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_S_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_TOPIC_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    FROM_MS_FIELD_NUMBER: _ClassVar[int]
    TO_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: str
    error: str
    pipeline: str
    topic: str
    total: int
    processed: int
    applied: int
    rejected: int
    duplicates: int
    rate_per_s: float
    eta_s: float
    rate_limit_per_s: float
    dead_letter_topic: str
    created_ms: int
    finished_ms: int
    partitions: _containers.RepeatedCompositeFieldContainer[ReplayPartition]
    from_ms: int
    to_ms: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., pipeline: _Optional[str] = ..., topic: _Optional[str] = ..., total: _Optional[int] = ..., processed: _Optional[int] = ..., applied: _Optional[int] = ..., rejected: _Optional[int] = ..., duplicates: _Optional[int] = ..., rate_per_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., rate_limit_per_s: _Optional[float] = ..., dead_letter_topic: _Optional[str] = ..., created_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., partitions: _Optional[_Iterable[_Union[ReplayPartition, _Mapping]]] = ..., from_ms: _Optional[int] = ..., to_ms: _Optional[int] = ...) -> None: ...

class ListReplaysRequest(_message.Message):
    __slots__ = ("sandbox",)
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    sandbox: str
    def __init__(self, sandbox: _Optional[str] = ...) -> None: ...

class ListReplaysResponse(_message.Message):
    __slots__ = ("replays",)
    REPLAYS_FIELD_NUMBER: _ClassVar[int]
    replays: _containers.RepeatedCompositeFieldContainer[ReplayStatus]
    def __init__(self, replays: _Optional[_Iterable[_Union[ReplayStatus, _Mapping]]] = ...) -> None: ...

class OriginRequest(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    def __init__(self, pipeline: _Optional[str] = ...) -> None: ...

class OriginResponse(_message.Message):
    __slots__ = ("kafka", "pipeline")
    KAFKA_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    kafka: str
    pipeline: PipelineCode
    def __init__(self, kafka: _Optional[str] = ..., pipeline: _Optional[_Union[PipelineCode, _Mapping]] = ...) -> None: ...

class BeginBackfillRequest(_message.Message):
    __slots__ = ("pipeline", "file_name", "content_sha256", "rows")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    pipeline: PipelineCode
    file_name: str
    content_sha256: str
    rows: int
    def __init__(self, pipeline: _Optional[_Union[PipelineCode, _Mapping]] = ..., file_name: _Optional[str] = ..., content_sha256: _Optional[str] = ..., rows: _Optional[int] = ...) -> None: ...

class BackfillState(_message.Message):
    __slots__ = ("id", "state", "next_row", "rows", "applied", "rejected", "duplicates", "already_done", "file_name", "pipeline", "finished_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NEXT_ROW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    ALREADY_DONE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: str
    next_row: int
    rows: int
    applied: int
    rejected: int
    duplicates: int
    already_done: bool
    file_name: str
    pipeline: str
    finished_ms: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[str] = ..., next_row: _Optional[int] = ..., rows: _Optional[int] = ..., applied: _Optional[int] = ..., rejected: _Optional[int] = ..., duplicates: _Optional[int] = ..., already_done: _Optional[bool] = ..., file_name: _Optional[str] = ..., pipeline: _Optional[str] = ..., finished_ms: _Optional[int] = ...) -> None: ...

class ApplyBackfillRequest(_message.Message):
    __slots__ = ("id", "first_row", "rows")
    ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    id: str
    first_row: int
    rows: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, id: _Optional[str] = ..., first_row: _Optional[int] = ..., rows: _Optional[_Iterable[bytes]] = ...) -> None: ...

class BackfillRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BackfillReject(_message.Message):
    __slots__ = ("row", "stage", "rule", "field", "message", "value")
    ROW_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    row: int
    stage: str
    rule: str
    field: str
    message: str
    value: bytes
    def __init__(self, row: _Optional[int] = ..., stage: _Optional[str] = ..., rule: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class BackfillSummary(_message.Message):
    __slots__ = ("state", "rejects")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REJECTS_FIELD_NUMBER: _ClassVar[int]
    state: BackfillState
    rejects: _containers.RepeatedCompositeFieldContainer[BackfillReject]
    def __init__(self, state: _Optional[_Union[BackfillState, _Mapping]] = ..., rejects: _Optional[_Iterable[_Union[BackfillReject, _Mapping]]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("pipeline", "from_ms", "to_ms", "redeliver")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    FROM_MS_FIELD_NUMBER: _ClassVar[int]
    TO_MS_FIELD_NUMBER: _ClassVar[int]
    REDELIVER_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    from_ms: int
    to_ms: int
    redeliver: bool
    def __init__(self, pipeline: _Optional[str] = ..., from_ms: _Optional[int] = ..., to_ms: _Optional[int] = ..., redeliver: _Optional[bool] = ...) -> None: ...

class OffsetRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class ReconcilePartition(_message.Message):
    __slots__ = ("topic", "partition", "start_offset", "end_offset", "kafka_events", "applied", "rejected", "duplicates", "missing", "applied_twice", "pending", "bookkeeping_floor", "unverifiable", "redelivered")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    KAFKA_EVENTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    APPLIED_TWICE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    BOOKKEEPING_FLOOR_FIELD_NUMBER: _ClassVar[int]
    UNVERIFIABLE_FIELD_NUMBER: _ClassVar[int]
    REDELIVERED_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    start_offset: int
    end_offset: int
    kafka_events: int
    applied: int
    rejected: int
    duplicates: int
    missing: _containers.RepeatedCompositeFieldContainer[OffsetRange]
    applied_twice: _containers.RepeatedCompositeFieldContainer[OffsetRange]
    pending: int
    bookkeeping_floor: int
    unverifiable: int
    redelivered: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., kafka_events: _Optional[int] = ..., applied: _Optional[int] = ..., rejected: _Optional[int] = ..., duplicates: _Optional[int] = ..., missing: _Optional[_Iterable[_Union[OffsetRange, _Mapping]]] = ..., applied_twice: _Optional[_Iterable[_Union[OffsetRange, _Mapping]]] = ..., pending: _Optional[int] = ..., bookkeeping_floor: _Optional[int] = ..., unverifiable: _Optional[int] = ..., redelivered: _Optional[int] = ...) -> None: ...

class ReconcileReport(_message.Message):
    __slots__ = ("pipeline", "from_ms", "to_ms", "partitions", "discrepancies")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    FROM_MS_FIELD_NUMBER: _ClassVar[int]
    TO_MS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    DISCREPANCIES_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    from_ms: int
    to_ms: int
    partitions: _containers.RepeatedCompositeFieldContainer[ReconcilePartition]
    discrepancies: int
    def __init__(self, pipeline: _Optional[str] = ..., from_ms: _Optional[int] = ..., to_ms: _Optional[int] = ..., partitions: _Optional[_Iterable[_Union[ReconcilePartition, _Mapping]]] = ..., discrepancies: _Optional[int] = ...) -> None: ...
