"""cms: on a Zipf stream it never underestimates and stays within epsilon * N."""

import math
from collections import Counter

from grid.sketches import SketchSpec, merge_all, new_sketch

SPEC = SketchSpec.of("cms", epsilon=0.001, delta=0.01)


def test_zipf_stream_within_bounds(zipf_stream):
    sketch = new_sketch(SPEC)
    sketch.update_many(zipf_stream)
    truth = Counter(zipf_stream)
    total = len(zipf_stream)
    assert sketch.items_seen() == total
    for item, count in truth.items():
        answer = sketch.frequency(item)
        assert answer.estimate >= count, "a count-min never underestimates"
        assert answer.estimate - count <= answer.error_bound
        assert answer.lower_bound <= count <= answer.upper_bound
        assert answer.error_bound == sketch.epsilon() * total
        assert answer.total_weight == total
    # Zipf draws are at least 1, so -1 never occurred: its estimate is all collision.
    absent = sketch.frequency(-1)
    assert absent.estimate <= absent.error_bound
    assert absent.lower_bound == 0.0


def test_epsilon_and_confidence_follow_the_shape():
    sketch = new_sketch(SPEC)
    sketch.update_many(["a"] * 3)
    answer = sketch.frequency("a")
    assert sketch.epsilon() == math.e / 2719
    assert answer.confidence == 1 - math.exp(-5)
    assert answer.estimate == 3.0


def test_merge_adds_counts(zipf_stream):
    half = len(zipf_stream) // 2
    first, second, whole = new_sketch(SPEC), new_sketch(SPEC), new_sketch(SPEC)
    first.update_many(zipf_stream[:half])
    second.update_many(zipf_stream[half:])
    whole.update_many(zipf_stream)
    merged = merge_all(SPEC, [first, second])
    # A count-min is linear: the merge is exactly the sketch of the whole stream.
    assert merged.serialize() == whole.serialize()
    first.merge(first)
    assert first.items_seen() == 2 * half
