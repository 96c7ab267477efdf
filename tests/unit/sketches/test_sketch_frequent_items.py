"""topk: every item above the error threshold is found on a Zipf stream."""

from collections import Counter

import pytest

from grid.sketches import SketchParameterError, SketchSpec, merge_all, new_sketch

# A small map (64 slots, 48 items) against thousands of distinct items, so the sketch
# has to forget and its error bound matters.
SPEC = SketchSpec.of("topk", lg_max_k=6, k=48)


def test_every_item_above_the_threshold_is_found(zipf_stream):
    sketch = new_sketch(SPEC)
    sketch.update_many(zipf_stream)
    truth = Counter(zipf_stream)
    answer = sketch.top()
    total = len(zipf_stream)
    assert answer.total_weight == total
    # The a priori threshold epsilon * N, epsilon = 3.5 / 64, bounds the real error.
    assert answer.error_bound == pytest.approx(3.5 / 64 * total)
    assert 0 < answer.maximum_error <= answer.error_bound
    found = {row.item for row in answer.items}
    heavy = {str(item) for item, count in truth.items() if count > answer.error_bound}
    assert heavy, "the stream must have items above the threshold"
    assert heavy <= found
    above_maximum_error = {
        str(item) for item, count in truth.items() if count > answer.maximum_error
    }
    assert above_maximum_error <= found
    for row in answer.items:
        assert row.lower_bound <= truth[int(row.item)] <= row.upper_bound
        assert row.upper_bound - row.lower_bound == answer.maximum_error
    estimates = [row.estimate for row in answer.items]
    assert estimates == sorted(estimates, reverse=True)


def test_top_limits_to_k(zipf_stream):
    sketch = new_sketch(SPEC)
    sketch.update_many(zipf_stream)
    top_three = sketch.top(3)
    assert [row.item for row in top_three.items] == ["1", "2", "3"]
    assert len(sketch.top().items) <= 48
    with pytest.raises(SketchParameterError) as caught:
        sketch.top(49)
    assert caught.value.parameter == "k"


def test_frequency_bounds_are_certain(zipf_stream):
    sketch = new_sketch(SPEC)
    sketch.update_many(zipf_stream)
    truth = Counter(zipf_stream)
    for item in list(truth)[:200]:
        answer = sketch.frequency(item)
        assert answer.lower_bound <= truth[item] <= answer.upper_bound
        assert answer.confidence == 1.0


def test_merged_partitions_still_find_heavy_items(zipf_stream):
    parts = []
    for worker in range(4):
        sketch = new_sketch(SPEC)
        sketch.update_many(zipf_stream[worker::4])
        parts.append(sketch)
    merged = merge_all(SPEC, parts)
    answer = merged.top()
    truth = Counter(zipf_stream)
    heavy = {str(item) for item, count in truth.items() if count > answer.error_bound}
    assert heavy <= {row.item for row in answer.items}
