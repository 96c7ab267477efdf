"""Reading Sketches replies into the SDK's result types (see _sketch_results)."""

from __future__ import annotations

import json

from shoal._sketch_results import (
    AccuracyReport,
    BloomSummary,
    CountMinSummary,
    DistinctCount,
    Estimate,
    Frequency,
    FrequentItem,
    KindAccuracy,
    Quantile,
    QuantileSummary,
    Rank,
    ReservoirSample,
    SketchMapInfo,
    TopItems,
)
from shoal.v1 import sketches_pb2


def map_info(message: sketches_pb2.SketchMapInfo) -> SketchMapInfo:
    return SketchMapInfo(
        name=message.name,
        kind=message.kind,
        params=json.loads(message.params_json) if message.params_json else {},
        sketch_bytes_max=message.sketch_bytes_max,
        keys=message.keys,
        memory_bytes=message.memory_bytes,
    )


def bloom(message: sketches_pb2.BloomAnswer, keys_found: int, memory_bytes: int) -> BloomSummary:
    return BloomSummary(
        value=message.items_added,
        items_added=message.items_added,
        bits=message.bits,
        hashes=message.hashes,
        bits_set=message.bits_set,
        capacity_items=message.capacity_items,
        error_rate=message.error_rate,
        expected_false_positive_rate=message.expected_false_positive_rate,
        keys_found=keys_found,
        memory_bytes=memory_bytes,
    )


def sample(
    message: sketches_pb2.SampleAnswer, keys_found: int, memory_bytes: int
) -> ReservoirSample:
    items = tuple(json.loads(message.items_json)) if message.items_json else ()
    return ReservoirSample(items, items, message.items_seen, message.k, keys_found, memory_bytes)


def quantiles(
    message: sketches_pb2.QuantilesAnswer, keys_found: int, memory_bytes: int
) -> QuantileSummary:
    found = tuple(
        Quantile(item.rank, item.value, item.lower_value, item.upper_value)
        for item in message.quantiles
    )
    median = next((item.value for item in found if item.rank == 0.5), float("nan"))
    return QuantileSummary(
        median, found, message.normalized_rank_error, message.items_seen, keys_found, memory_bytes
    )


def top(message: sketches_pb2.TopAnswer, keys_found: int, memory_bytes: int) -> TopItems:
    items = tuple(
        FrequentItem(item.item, item.estimate, item.lower_bound, item.upper_bound)
        for item in message.items
    )
    return TopItems(
        items,
        items,
        message.total_weight,
        message.maximum_error,
        message.error_bound,
        keys_found,
        memory_bytes,
    )


def estimate(message: sketches_pb2.EstimateResponse) -> Estimate:
    found = message.keys_found
    size = message.memory_bytes
    answer = message.WhichOneof("answer")
    if answer == "distinct_count":
        count = message.distinct_count
        intervals = {item.standard_deviations: (item.lower, item.upper) for item in count.intervals}
        return DistinctCount(count.estimate, intervals, count.relative_standard_error, found, size)
    if answer == "count_min":
        cms = message.count_min
        return CountMinSummary(
            cms.total_weight,
            cms.total_weight,
            cms.epsilon,
            cms.error_bound,
            cms.confidence,
            cms.width,
            cms.depth,
            found,
            size,
        )
    if answer == "bloom":
        return bloom(message.bloom, found, size)
    if answer == "sample":
        return sample(message.sample, found, size)
    if answer == "quantiles":
        return quantiles(message.quantiles, found, size)
    return top(message.top, found, size)


def frequencies(message: sketches_pb2.FrequencyResponse) -> list[Frequency]:
    return [
        Frequency(
            item.item,
            item.estimate,
            item.lower_bound,
            item.upper_bound,
            item.error_bound,
            item.total_weight,
            item.confidence,
        )
        for item in message.frequencies
    ]


def ranks(message: sketches_pb2.RanksResponse) -> list[Rank]:
    return [Rank(item.value, item.rank, item.lower_rank, item.upper_rank) for item in message.ranks]


def accuracy(message: sketches_pb2.AccuracyResponse) -> AccuracyReport:
    return AccuracyReport(
        kinds={
            item.kind: KindAccuracy(
                item.kind,
                item.keys,
                item.samples,
                item.mean_relative_error,
                item.max_relative_error,
                item.error_bound,
                item.outside_bound,
            )
            for item in message.kinds
        },
        sample_rate=message.sample_rate,
        tracked_keys=message.tracked_keys,
        overflowed_keys=message.overflowed_keys,
        refused_keys=message.refused_keys,
        untrusted_keys=message.untrusted_keys,
    )
