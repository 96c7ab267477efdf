"""Count-Min, Bloom, KLL and top-k sketch maps through the SDK: each within its guarantee."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from shoal import Client
from shoal.sketches import BloomSummary, CountMinSummary, QuantileSummary, TopItems

pytestmark = pytest.mark.integration

BATCH = 10_000


@pytest.fixture(scope="module")
def zipf_stream() -> list[str]:
    """200,000 draws from a Zipf law (exponent 1.3), fixed seed, as strings."""
    draws = np.random.default_rng(20240611).zipf(1.3, size=200_000)
    return [f"page-{draw}" for draw in draws.tolist()]


def add_in_batches(client: Client, map_name: str, key: str, items: list) -> None:
    for start in range(0, len(items), BATCH):
        client.sketches.add(map_name, key, items[start : start + BATCH])


def test_count_min_never_underestimates_and_stays_within_epsilon_n(
    client: Client, map_name: str, zipf_stream: list[str]
) -> None:
    client.sketches.create(map_name, kind="cms", epsilon=0.001, delta=0.01)
    add_in_batches(client, map_name, "hits", zipf_stream)
    summary = client.sketches.estimate(map_name, "hits")
    assert isinstance(summary, CountMinSummary)
    total = len(zipf_stream)
    assert summary.total_weight == total
    assert summary.error_bound == pytest.approx(summary.epsilon * total)
    assert summary.epsilon <= 0.001
    truth = Counter(zipf_stream)
    items = list(truth)
    answers = client.sketches.frequencies(map_name, "hits", items)
    for item, answer in zip(items, answers, strict=True):
        assert answer.item == item
        assert answer.value >= truth[item], item
        assert answer.value - truth[item] <= summary.error_bound, item
        assert answer.lower_bound <= truth[item] <= answer.upper_bound
    assert client.sketches.frequency(map_name, "hits", "never-seen").value <= summary.error_bound


def test_bloom_has_no_false_negatives_and_a_false_positive_rate_near_its_target(
    client: Client, map_name: str
) -> None:
    capacity, rate = 20_000, 0.01
    client.sketches.create(map_name, kind="bloom", capacity_items=capacity, error_rate=rate)
    members = [f"member-{index}" for index in range(capacity)]
    add_in_batches(client, map_name, "seen", members)
    assert all(client.sketches.contains_many(map_name, "seen", members))
    strangers = [f"stranger-{index}" for index in range(20_000)]
    false_positives = sum(client.sketches.contains_many(map_name, "seen", strangers))
    assert false_positives / len(strangers) <= 2 * rate
    assert client.sketches.contains(map_name, "seen", "member-7") is True
    fill = client.sketches.estimate(map_name, "seen")
    assert isinstance(fill, BloomSummary)
    assert fill.items_added == capacity
    assert fill.expected_false_positive_rate <= 2 * rate


def test_kll_quantiles_are_within_the_rank_error(client: Client, map_name: str) -> None:
    client.sketches.create(map_name, kind="kll", k=200)
    values = np.random.default_rng(7).lognormal(3.0, 1.0, size=200_000)
    for start in range(0, len(values), BATCH):
        client.sketches.add(map_name, "latency", values[start : start + BATCH])
    # Plain lists of numbers travel the same way.
    client.sketches.add(map_name, "small", [1, 2, 3, 4.5])
    ordered = np.sort(values)
    ranks = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    summary = client.sketches.quantiles(map_name, "latency", ranks)
    assert isinstance(summary, QuantileSummary)
    assert summary.items_seen == len(values)
    error = summary.normalized_rank_error
    for answer in summary.quantiles:
        below = np.searchsorted(ordered, answer.value, side="left") / len(ordered)
        at_or_below = np.searchsorted(ordered, answer.value, side="right") / len(ordered)
        assert below - error <= answer.rank <= at_or_below + error, answer
        assert answer.lower_value <= answer.value <= answer.upper_value
    rank = client.sketches.rank(map_name, "latency", float(ordered[100_000]))
    assert abs(rank.rank - 100_001 / len(ordered)) <= error
    median = client.sketches.estimate(map_name, "small")
    assert isinstance(median, QuantileSummary)
    assert median.quantile(1.0).value == 4.5


def test_top_k_lists_every_item_above_the_threshold(
    client: Client, map_name: str, zipf_stream: list[str]
) -> None:
    client.sketches.create(map_name, kind="topk", lg_max_k=10, k=20)
    add_in_batches(client, map_name, "pages", zipf_stream)
    truth = Counter(zipf_stream)
    answer = client.sketches.top(map_name, "pages", k=768)
    assert isinstance(answer, TopItems)
    assert answer.total_weight == len(zipf_stream)
    assert answer.maximum_error <= answer.error_bound
    listed = {item.item for item in answer.items}
    for item, count in truth.items():
        if count > answer.maximum_error:
            assert item in listed, (item, count, answer.maximum_error)
    for item in answer.items:
        assert item.lower_bound <= truth[item.item] <= item.upper_bound
    heaviest = client.sketches.estimate(map_name, "pages")
    assert isinstance(heaviest, TopItems)
    assert [item.item for item in heaviest.items] == [item for item, _ in truth.most_common(20)][
        : len(heaviest.items)
    ]
    assert client.sketches.frequency(map_name, "pages", "page-1").value == pytest.approx(
        truth["page-1"], abs=answer.maximum_error
    )
