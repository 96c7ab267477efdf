from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListPipelinesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PipelineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PipelineInfo(_message.Message):
    __slots__ = ("name", "topics", "group", "mode", "state", "error", "schema", "dead_letter_topic", "batch_max", "batch_ms", "max_in_flight", "on_error", "dedup_key", "dedup_window", "module", "assigned", "counters", "apply_latency_p50_ms", "apply_latency_p99_ms", "in_flight_batches", "dead_letters_pending", "apply_latency_p999_ms")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_TOPIC_FIELD_NUMBER: _ClassVar[int]
    BATCH_MAX_FIELD_NUMBER: _ClassVar[int]
    BATCH_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ON_ERROR_FIELD_NUMBER: _ClassVar[int]
    DEDUP_KEY_FIELD_NUMBER: _ClassVar[int]
    DEDUP_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    APPLY_LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    APPLY_LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_BATCHES_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_PENDING_FIELD_NUMBER: _ClassVar[int]
    APPLY_LATENCY_P999_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    topics: _containers.RepeatedScalarFieldContainer[str]
    group: str
    mode: str
    state: str
    error: str
    schema: str
    dead_letter_topic: str
    batch_max: int
    batch_ms: int
    max_in_flight: int
    on_error: str
    dedup_key: str
    dedup_window: int
    module: str
    assigned: _containers.RepeatedScalarFieldContainer[str]
    counters: _containers.ScalarMap[str, int]
    apply_latency_p50_ms: float
    apply_latency_p99_ms: float
    in_flight_batches: int
    dead_letters_pending: int
    apply_latency_p999_ms: float
    def __init__(self, name: _Optional[str] = ..., topics: _Optional[_Iterable[str]] = ..., group: _Optional[str] = ..., mode: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., schema: _Optional[str] = ..., dead_letter_topic: _Optional[str] = ..., batch_max: _Optional[int] = ..., batch_ms: _Optional[int] = ..., max_in_flight: _Optional[int] = ..., on_error: _Optional[str] = ..., dedup_key: _Optional[str] = ..., dedup_window: _Optional[int] = ..., module: _Optional[str] = ..., assigned: _Optional[_Iterable[str]] = ..., counters: _Optional[_Mapping[str, int]] = ..., apply_latency_p50_ms: _Optional[float] = ..., apply_latency_p99_ms: _Optional[float] = ..., in_flight_batches: _Optional[int] = ..., dead_letters_pending: _Optional[int] = ..., apply_latency_p999_ms: _Optional[float] = ...) -> None: ...

class ListPipelinesResponse(_message.Message):
    __slots__ = ("pipelines",)
    PIPELINES_FIELD_NUMBER: _ClassVar[int]
    pipelines: _containers.RepeatedCompositeFieldContainer[PipelineInfo]
    def __init__(self, pipelines: _Optional[_Iterable[_Union[PipelineInfo, _Mapping]]] = ...) -> None: ...

class LagRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PartitionLag(_message.Message):
    __slots__ = ("pipeline", "topic", "partition", "committed_offset", "end_offset", "lag", "assigned_here")
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_HERE_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    topic: str
    partition: int
    committed_offset: int
    end_offset: int
    lag: int
    assigned_here: bool
    def __init__(self, pipeline: _Optional[str] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., committed_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., lag: _Optional[int] = ..., assigned_here: _Optional[bool] = ...) -> None: ...

class LagResponse(_message.Message):
    __slots__ = ("partitions",)
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionLag]
    def __init__(self, partitions: _Optional[_Iterable[_Union[PartitionLag, _Mapping]]] = ...) -> None: ...
