"""hll: accuracy over a million items, union, order independence and size."""

import pytest

from grid.sketches import SketchSpec, merge_all, new_sketch

SPEC = SketchSpec.of("hll", lg_k=12)


def sketch_of(items, spec=SPEC):
    sketch = new_sketch(spec)
    sketch.update_many(items)
    return sketch


@pytest.fixture(scope="module")
def sequential(million_distinct):
    return sketch_of(million_distinct)


def test_a_million_distinct_items_within_three_standard_errors(sequential, million_distinct):
    answer = sequential.distinct_count()
    truth = len(million_distinct)
    assert abs(answer.estimate - truth) <= 3 * answer.relative_standard_error * truth
    three = answer.interval(3)
    assert three.lower <= truth <= three.upper
    one, two = answer.interval(1), answer.interval(2)
    assert three.lower <= two.lower <= one.lower <= answer.estimate
    assert answer.estimate <= one.upper <= two.upper <= three.upper


def test_lg_k_12_stays_under_3_kb_after_a_million_items(sequential):
    assert len(sequential.serialize()) <= 3 * 1024
    assert sequential.memory_bytes() <= 3 * 1024


def test_duplicates_do_not_count(million_distinct):
    sketch = sketch_of(million_distinct[:1000] * 5)
    assert sketch.distinct_count().estimate == pytest.approx(1000, rel=0.01)


def test_union_equals_the_sketch_of_the_union(sequential, million_distinct):
    first = sketch_of(million_distinct[:600_000])
    second = sketch_of(million_distinct[400_000:])
    merged = merge_all(SPEC, [first, second])
    # A union with a subset adds nothing, and puts the sequential sketch in the same
    # (merged) state, whose estimator and header flags are those of any union.
    sequential_merged = merge_all(SPEC, [sequential, first])
    assert merged.serialize() == sequential_merged.serialize()
    assert merged.distinct_count() == sequential_merged.distinct_count()
    # Commutative, and merge_all left its inputs alone.
    first_then_second = first.empty_like()
    first_then_second.merge(first)
    first_then_second.merge(second)
    second.merge(first)
    assert second.serialize() == first_then_second.serialize() == merged.serialize()


def test_update_order_does_not_matter_across_eight_workers(sequential, million_distinct):
    workers = [sketch_of(million_distinct[worker::8]) for worker in range(8)]
    merged = merge_all(SPEC, workers)
    assert merged.serialize() == merge_all(SPEC, [sequential, workers[0]]).serialize()
    truth = len(million_distinct)
    answer = merged.distinct_count()
    assert abs(answer.estimate - truth) <= 3 * answer.relative_standard_error * truth
    reversed_order = merge_all(SPEC, list(reversed(workers)))
    assert reversed_order.serialize() == merged.serialize()


@pytest.mark.parametrize("lg_k", [4, 21])
def test_lg_k_limits_work(lg_k):
    spec = SketchSpec.of("hll", lg_k=lg_k)
    first = sketch_of([f"a{index}" for index in range(5000)], spec)
    second = sketch_of([f"b{index}" for index in range(5000)], spec)
    first.merge(second)
    answer = first.distinct_count()
    assert abs(answer.estimate - 10_000) <= 3 * answer.relative_standard_error * 10_000


def test_merging_a_sketch_into_itself_changes_nothing():
    sketch = sketch_of([str(index) for index in range(50_000)])
    estimate = merge_all(SPEC, [sketch, sketch]).distinct_count().estimate
    sketch.merge(sketch)
    assert sketch.distinct_count().estimate == estimate


def test_empty_sketch():
    sketch = new_sketch(SPEC)
    assert sketch.is_empty()
    assert sketch.items_seen() is None
    assert sketch.distinct_count().estimate == 0.0
