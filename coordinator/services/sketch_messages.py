"""Sketch answers as messages: library results to Sketches protobufs, and batches from them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from coordinator.sketches import SketchMapView
from coordinator.sketches.items import PACKED_DOUBLES, PACKED_STRINGS
from coordinator.sketches.maps import Loaded
from grid.errors import InvalidArgument
from grid.sketches import (
    BloomFill,
    CountMinSketch,
    DistinctCount,
    Quantile,
    SketchError,
    SketchKind,
    SketchKindError,
    SketchParameterError,
    TopItems,
)
from shoal.v1 import sketches_pb2

# The ranks a kll estimate answers: the extremes, the tails and the quartiles.
SUMMARY_RANKS = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


@contextmanager
def answering() -> Iterator[None]:
    """Turn a sketch library error (bad argument, wrong kind) into INVALID_ARGUMENT."""
    try:
        yield
    except SketchKindError as error:
        raise InvalidArgument(str(error), field="kind") from None
    except SketchParameterError as error:
        raise InvalidArgument(str(error), field=error.parameter) from None
    except SketchError as error:
        raise InvalidArgument(str(error), field="items") from None


def batch_bytes(batch: sketches_pb2.ItemBatch) -> bytes:
    """The wire form (coordinator.sketches.items) of an ItemBatch message."""
    form = batch.WhichOneof("encoding")
    if form == "nul_separated":
        return bytes((PACKED_STRINGS,)) + batch.nul_separated
    if form == "float64_le":
        return bytes((PACKED_DOUBLES,)) + batch.float64_le
    if form == "json":
        return batch.json
    raise InvalidArgument("items: give a batch of items", field="items")


def map_info(view: SketchMapView) -> sketches_pb2.SketchMapInfo:
    return sketches_pb2.SketchMapInfo(
        name=view.name,
        kind=view.spec.kind.value,
        params_json=orjson.dumps(dict(view.spec.params), option=orjson.OPT_SORT_KEYS),
        sketch_bytes_max=view.sketch_bytes_max,
        keys=view.keys,
        memory_bytes=view.memory_bytes,
    )


def distinct_count(answer: DistinctCount) -> sketches_pb2.DistinctCountAnswer:
    return sketches_pb2.DistinctCountAnswer(
        estimate=answer.estimate,
        intervals=[
            sketches_pb2.Interval(
                standard_deviations=item.standard_deviations, lower=item.lower, upper=item.upper
            )
            for item in answer.intervals
        ],
        relative_standard_error=answer.relative_standard_error,
    )


def bloom_fill(fill: BloomFill) -> sketches_pb2.BloomAnswer:
    return sketches_pb2.BloomAnswer(
        bits=fill.bits,
        hashes=fill.hashes,
        bits_set=fill.bits_set,
        items_added=fill.items_added,
        capacity_items=fill.capacity_items,
        error_rate=fill.error_rate,
        expected_false_positive_rate=fill.expected_false_positive_rate,
    )


def quantiles(
    answers: tuple[Quantile, ...], error: float, seen: int
) -> sketches_pb2.QuantilesAnswer:
    return sketches_pb2.QuantilesAnswer(
        quantiles=[
            sketches_pb2.Quantile(
                rank=item.rank,
                value=item.value,
                lower_value=item.lower_value,
                upper_value=item.upper_value,
            )
            for item in answers
        ],
        normalized_rank_error=error,
        items_seen=seen,
    )


def top(answer: TopItems) -> sketches_pb2.TopAnswer:
    return sketches_pb2.TopAnswer(
        items=[
            sketches_pb2.FrequentItem(
                item=item.item,
                estimate=item.estimate,
                lower_bound=item.lower_bound,
                upper_bound=item.upper_bound,
            )
            for item in answer.items
        ],
        total_weight=answer.total_weight,
        maximum_error=answer.maximum_error,
        error_bound=answer.error_bound,
    )


def sample(loaded: Loaded) -> sketches_pb2.SampleAnswer:
    answer = loaded.sketch.sample()
    return sketches_pb2.SampleAnswer(
        items_json=orjson.dumps(list(answer.items)), items_seen=answer.items_seen, k=answer.k
    )


def estimate(loaded: Loaded) -> sketches_pb2.EstimateResponse:
    """The kind's main answer: what ``estimate`` means for each kind (see the README)."""
    sketch = loaded.sketch
    response = sketches_pb2.EstimateResponse(
        kind=sketch.kind.value, keys_found=loaded.keys_found, memory_bytes=loaded.memory_bytes
    )
    kind = sketch.kind
    if kind is SketchKind.HYPERLOGLOG:
        response.distinct_count.CopyFrom(distinct_count(sketch.distinct_count()))
    elif kind is SketchKind.COUNT_MIN:
        assert isinstance(sketch, CountMinSketch)
        epsilon = sketch.epsilon()
        weight = float(sketch.items_seen() or 0)
        response.count_min.CopyFrom(
            sketches_pb2.CountMinAnswer(
                total_weight=weight,
                epsilon=epsilon,
                error_bound=epsilon * weight,
                confidence=1.0 - math.exp(-int(loaded.spec.params["depth"])),
                width=int(loaded.spec.params["width"]),
                depth=int(loaded.spec.params["depth"]),
            )
        )
    elif kind is SketchKind.BLOOM:
        response.bloom.CopyFrom(bloom_fill(sketch.fill()))
    elif kind is SketchKind.RESERVOIR:
        response.sample.CopyFrom(sample(loaded))
    elif kind is SketchKind.KLL:
        answers = sketch.quantiles(SUMMARY_RANKS)
        response.quantiles.CopyFrom(
            quantiles(answers, answers[0].normalized_rank_error, sketch.items_seen() or 0)
        )
    else:
        response.top.CopyFrom(top(sketch.top()))
    return response
