"""Serialization: every kind round-trips; DataSketches kinds are DataSketches images."""

import random

import datasketches
import numpy as np
import pytest

from grid.sketches import SketchFormatError, SketchSpec, deserialize_sketch, new_sketch

STREAM = np.random.default_rng(99).zipf(1.5, size=20_000)

CASES = {
    "hll": (SketchSpec.of("hll", lg_k=11), lambda sketch: sketch.distinct_count()),
    "cms": (SketchSpec.of("cms", width=200, depth=4), lambda sketch: sketch.frequency(1)),
    "bloom": (
        SketchSpec.of("bloom", capacity_items=5_000, error_rate=0.05),
        lambda sketch: (sketch.fill(), sketch.might_contain_many([1, 2, -1])),
    ),
    "reservoir": (SketchSpec.of("reservoir", k=25), lambda sketch: sketch.sample()),
    "kll": (SketchSpec.of("kll", k=100), lambda sketch: sketch.quantiles([0.1, 0.5, 0.9])),
    "topk": (SketchSpec.of("topk", lg_max_k=5, k=5), lambda sketch: sketch.top()),
}

# Images whose bytes are a function of the content alone. DataSketches' hll (in coupon
# set mode), kll (a sorted-level flag) and frequent-items (hash-map order) images can
# differ between equal sketches, so those are compared by their answers.
CANONICAL_IMAGES = {"bloom", "cms", "reservoir"}


def filled(spec, items):
    sketch = new_sketch(spec, rng=random.Random(4))
    sketch.update_many(items)
    return sketch


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("size", [0, 1, 20_000])
def test_round_trip(kind, size):
    spec, answer = CASES[kind]
    items = STREAM[:size].tolist()
    sketch = filled(spec, items)
    data = sketch.serialize()
    copy = deserialize_sketch(spec, data, rng=random.Random(5))
    assert answer(copy) == answer(sketch)
    assert copy.items_seen() == sketch.items_seen()
    assert copy.is_empty() == (size == 0)
    again = deserialize_sketch(spec, copy.serialize(), rng=random.Random(6))
    assert answer(again) == answer(sketch)
    if kind in CANONICAL_IMAGES:
        assert copy.serialize() == data
    # A copy keeps working as a sketch: updates and merges land the same way.
    copy.update_many([7, 7, 8])
    sketch.update_many([7, 7, 8])
    if kind != "reservoir":  # the two rngs differ, so the samples may
        assert answer(copy) == answer(sketch)


def test_hll_coupon_set_mode_round_trips_by_answer():
    # Between list and full mode an hll image lists coupons in hash-table order.
    spec = SketchSpec.of("hll")
    sketch = filled(spec, list(range(300)))
    copy = deserialize_sketch(spec, sketch.serialize())
    assert copy.distinct_count() == sketch.distinct_count()


def test_datasketches_reads_our_images():
    items = [str(item) for item in STREAM.tolist()]
    hll = filled(SketchSpec.of("hll"), items)
    native_hll = datasketches.hll_sketch.deserialize(hll.serialize())
    assert native_hll.get_estimate() == hll.distinct_count().estimate
    cms = filled(SketchSpec.of("cms", width=200, depth=4), items)
    native_cms = datasketches.count_min_sketch.deserialize(cms.serialize())
    assert native_cms.get_estimate("1") == cms.frequency(1).estimate
    kll = filled(SketchSpec.of("kll"), STREAM)
    native_kll = datasketches.kll_doubles_sketch.deserialize(kll.serialize())
    assert native_kll.get_quantile(0.5, True) == kll.quantile(0.5).value
    topk = filled(SketchSpec.of("topk"), items)
    native_topk = datasketches.frequent_strings_sketch.deserialize(topk.serialize())
    assert native_topk.get_estimate("1") == topk.frequency("1").estimate


def test_we_read_other_datasketches_writers():
    # Another writer's 8-bit HLL of the same strings: the same registers, the same answer.
    native = datasketches.hll_sketch(12, datasketches.tgt_hll_type.HLL_8)
    for item in range(50_000):
        native.update(str(item))
    ours = filled(SketchSpec.of("hll"), list(range(50_000)))
    for image in (native.serialize_updatable(), native.serialize_compact()):
        read = deserialize_sketch(SketchSpec.of("hll"), image)
        assert read.distinct_count().estimate == ours.distinct_count().estimate


@pytest.mark.parametrize("kind", ["hll", "cms", "kll", "topk"])
def test_damaged_datasketches_images_are_refused(kind):
    spec, _ = CASES[kind]
    data = filled(spec, STREAM[:5_000].tolist()).serialize()
    rng = random.Random(3)
    noise = bytes(rng.randrange(256) for _ in range(64))
    for damaged in (b"", b"\x00\x01", noise, data[: len(data) // 2], data[:-1], data + b"\x00"):
        with pytest.raises(SketchFormatError):
            deserialize_sketch(spec, damaged)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (SketchSpec.of("hll", lg_k=11), SketchSpec.of("hll", lg_k=12)),
        (SketchSpec.of("cms", width=200, depth=4), SketchSpec.of("cms", width=201, depth=4)),
        (SketchSpec.of("kll", k=100), SketchSpec.of("kll", k=200)),
        (SketchSpec.of("topk", lg_max_k=5), SketchSpec.of("topk", lg_max_k=6)),
        (SketchSpec.of("hll"), SketchSpec.of("kll")),
    ],
)
def test_images_of_another_spec_are_refused(written, read):
    data = filled(written, STREAM[:1_000].tolist()).serialize()
    with pytest.raises(SketchFormatError):
        deserialize_sketch(read, data)
