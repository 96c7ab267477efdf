"""kll: quantiles and ranks within the normalized rank error."""

import math

import numpy as np
import pytest

from grid.sketches import SketchParameterError, SketchSpec, merge_all, new_sketch

SPEC = SketchSpec.of("kll", k=200)
RANKS = [index / 100 for index in range(101)]


@pytest.fixture(scope="module")
def values():
    return np.random.default_rng(31337).lognormal(mean=3.0, sigma=1.0, size=200_000)


def true_rank_range(sorted_values, value):
    """The exclusive and inclusive rank of value in the exact data."""
    below = np.searchsorted(sorted_values, value, side="left") / len(sorted_values)
    at_or_below = np.searchsorted(sorted_values, value, side="right") / len(sorted_values)
    return below, at_or_below


def assert_quantiles_within_error(sketch, sorted_values):
    error = sketch.normalized_rank_error()
    for answer in sketch.quantiles(RANKS):
        below, at_or_below = true_rank_range(sorted_values, answer.value)
        assert below - error <= answer.rank <= at_or_below + error, answer
        assert answer.lower_value <= answer.value <= answer.upper_value
        assert answer.normalized_rank_error == error


def test_quantiles_within_the_rank_error(values):
    sketch = new_sketch(SPEC)
    sketch.update_many(values)
    assert sketch.items_seen() == len(values)
    assert sketch.normalized_rank_error() < 0.0134
    assert_quantiles_within_error(sketch, np.sort(values))
    assert sketch.quantile(0.0).value == values.min()
    assert sketch.quantile(1.0).value == values.max()


def test_ranks_within_the_rank_error(values):
    sketch = new_sketch(SPEC)
    sketch.update_many(values.tolist())
    sorted_values = np.sort(values)
    for value in np.quantile(values, RANKS):
        answer = sketch.rank(float(value))
        _, truth = true_rank_range(sorted_values, value)
        assert abs(answer.rank - truth) <= answer.normalized_rank_error
        assert answer.lower_rank <= truth <= answer.upper_rank


def test_merged_partitions_within_the_rank_error(values):
    parts = []
    for part in np.array_split(values, 4):
        sketch = new_sketch(SPEC)
        sketch.update_many(part)
        parts.append(sketch)
    merged = merge_all(SPEC, parts)
    assert merged.items_seen() == len(values)
    assert_quantiles_within_error(merged, np.sort(values))


def test_small_streams_are_exact():
    sketch = new_sketch(SPEC)
    sketch.update_many([5, 1, 4, 2, 3])
    assert [answer.value for answer in sketch.quantiles([0.2, 0.4, 0.6, 1.0])] == [1, 2, 3, 5]
    assert sketch.rank(3).rank == 0.6


def test_empty_sketch_answers_nan():
    sketch = new_sketch(SPEC)
    assert math.isnan(sketch.quantile(0.5).value)
    assert math.isnan(sketch.rank(1.0).rank)
    assert sketch.quantile(0.5).items_seen == 0


@pytest.mark.parametrize("rank", [-0.1, 1.5, float("nan"), "0.5"])
def test_bad_ranks_are_refused(rank):
    sketch = new_sketch(SPEC)
    sketch.update_many([1.0])
    with pytest.raises(SketchParameterError) as caught:
        sketch.quantile(rank)
    assert caught.value.parameter == "rank"


def test_bad_values_are_refused():
    sketch = new_sketch(SPEC)
    with pytest.raises(SketchParameterError) as caught:
        sketch.rank("3")  # type: ignore[arg-type]
    assert caught.value.parameter == "value"
