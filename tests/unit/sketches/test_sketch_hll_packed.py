"""HyperLogLog registers of packed texts hashed with numpy: byte for byte what DataSketches does."""

import random

import numpy as np
import pytest
from datasketches import hll_sketch, hll_union, tgt_hll_type

from grid.sketches import HyperLogLogSketch, SketchItemError, SketchSpec
from grid.sketches._hyperloglog_packed import (
    PACKED_TEXT_BYTES_MAX,
    hll_8_image,
    packed_registers,
)

ALPHABET = "abcXYZ019-_ .éüß漢字🙂\t"


def random_texts(generator: random.Random, count: int, longest: int) -> list[str]:
    return [
        "".join(generator.choice(ALPHABET) for _ in range(generator.randint(0, longest)))
        for _ in range(count)
    ]


def datasketches_registers(texts: list[str], lg_k: int) -> np.ndarray:
    sketch = hll_sketch(lg_k, tgt_hll_type.HLL_8)
    for text in texts:
        sketch.update(text)
    image = sketch.serialize_updatable()
    assert image[7] & 3 == 2, "the reference sketch must be in HLL mode"
    return np.frombuffer(image, dtype=np.uint8, offset=40)[: 1 << lg_k]


@pytest.mark.parametrize("lg_k", [4, 5, 8, 11, 12])
def test_registers_equal_datasketches_updates(lg_k: int) -> None:
    generator = random.Random(lg_k)
    # Lengths 0 to 31 bytes in UTF-8: empty texts, one-block texts, tails of every size.
    texts = [
        text
        for text in random_texts(generator, 12_000, 12)
        if len(text.encode()) <= PACKED_TEXT_BYTES_MAX
    ]
    texts += ["x" * size for size in range(PACKED_TEXT_BYTES_MAX + 1)]
    registers = packed_registers("\x00".join(texts).encode(), lg_k)
    assert registers is not None
    assert np.array_equal(registers, datasketches_registers(texts, lg_k))


def test_merged_sketches_equal_those_of_item_by_item_updates() -> None:
    spec = SketchSpec.of("hll", lg_k=12)
    generator = random.Random(5)
    fast: HyperLogLogSketch | None = None
    slow: HyperLogLogSketch | None = None
    for _ in range(5):
        texts = [f"u{generator.getrandbits(40)}" for _ in range(10_000)]
        packed = HyperLogLogSketch.of_packed_texts(spec, "\x00".join(texts).encode())
        itemwise = HyperLogLogSketch(spec)
        itemwise.update_many(texts)
        if fast is None or slow is None:
            fast, slow = packed, itemwise
        fast.merge(packed)
        slow.merge(itemwise)
    assert fast is not None and slow is not None
    assert fast.serialize() == slow.serialize()
    assert fast.distinct_count() == slow.distinct_count()


def test_batches_it_does_not_fit_fall_back_to_item_by_item_updates() -> None:
    spec = SketchSpec.of("hll", lg_k=12)
    long_texts = [f"{index:040d}" for index in range(5_000)]
    few_texts = [f"u{index}" for index in range(100)]
    for texts in (long_texts, few_texts):
        packed = "\x00".join(texts).encode()
        assert packed_registers(packed, 12) is None
        sketch = HyperLogLogSketch.of_packed_texts(spec, packed)
        reference = HyperLogLogSketch(spec)
        reference.update_many(texts)
        assert sketch.serialize() == reference.serialize()


def test_the_image_is_a_sketch_datasketches_reads() -> None:
    texts = [f"item-{index}" for index in range(3_000)]
    registers = packed_registers("\x00".join(texts).encode(), 10)
    assert registers is not None
    image = hll_sketch.deserialize(hll_8_image(registers, 10))
    union = hll_union(10)
    union.update(image)
    reference = hll_sketch(10, tgt_hll_type.HLL_8)
    for text in texts:
        reference.update(text)
    other = hll_union(10)
    # A second update of the same registers marks the result a union, like the image.
    other.update(reference)
    other.update(reference)
    assert union.get_result().get_estimate() == pytest.approx(other.get_result().get_estimate())


def test_bytes_that_are_not_utf_8_are_refused() -> None:
    with pytest.raises(SketchItemError, match="not UTF-8"):
        HyperLogLogSketch.of_packed_texts(SketchSpec.of("hll"), b"ok\x00\xff\xfe")


@pytest.mark.parametrize("lg_k", [12, 14])
def test_small_batches_into_a_dense_sketch_equal_item_by_item_updates(lg_k: int) -> None:
    # Batches too small to touch half the registers on their own, merged into a sketch
    # that is dense already: the vectorized path must leave the same bytes.
    spec = SketchSpec.of("hll", lg_k=lg_k)
    generator = random.Random(lg_k)
    # As the grid stores it: a union of dense batches, answering from its registers.
    first = HyperLogLogSketch(spec)
    first.update_many([f"u{generator.getrandbits(40)}" for _ in range(4 << lg_k)])
    fast = HyperLogLogSketch(spec)
    fast.merge(first)
    slow = HyperLogLogSketch(spec)
    slow.merge(first)
    assert fast.is_dense_union()
    assert not first.is_dense_union()  # updated item by item: its estimate is HIP's
    for size in (1, 50, 3_000, 10_000):
        texts = [f"u{generator.getrandbits(40)}" for _ in range(size)]
        packed = "\x00".join(texts).encode()
        if size < (1 << lg_k) // 4:
            assert packed_registers(packed, lg_k) is None  # too few on their own
        assert packed_registers(packed, lg_k, into_dense=True) is not None
        fast.merge(HyperLogLogSketch.of_packed_texts(spec, packed, into_dense=True))
        itemwise = HyperLogLogSketch(spec)
        itemwise.update_many(texts)
        slow.merge(itemwise)
        assert fast.serialize() == slow.serialize()
        assert fast.distinct_count() == slow.distinct_count()
