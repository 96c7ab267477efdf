"""The shared interface: wrong-kind queries, merges across specs, merge_all."""

import random

import pytest

from grid.sketches import (
    Sketch,
    SketchKindError,
    SketchParameterError,
    SketchSpec,
    merge_all,
    new_sketch,
)

SPECS = {
    "hll": SketchSpec.of("hll"),
    "cms": SketchSpec.of("cms", width=64, depth=2),
    "bloom": SketchSpec.of("bloom", capacity_items=100),
    "reservoir": SketchSpec.of("reservoir", k=4),
    "kll": SketchSpec.of("kll"),
    "topk": SketchSpec.of("topk"),
}

QUERIES = {
    "distinct_count": (("hll",), lambda sketch: sketch.distinct_count()),
    "frequency": (("cms", "topk"), lambda sketch: sketch.frequency("a")),
    "might_contain": (("bloom",), lambda sketch: sketch.might_contain("a")),
    "might_contain_many": (("bloom",), lambda sketch: sketch.might_contain_many(["a"])),
    "fill": (("bloom",), lambda sketch: sketch.fill()),
    "sample": (("reservoir",), lambda sketch: sketch.sample()),
    "quantile": (("kll",), lambda sketch: sketch.quantile(0.5)),
    "quantiles": (("kll",), lambda sketch: sketch.quantiles([0.5])),
    "rank": (("kll",), lambda sketch: sketch.rank(1.0)),
    "top": (("topk",), lambda sketch: sketch.top()),
}


def make(kind):
    sketch = new_sketch(SPECS[kind], rng=random.Random(1))
    sketch.update_many([1, 2, 3])
    return sketch


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("operation", sorted(QUERIES))
def test_each_query_belongs_to_its_kinds(kind, operation):
    kinds, query = QUERIES[operation]
    sketch = make(kind)
    assert isinstance(sketch, Sketch)
    if kind in kinds:
        query(sketch)
    else:
        with pytest.raises(SketchKindError) as caught:
            query(sketch)
        assert caught.value.operation == operation
        assert caught.value.kind == kind
        assert caught.value.expected == kinds
        assert isinstance(caught.value, ValueError)


def test_merging_different_kinds_is_refused():
    with pytest.raises(SketchKindError) as caught:
        make("hll").merge(make("kll"))
    assert caught.value.operation == "merge"
    assert caught.value.kind == "kll"


def test_merging_different_parameters_names_the_parameter():
    small = new_sketch(SketchSpec.of("hll", lg_k=10))
    with pytest.raises(SketchParameterError) as caught:
        make("hll").merge(small)
    assert caught.value.parameter == "lg_k"
    with pytest.raises(SketchParameterError):
        merge_all(SPECS["hll"], [make("hll"), small])


def test_merge_all_of_nothing_is_empty():
    for kind, spec in SPECS.items():
        result = merge_all(spec, [], rng=random.Random(1))
        assert result.is_empty(), kind
        assert result.spec == spec


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_merge_all_leaves_inputs_alone_and_counts_everything(kind):
    parts = [make(kind) for _ in range(3)]
    before = [part.serialize() for part in parts]
    merged = merge_all(SPECS[kind], parts)
    assert [part.serialize() for part in parts] == before
    if kind != "hll":
        assert merged.items_seen() == 9
    assert merged.memory_bytes() > 0
    assert not merged.is_empty()


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_update_is_a_batch_of_one(kind):
    one_by_one = new_sketch(SPECS[kind], rng=random.Random(1))
    batch = new_sketch(SPECS[kind], rng=random.Random(1))
    for item in (1, 2, 3):
        one_by_one.update(item)
    batch.update_many([1, 2, 3])
    assert one_by_one.items_seen() == batch.items_seen()
    if kind != "kll":  # KLL compacts by batch boundaries differently only past k items
        assert one_by_one.serialize() == batch.serialize()


def test_a_sketch_refuses_a_spec_of_another_kind():
    from grid.sketches import HyperLogLogSketch

    with pytest.raises(SketchKindError):
        HyperLogLogSketch(SPECS["kll"])
