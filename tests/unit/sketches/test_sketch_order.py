"""Which sketch kinds are order-independent, tested per kind.

Adds are applied as the participant applies them (coordinator.sketches.apply: load the
stored bytes, add one batch, store the bytes), for every order of a few batches and for
the same items in other splits into calls. hll, cms and bloom end byte-identical
(hll from the first dense image on; below that its estimate is identical). kll, topk and
reservoir do not, and promise their bounds for every order instead: each is checked here
against the exact answer for every order.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from coordinator.sketches.apply import add_batch, load_sketch
from grid.sketches import Sketch, SketchSpec, new_sketch

ORDERS = list(itertools.permutations(range(4)))


def stored(spec: SketchSpec, batches: Sequence[Any], seed: int = 0) -> Sketch:
    """The sketch after the batches are added one call each, through stored bytes."""
    rng = random.Random(seed)
    current: bytes | None = None
    for batch in batches:
        sketch = load_sketch(spec, current, rng)
        add_batch(sketch, batch)
        current = sketch.serialize()
    assert current is not None
    return load_sketch(spec, current, rng)


def every_order(spec: SketchSpec, batches: list[Any]) -> list[Sketch]:
    return [stored(spec, [batches[index] for index in order]) for order in ORDERS]


def other_splits(batches: list[list[str]]) -> list[list[list[str]]]:
    """The same items as one call, as single items, and cut at other places."""
    items = [item for batch in batches for item in batch]
    shuffled = random.Random(7).sample(items, len(items))
    return [[items], [[item] for item in items[:300]] + [items[300:]], [shuffled[:5], shuffled[5:]]]


def text_batches(distinct: int) -> list[list[str]]:
    """Four overlapping batches of repeated items: a skewed stream cut into calls."""
    draws = np.random.default_rng(distinct).zipf(1.4, size=4 * distinct) % distinct
    items = [f"item-{value}" for value in draws]
    return [items[index::4] for index in range(4)]


# Order-independent kinds -------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        SketchSpec.of("cms", width=64, depth=3),
        SketchSpec.of("bloom", capacity_items=500, error_rate=0.01),
        SketchSpec.of("hll", lg_k=8),
    ],
    ids=lambda spec: spec.kind.value,
)
def test_cms_bloom_and_dense_hll_are_byte_identical_in_any_order_and_split(
    spec: SketchSpec,
) -> None:
    batches = text_batches(2_000)
    images = {sketch.serialize() for sketch in every_order(spec, batches)}
    images |= {stored(spec, split).serialize() for split in other_splits(batches)}
    assert len(images) == 1


def test_sparse_hll_answers_identically_in_any_order_and_split() -> None:
    # Below about 2^lg_k / 10 items an hll keeps a coupon list whose layout follows the
    # arrival order; its estimate comes from the coupons alone.
    spec = SketchSpec.of("hll", lg_k=12)
    batches = text_batches(60)
    sketches = every_order(spec, batches) + [stored(spec, s) for s in other_splits(batches)]
    assert len({sketch.distinct_count() for sketch in sketches}) == 1


# Order-dependent kinds: their bounds hold for every order ------------------------------


def test_kll_quantiles_are_within_the_rank_error_in_every_order() -> None:
    spec = SketchSpec.of("kll", k=8)
    # The case: low values then high values as separate calls, on a tiny k.
    generator = np.random.default_rng(3)
    batches = [generator.normal(center, 5.0, size=250) for center in (0.0, 100.0, 30.0, 70.0)]
    exact = np.sort(np.concatenate(batches))
    ranks = [index / 20 for index in range(21)]
    for sketch in every_order(spec, batches):
        assert sketch.items_seen() == len(exact)
        error = sketch.normalized_rank_error()
        for answer in sketch.quantiles(ranks):
            below = np.searchsorted(exact, answer.value, side="left") / len(exact)
            at_or_below = np.searchsorted(exact, answer.value, side="right") / len(exact)
            assert below - error <= answer.rank <= at_or_below + error, answer


def test_kll_is_random_even_in_one_order() -> None:
    # Why Shoal does not seed kll per key: DataSketches' binding draws its compaction
    # coin flips from a random source it does not let callers seed, so two sketches fed
    # the same values in the same order differ. (Even seeded, a different order would
    # compact different items together.) Recovery does not need it: the log holds the
    # sketch each add produced, not the add. If this ever fails, the binding has become
    # deterministic and a per-key seed is worth revisiting.
    values = np.arange(5_000, dtype=np.float64)
    images = {stored(SketchSpec.of("kll", k=8), [values]).serialize() for _ in range(3)}
    assert len(images) > 1


def test_topk_bounds_hold_and_no_heavy_item_is_missed_in_every_order() -> None:
    spec = SketchSpec.of("topk", lg_max_k=3, k=6)
    batches = text_batches(40)
    exact = Counter(item for batch in batches for item in batch)
    for sketch in every_order(spec, batches) + [stored(spec, s) for s in other_splits(batches)]:
        top = sketch.top(6)
        assert top.total_weight == sum(exact.values())
        assert top.maximum_error <= top.error_bound
        for row in top.items:
            assert row.lower_bound <= exact[row.item] <= row.upper_bound, row
        listed = {row.item for row in top.items}
        heavy = [item for item, count in exact.most_common(6) if count > top.maximum_error]
        assert set(heavy) <= listed


def test_topk_lists_differ_by_order_within_their_bounds() -> None:
    # The case: lg_max_k=3 keeps at most 6 counters, and which light item
    # survives a purge depends on what arrived before it.
    spec = SketchSpec.of("topk", lg_max_k=3, k=6)
    first, second = ["f", "j", "h"], ["d", "e", "a", "c", "i"]
    forward = {row.item for row in stored(spec, [first, second]).top(6).items}
    backward = {row.item for row in stored(spec, [second, first]).top(6).items}
    assert forward != backward


def test_reservoir_samples_are_uniform_draws_in_every_order_and_merges_are_exact() -> None:
    spec = SketchSpec.of("reservoir", k=20)
    batches = [[f"b{batch}-{index}" for index in range(50)] for batch in range(4)]
    everything = {item for batch in batches for item in batch}
    for sketch in every_order(spec, batches):
        sample = sketch.sample()
        assert sample.items_seen == 200
        assert len(set(sample.items)) == 20
        assert set(sample.items) <= everything
    # Merging two samples keeps the k smallest tags: the same result in either order.
    left, right = stored(spec, batches[:2], seed=1), stored(spec, batches[2:], seed=2)
    one_way, other_way = (
        new_sketch(spec, rng=random.Random(0)),
        new_sketch(spec, rng=random.Random(0)),
    )
    one_way.merge(left)
    one_way.merge(right)
    other_way.merge(right)
    other_way.merge(left)
    assert one_way.serialize() == other_way.serialize()
