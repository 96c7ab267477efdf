"""Canonical items: the same item hashes the same way in every kind; bad items change nothing."""

import numpy as np
import pytest

from grid.sketches import SketchItemError, SketchSpec, item_text, new_sketch


@pytest.mark.parametrize(
    ("item", "text"),
    [
        ("alice", "alice"),
        ("é", "é"),
        (42, "42"),
        (-7, "-7"),
        (2**80, str(2**80)),
        (3.0, "3"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e-7, "1e-07"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (float("nan"), "nan"),
        (b"\x00\xff", "0x00ff"),
        (bytearray(b"ab"), "0x6162"),
        (memoryview(b"ab"), "0x6162"),
        (np.int64(5), "5"),
        (np.float32(0.5), "0.5"),
        (np.str_("x"), "x"),
    ],
)
def test_canonical_text(item, text):
    assert item_text(item) == text
    assert type(item_text(item)) is str


@pytest.mark.parametrize(
    "item", [True, None, object(), [1], {"a": 1}, pytest.param(10**5000, id="huge-int")]
)
def test_items_without_a_canonical_text_are_refused(item):
    with pytest.raises(SketchItemError):
        item_text(item)


@pytest.mark.parametrize("kind", ["hll", "cms", "bloom", "topk"])
def test_a_bad_item_leaves_the_sketch_unchanged(kind):
    params = {"bloom": {"capacity_items": 100}, "cms": {"width": 50, "depth": 3}}.get(kind, {})
    sketch = new_sketch(SketchSpec.of(kind, **params))
    sketch.update_many(["a", "b"])
    before = sketch.serialize()
    for batch, index in ((["c", None, "d"], 1), (["c", "d", "\ud800"], 2)):
        with pytest.raises(SketchItemError) as caught:
            sketch.update_many(batch)
        assert caught.value.index == index
        assert caught.value.kind == kind
        assert sketch.serialize() == before


def test_equal_items_of_different_types_are_one_item():
    sketch = new_sketch(SketchSpec.of("cms", width=100, depth=3))
    sketch.update_many([3, 3.0, "3", np.int32(3)])
    assert sketch.frequency(3).estimate == 4.0


@pytest.mark.parametrize(
    ("batch", "index"),
    [
        ([1.0, "2"], 1),
        ([1.0, b"2"], 1),
        ([1.0, None], 1),
        ([1.0, float("nan")], 1),
        (np.array([0.5, np.nan]), 1),
        (np.array(["1.5"]), 0),
    ],
)
def test_kll_takes_numbers_only(batch, index):
    sketch = new_sketch(SketchSpec.of("kll"))
    sketch.update_many([1.0])
    with pytest.raises(SketchItemError) as caught:
        sketch.update_many(batch)
    assert caught.value.index == index
    assert sketch.items_seen() == 1


def test_kll_takes_every_numeric_form():
    sketch = new_sketch(SketchSpec.of("kll"))
    sketch.update_many([1, 2.5, 2**70, np.float32(1.0)])
    sketch.update_many(np.arange(10, dtype=np.int16))
    sketch.update_many(np.array([1.5, 2.5], dtype=np.float32))
    sketch.update_many([])
    assert sketch.items_seen() == 16
