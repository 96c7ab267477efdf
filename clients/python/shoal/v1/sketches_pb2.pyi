from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemBatch(_message.Message):
    __slots__ = ("json", "nul_separated", "float64_le")
    JSON_FIELD_NUMBER: _ClassVar[int]
    NUL_SEPARATED_FIELD_NUMBER: _ClassVar[int]
    FLOAT64_LE_FIELD_NUMBER: _ClassVar[int]
    json: bytes
    nul_separated: bytes
    float64_le: bytes
    def __init__(self, json: _Optional[bytes] = ..., nul_separated: _Optional[bytes] = ..., float64_le: _Optional[bytes] = ...) -> None: ...

class CreateSketchMapRequest(_message.Message):
    __slots__ = ("name", "kind", "params_json", "if_not_exists")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    IF_NOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    params_json: bytes
    if_not_exists: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., params_json: _Optional[bytes] = ..., if_not_exists: _Optional[bool] = ...) -> None: ...

class SketchMapInfo(_message.Message):
    __slots__ = ("name", "kind", "params_json", "sketch_bytes_max", "keys", "memory_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    SKETCH_BYTES_MAX_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    params_json: bytes
    sketch_bytes_max: int
    keys: int
    memory_bytes: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., params_json: _Optional[bytes] = ..., sketch_bytes_max: _Optional[int] = ..., keys: _Optional[int] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class ListSketchMapsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSketchMapsResponse(_message.Message):
    __slots__ = ("maps",)
    MAPS_FIELD_NUMBER: _ClassVar[int]
    maps: _containers.RepeatedCompositeFieldContainer[SketchMapInfo]
    def __init__(self, maps: _Optional[_Iterable[_Union[SketchMapInfo, _Mapping]]] = ...) -> None: ...

class AddRequest(_message.Message):
    __slots__ = ("map", "key", "items", "request_id")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    items: ItemBatch
    request_id: bytes
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ..., items: _Optional[_Union[ItemBatch, _Mapping]] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class AddResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class SketchTarget(_message.Message):
    __slots__ = ("map", "keys")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    map: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, map: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class EstimateRequest(_message.Message):
    __slots__ = ("map", "key")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class MergeEstimateRequest(_message.Message):
    __slots__ = ("map", "keys")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    map: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, map: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("standard_deviations", "lower", "upper")
    STANDARD_DEVIATIONS_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    standard_deviations: int
    lower: float
    upper: float
    def __init__(self, standard_deviations: _Optional[int] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class DistinctCountAnswer(_message.Message):
    __slots__ = ("estimate", "intervals", "relative_standard_error")
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    estimate: float
    intervals: _containers.RepeatedCompositeFieldContainer[Interval]
    relative_standard_error: float
    def __init__(self, estimate: _Optional[float] = ..., intervals: _Optional[_Iterable[_Union[Interval, _Mapping]]] = ..., relative_standard_error: _Optional[float] = ...) -> None: ...

class CountMinAnswer(_message.Message):
    __slots__ = ("total_weight", "epsilon", "error_bound", "confidence", "width", "depth")
    TOTAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    ERROR_BOUND_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    total_weight: float
    epsilon: float
    error_bound: float
    confidence: float
    width: int
    depth: int
    def __init__(self, total_weight: _Optional[float] = ..., epsilon: _Optional[float] = ..., error_bound: _Optional[float] = ..., confidence: _Optional[float] = ..., width: _Optional[int] = ..., depth: _Optional[int] = ...) -> None: ...

class BloomAnswer(_message.Message):
    __slots__ = ("bits", "hashes", "bits_set", "items_added", "capacity_items", "error_rate", "expected_false_positive_rate")
    BITS_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    BITS_SET_FIELD_NUMBER: _ClassVar[int]
    ITEMS_ADDED_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_ITEMS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FALSE_POSITIVE_RATE_FIELD_NUMBER: _ClassVar[int]
    bits: int
    hashes: int
    bits_set: int
    items_added: int
    capacity_items: int
    error_rate: float
    expected_false_positive_rate: float
    def __init__(self, bits: _Optional[int] = ..., hashes: _Optional[int] = ..., bits_set: _Optional[int] = ..., items_added: _Optional[int] = ..., capacity_items: _Optional[int] = ..., error_rate: _Optional[float] = ..., expected_false_positive_rate: _Optional[float] = ...) -> None: ...

class SampleAnswer(_message.Message):
    __slots__ = ("items_json", "items_seen", "k")
    ITEMS_JSON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SEEN_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    items_json: bytes
    items_seen: int
    k: int
    def __init__(self, items_json: _Optional[bytes] = ..., items_seen: _Optional[int] = ..., k: _Optional[int] = ...) -> None: ...

class Quantile(_message.Message):
    __slots__ = ("rank", "value", "lower_value", "upper_value")
    RANK_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_VALUE_FIELD_NUMBER: _ClassVar[int]
    UPPER_VALUE_FIELD_NUMBER: _ClassVar[int]
    rank: float
    value: float
    lower_value: float
    upper_value: float
    def __init__(self, rank: _Optional[float] = ..., value: _Optional[float] = ..., lower_value: _Optional[float] = ..., upper_value: _Optional[float] = ...) -> None: ...

class Rank(_message.Message):
    __slots__ = ("value", "rank", "lower_rank", "upper_rank")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    LOWER_RANK_FIELD_NUMBER: _ClassVar[int]
    UPPER_RANK_FIELD_NUMBER: _ClassVar[int]
    value: float
    rank: float
    lower_rank: float
    upper_rank: float
    def __init__(self, value: _Optional[float] = ..., rank: _Optional[float] = ..., lower_rank: _Optional[float] = ..., upper_rank: _Optional[float] = ...) -> None: ...

class QuantilesAnswer(_message.Message):
    __slots__ = ("quantiles", "normalized_rank_error", "items_seen")
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_RANK_ERROR_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SEEN_FIELD_NUMBER: _ClassVar[int]
    quantiles: _containers.RepeatedCompositeFieldContainer[Quantile]
    normalized_rank_error: float
    items_seen: int
    def __init__(self, quantiles: _Optional[_Iterable[_Union[Quantile, _Mapping]]] = ..., normalized_rank_error: _Optional[float] = ..., items_seen: _Optional[int] = ...) -> None: ...

class FrequentItem(_message.Message):
    __slots__ = ("item", "estimate", "lower_bound", "upper_bound")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    item: str
    estimate: int
    lower_bound: int
    upper_bound: int
    def __init__(self, item: _Optional[str] = ..., estimate: _Optional[int] = ..., lower_bound: _Optional[int] = ..., upper_bound: _Optional[int] = ...) -> None: ...

class TopAnswer(_message.Message):
    __slots__ = ("items", "total_weight", "maximum_error", "error_bound")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_BOUND_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[FrequentItem]
    total_weight: int
    maximum_error: int
    error_bound: float
    def __init__(self, items: _Optional[_Iterable[_Union[FrequentItem, _Mapping]]] = ..., total_weight: _Optional[int] = ..., maximum_error: _Optional[int] = ..., error_bound: _Optional[float] = ...) -> None: ...

class EstimateResponse(_message.Message):
    __slots__ = ("kind", "keys_found", "memory_bytes", "distinct_count", "count_min", "bloom", "sample", "quantiles", "top")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FOUND_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    COUNT_MIN_FIELD_NUMBER: _ClassVar[int]
    BLOOM_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    kind: str
    keys_found: int
    memory_bytes: int
    distinct_count: DistinctCountAnswer
    count_min: CountMinAnswer
    bloom: BloomAnswer
    sample: SampleAnswer
    quantiles: QuantilesAnswer
    top: TopAnswer
    def __init__(self, kind: _Optional[str] = ..., keys_found: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., distinct_count: _Optional[_Union[DistinctCountAnswer, _Mapping]] = ..., count_min: _Optional[_Union[CountMinAnswer, _Mapping]] = ..., bloom: _Optional[_Union[BloomAnswer, _Mapping]] = ..., sample: _Optional[_Union[SampleAnswer, _Mapping]] = ..., quantiles: _Optional[_Union[QuantilesAnswer, _Mapping]] = ..., top: _Optional[_Union[TopAnswer, _Mapping]] = ...) -> None: ...

class FrequencyRequest(_message.Message):
    __slots__ = ("target", "items")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    target: SketchTarget
    items: ItemBatch
    def __init__(self, target: _Optional[_Union[SketchTarget, _Mapping]] = ..., items: _Optional[_Union[ItemBatch, _Mapping]] = ...) -> None: ...

class Frequency(_message.Message):
    __slots__ = ("item", "estimate", "lower_bound", "upper_bound", "error_bound", "total_weight", "confidence")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    ERROR_BOUND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    item: str
    estimate: float
    lower_bound: float
    upper_bound: float
    error_bound: float
    total_weight: float
    confidence: float
    def __init__(self, item: _Optional[str] = ..., estimate: _Optional[float] = ..., lower_bound: _Optional[float] = ..., upper_bound: _Optional[float] = ..., error_bound: _Optional[float] = ..., total_weight: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class FrequencyResponse(_message.Message):
    __slots__ = ("frequencies",)
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    frequencies: _containers.RepeatedCompositeFieldContainer[Frequency]
    def __init__(self, frequencies: _Optional[_Iterable[_Union[Frequency, _Mapping]]] = ...) -> None: ...

class ContainsRequest(_message.Message):
    __slots__ = ("target", "items")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    target: SketchTarget
    items: ItemBatch
    def __init__(self, target: _Optional[_Union[SketchTarget, _Mapping]] = ..., items: _Optional[_Union[ItemBatch, _Mapping]] = ...) -> None: ...

class ContainsResponse(_message.Message):
    __slots__ = ("present", "fill")
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    present: _containers.RepeatedScalarFieldContainer[bool]
    fill: BloomAnswer
    def __init__(self, present: _Optional[_Iterable[bool]] = ..., fill: _Optional[_Union[BloomAnswer, _Mapping]] = ...) -> None: ...

class QuantilesRequest(_message.Message):
    __slots__ = ("target", "ranks")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RANKS_FIELD_NUMBER: _ClassVar[int]
    target: SketchTarget
    ranks: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, target: _Optional[_Union[SketchTarget, _Mapping]] = ..., ranks: _Optional[_Iterable[float]] = ...) -> None: ...

class QuantilesResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: QuantilesAnswer
    def __init__(self, answer: _Optional[_Union[QuantilesAnswer, _Mapping]] = ...) -> None: ...

class RanksRequest(_message.Message):
    __slots__ = ("target", "values")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    target: SketchTarget
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, target: _Optional[_Union[SketchTarget, _Mapping]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class RanksResponse(_message.Message):
    __slots__ = ("ranks", "normalized_rank_error", "items_seen")
    RANKS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_RANK_ERROR_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SEEN_FIELD_NUMBER: _ClassVar[int]
    ranks: _containers.RepeatedCompositeFieldContainer[Rank]
    normalized_rank_error: float
    items_seen: int
    def __init__(self, ranks: _Optional[_Iterable[_Union[Rank, _Mapping]]] = ..., normalized_rank_error: _Optional[float] = ..., items_seen: _Optional[int] = ...) -> None: ...

class TopRequest(_message.Message):
    __slots__ = ("target", "k")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    target: SketchTarget
    k: int
    def __init__(self, target: _Optional[_Union[SketchTarget, _Mapping]] = ..., k: _Optional[int] = ...) -> None: ...

class TopResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: TopAnswer
    def __init__(self, answer: _Optional[_Union[TopAnswer, _Mapping]] = ...) -> None: ...

class SampleRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: SketchTarget
    def __init__(self, target: _Optional[_Union[SketchTarget, _Mapping]] = ...) -> None: ...

class SampleResponse(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: SampleAnswer
    def __init__(self, answer: _Optional[_Union[SampleAnswer, _Mapping]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("map", "key")
    MAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    map: str
    key: str
    def __init__(self, map: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("found", "kind", "params_json", "data", "format", "version")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    found: bool
    kind: str
    params_json: bytes
    data: bytes
    format: str
    version: int
    def __init__(self, found: _Optional[bool] = ..., kind: _Optional[str] = ..., params_json: _Optional[bytes] = ..., data: _Optional[bytes] = ..., format: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AccuracyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindAccuracy(_message.Message):
    __slots__ = ("kind", "samples", "mean_relative_error", "max_relative_error", "error_bound", "outside_bound", "keys")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_RELATIVE_ERROR_FIELD_NUMBER: _ClassVar[int]
    MAX_RELATIVE_ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_BOUND_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_BOUND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    samples: int
    mean_relative_error: float
    max_relative_error: float
    error_bound: float
    outside_bound: int
    keys: int
    def __init__(self, kind: _Optional[str] = ..., samples: _Optional[int] = ..., mean_relative_error: _Optional[float] = ..., max_relative_error: _Optional[float] = ..., error_bound: _Optional[float] = ..., outside_bound: _Optional[int] = ..., keys: _Optional[int] = ...) -> None: ...

class AccuracyResponse(_message.Message):
    __slots__ = ("kinds", "sample_rate", "tracked_keys", "overflowed_keys", "refused_keys", "untrusted_keys")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    TRACKED_KEYS_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_KEYS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_KEYS_FIELD_NUMBER: _ClassVar[int]
    UNTRUSTED_KEYS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedCompositeFieldContainer[KindAccuracy]
    sample_rate: float
    tracked_keys: int
    overflowed_keys: int
    refused_keys: int
    untrusted_keys: int
    def __init__(self, kinds: _Optional[_Iterable[_Union[KindAccuracy, _Mapping]]] = ..., sample_rate: _Optional[float] = ..., tracked_keys: _Optional[int] = ..., overflowed_keys: _Optional[int] = ..., refused_keys: _Optional[int] = ..., untrusted_keys: _Optional[int] = ...) -> None: ...
