"""reservoir: uniform samples (chi-square with fixed seeds), exact merges, replayable runs."""

import itertools
import random
from collections import Counter

import pytest

from grid.sketches import (
    SketchFormatError,
    SketchItemError,
    SketchParameterError,
    SketchSpec,
    deserialize_sketch,
    merge_all,
    new_sketch,
)

# Upper 0.1% points of the chi-square distribution, from standard tables.
CHI_SQUARE_CRITICAL_0_001 = {14: 36.123, 99: 148.230}


def chi_square(counts, expected):
    return sum((count - expected) ** 2 / expected for count in counts)


def sample_subset(batches, rng, k=2):
    reservoir = new_sketch(SketchSpec.of("reservoir", k=k), rng=rng)
    for batch in batches:
        reservoir.update_many(batch)
    return tuple(sorted(reservoir.sample().items))


def test_every_subset_is_equally_likely():
    # 6 items, k = 2: 15 subsets, each with probability 1/15 under a uniform sample.
    rng = random.Random(7)
    repeats = 15_000
    counts = Counter(sample_subset([range(6)], rng) for _ in range(repeats))
    assert set(counts) == set(itertools.combinations(range(6), 2))
    assert chi_square(counts.values(), repeats / 15) < CHI_SQUARE_CRITICAL_0_001[14]


def test_batches_split_anywhere_sample_uniformly():
    rng = random.Random(8)
    repeats = 15_000
    counts = Counter(sample_subset([[0], [1, 2, 3], [], [4, 5]], rng) for _ in range(repeats))
    assert chi_square(counts.values(), repeats / 15) < CHI_SQUARE_CRITICAL_0_001[14]


def test_merged_samples_are_uniform_over_both_streams():
    rng = random.Random(9)
    spec = SketchSpec.of("reservoir", k=2)
    repeats = 15_000
    counts: Counter[tuple] = Counter()
    for repeat in range(repeats):
        first = new_sketch(spec, rng=rng)
        second = new_sketch(spec, rng=rng)
        # Uneven halves, so a merge that favoured either side would show.
        split = 1 + repeat % 4
        first.update_many(list(range(split)))
        second.update_many(list(range(split, 6)))
        merged = merge_all(spec, [first, second])
        assert merged.items_seen() == 6
        counts[tuple(sorted(merged.sample().items))] += 1
    assert chi_square(counts.values(), repeats / 15) < CHI_SQUARE_CRITICAL_0_001[14]


@pytest.mark.parametrize("batch_sizes", [(37, 63), (5,) * 20])
def test_long_streams_include_every_item_equally_often(batch_sizes):
    # Past the first k items the skips of Algorithm L take over; batches larger than
    # the sample are planned on a copy, smaller ones are applied in place.
    rng = random.Random(10)
    spec = SketchSpec.of("reservoir", k=10)
    repeats = 3_000
    inclusions: Counter[int] = Counter()
    for _ in range(repeats):
        reservoir = new_sketch(spec, rng=rng)
        start = 0
        for size in batch_sizes:
            reservoir.update_many(list(range(start, start + size)))
            start += size
        inclusions.update(reservoir.sample().items)
    expected = repeats * 10 / 100
    counts = [inclusions[item] for item in range(100)]
    assert chi_square(counts, expected) < CHI_SQUARE_CRITICAL_0_001[99]


def test_a_seed_replays_the_same_sample():
    spec = SketchSpec.of("reservoir", k=50)
    samples = []
    for _ in range(2):
        reservoir = new_sketch(spec, rng=random.Random(1234))
        reservoir.update_many(list(range(100_000)))
        samples.append(reservoir.serialize())
    assert samples[0] == samples[1]


def test_sample_holds_json_values_and_counts():
    reservoir = new_sketch(SketchSpec.of("reservoir", k=10), rng=random.Random(1))
    rows = [{"id": 1, "tags": ["a", "b"]}, [1, 2.5], "text", 7, None, True]
    reservoir.update_many(rows)
    answer = reservoir.sample()
    assert answer.items_seen == 6
    assert answer.k == 10
    assert sorted(map(repr, answer.items)) == sorted(map(repr, rows))
    copy = deserialize_sketch(reservoir.spec, reservoir.serialize(), rng=random.Random(2))
    assert copy.sample() == answer


@pytest.mark.parametrize(
    ("batch", "index"),
    [
        ([1, object()], 1),
        ([1, {"a": float("nan")}], 1),
        ([1, 2, {"a": float("nan")}], 2),
        ([1, 2, {1, 2}], 2),
    ],
)
def test_non_json_values_are_refused_without_change(batch, index):
    reservoir = new_sketch(SketchSpec.of("reservoir", k=10), rng=random.Random(1))
    reservoir.update_many([1, 2])
    before = reservoir.serialize()
    with pytest.raises(SketchItemError) as caught:
        reservoir.update_many(batch)
    assert caught.value.index == index
    assert reservoir.serialize() == before


def test_an_rng_is_required():
    spec = SketchSpec.of("reservoir", k=3)
    with pytest.raises(SketchParameterError) as caught:
        new_sketch(spec)
    assert caught.value.parameter == "rng"
    reservoir = new_sketch(spec, rng=random.Random(1))
    with pytest.raises(SketchParameterError):
        deserialize_sketch(spec, reservoir.serialize())


def test_merge_all_borrows_the_first_rng_and_leaves_inputs_alone():
    spec = SketchSpec.of("reservoir", k=3)
    first = new_sketch(spec, rng=random.Random(1))
    first.update_many(list(range(10)))
    before = first.serialize()
    merged = merge_all(spec, [first])
    merged.update_many([99])
    assert first.serialize() == before
    assert merged.items_seen() == 11


def test_damaged_bytes_are_refused():
    spec = SketchSpec.of("reservoir", k=3)
    reservoir = new_sketch(spec, rng=random.Random(1))
    reservoir.update_many(["a", "b", "c", "d"])
    data = reservoir.serialize()
    for damaged in (data[:5], b"XXXX" + data[4:], data[:-1], data + b"x"):
        with pytest.raises(SketchFormatError):
            deserialize_sketch(spec, damaged, rng=random.Random(1))
    with pytest.raises(SketchFormatError):
        deserialize_sketch(SketchSpec.of("reservoir", k=4), data, rng=random.Random(1))
