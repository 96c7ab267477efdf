"""The wire forms of a batch of sketch items, and the size bound of every spec."""

from __future__ import annotations

import base64
import random

import numpy as np
import orjson
import pytest

from coordinator.sketches.bounds import check_fits, sketch_bytes_max
from coordinator.sketches.items import (
    PACKED_DOUBLES,
    PACKED_STRINGS,
    STORED_ITEM_BYTES_MAX,
    decode_items,
    item_count,
    sketch_document,
)
from grid.errors import InvalidArgument
from grid.sketches import SketchKind, SketchSpec, new_sketch

HLL = SketchKind.HYPERLOGLOG


def packed(*texts: str) -> bytes:
    return bytes((PACKED_STRINGS,)) + "\x00".join(texts).encode()


def doubles(*values: float) -> bytes:
    return bytes((PACKED_DOUBLES,)) + np.array(values, dtype="<f8").tobytes()


def test_packed_strings_decode_to_the_strings() -> None:
    assert decode_items(packed("a", "", "é", "b"), HLL) == ["a", "", "é", "b"]
    assert item_count(packed("a", "", "é", "b")) == 4


def test_packed_doubles_are_an_array_for_kll_and_floats_for_the_others() -> None:
    values = decode_items(doubles(1.5, 2.0, -3.0), SketchKind.KLL)
    assert isinstance(values, np.ndarray) and values.tolist() == [1.5, 2.0, -3.0]
    assert decode_items(doubles(1.5, 2.0), HLL) == [1.5, 2.0]
    assert item_count(doubles(1.5, 2.0, -3.0)) == 3


def test_json_batches_untag_bytes_for_hashed_kinds_only() -> None:
    tagged = {"$bytes": base64.b64encode(b"\x00\x01").decode()}
    value = orjson.dumps(["a", 1, tagged])
    assert decode_items(value, HLL) == ["a", 1, b"\x00\x01"]
    assert decode_items(value, SketchKind.RESERVOIR) == ["a", 1, tagged]
    assert item_count(value) == 3


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"\x01\xff\xfe", "not UTF-8"),
        (b"\x02abc", "multiple of 8"),
        (b"{nope", "not a JSON array"),
        (b'{"a": 1}', "must be a JSON array"),
        (b'[{"$bytes": "!!"}]', "not base64"),
    ],
)
def test_bad_batches_are_invalid_arguments_naming_items(value: bytes, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason) as raised:
        decode_items(value, HLL)
    assert raised.value.field == "items"


def test_kept_items_are_bounded_in_size() -> None:
    long_text = "x" * (STORED_ITEM_BYTES_MAX + 1)
    with pytest.raises(InvalidArgument, match="topk sketch keeps"):
        decode_items(packed("ok", long_text), SketchKind.TOP_K)
    with pytest.raises(InvalidArgument, match="a reservoir keeps"):
        decode_items(orjson.dumps([{"text": long_text}]), SketchKind.RESERVOIR)
    # Sketches that only hash their items take long ones.
    assert decode_items(packed(long_text), HLL) == [long_text]


def test_a_sketch_reads_as_tagged_bytes() -> None:
    document = orjson.loads(sketch_document(b"\x00\xffsketch"))
    assert base64.b64decode(document["$bytes"]) == b"\x00\xffsketch"


@pytest.mark.parametrize(
    "spec",
    [
        SketchSpec.of("hll", lg_k=4),
        SketchSpec.of("hll", lg_k=12),
        SketchSpec.of("cms", width=50, depth=3),
        SketchSpec.of("bloom", capacity_items=500, error_rate=0.01),
        SketchSpec.of("kll", k=8),
        SketchSpec.of("kll", k=200),
        SketchSpec.of("topk", lg_max_k=3),
        SketchSpec.of("reservoir", k=5),
    ],
    ids=repr,
)
def test_no_sketch_outgrows_the_bound_of_its_spec(spec: SketchSpec) -> None:
    generator = np.random.default_rng(3)
    sketch = new_sketch(spec, rng=random.Random(3))
    longest = "y" * (STORED_ITEM_BYTES_MAX - 10)
    for round_index in range(30):
        if spec.kind is SketchKind.KLL:
            sketch.update_many(generator.normal(size=20_000))
        elif spec.kind is SketchKind.RESERVOIR:
            sketch.update_many([longest + str(index) for index in range(10)])
        else:
            sketch.update_many([f"{longest}{round_index}-{index}" for index in range(2_000)])
        assert len(sketch.serialize()) <= sketch_bytes_max(spec)


def test_hll_at_lg_k_12_fits_in_a_quarter_of_redis_12_kb() -> None:
    assert sketch_bytes_max(SketchSpec.of("hll", lg_k=12)) <= 12 * 1024 // 4


def test_a_spec_larger_than_the_limit_is_refused_naming_its_parameter() -> None:
    with pytest.raises(InvalidArgument, match="sketch_bytes_max") as raised:
        check_fits(SketchSpec.of("reservoir", k=100_000), 16 << 20)
    assert raised.value.field == "k"
    assert check_fits(SketchSpec.of("hll", lg_k=12), 16 << 20) == 2216


@pytest.mark.parametrize("kind", [HLL, SketchKind.RESERVOIR, SketchKind.TOP_K])
def test_json_items_that_would_change_are_refused(kind: SketchKind) -> None:
    # 2**64 parses as a float: a reservoir would hand back 1.8446744073709552e+19 and a
    # counting sketch would count 2**64 and 2**64 + 1 as one item.
    for value in (b"[18446744073709551616]", b'[{"$ts": "yesterday"}]'):
        with pytest.raises(InvalidArgument) as refused:
            decode_items(value, kind)
        assert refused.value.field == "items"
    assert decode_items(b"[18446744073709551616]", SketchKind.KLL) == [2.0**64]
