"""HyperLogLog sketch maps through the SDK against a real server: accuracy, unions, bytes."""

from __future__ import annotations

import datasketches
import pytest

from grid.partitioner import Partitioner
from shoal import Client
from shoal.sketches import DistinctCount

pytestmark = pytest.mark.integration

BATCH = 10_000


def add_in_batches(client: Client, map_name: str, key: str, items: list[str]) -> None:
    for start in range(0, len(items), BATCH):
        client.sketches.add(map_name, key, items[start : start + BATCH])


def test_issue_example(client: Client, map_name: str) -> None:
    info = client.sketches.create(map_name, kind="hll", lg_k=12)
    assert (info.kind, info.params, info.sketch_bytes_max) == ("hll", {"lg_k": 12}, 2216)
    client.sketches.add(map_name, "2026-11-26", ["u1", "u2", "u3", "u2"])
    client.sketches.add(map_name, "2026-11-25", ["u3", "u4"])
    day = client.sketches.estimate(map_name, "2026-11-26")
    assert isinstance(day, DistinctCount)
    assert day.value == pytest.approx(3, abs=0.01)
    assert float(day) == day.value
    both = client.sketches.merge_estimate(map_name, ["2026-11-25", "2026-11-26"])
    assert both.value == pytest.approx(4, abs=0.01)
    with client.transaction() as tx:
        tx.sketch_add(map_name, "2026-11-26", "u9")
    assert client.sketches.estimate(map_name, "2026-11-26").value == pytest.approx(4, abs=0.01)
    assert client.sketches.estimate(map_name, "no-such-day").value == 0


def test_a_million_distinct_items_estimate_within_three_standard_errors(
    client: Client, map_name: str
) -> None:
    client.sketches.create(map_name, kind="hll", lg_k=12)
    truth = 1_000_000
    add_in_batches(client, map_name, "all", [f"user-{index}" for index in range(truth)])
    answer = client.sketches.estimate(map_name, "all")
    assert isinstance(answer, DistinctCount)
    standard_error = answer.relative_standard_error * truth
    assert abs(answer.value - truth) <= 3 * standard_error, answer
    lower, upper = answer.interval(3)
    assert lower <= truth <= upper
    assert answer.memory_bytes <= 12 * 1024 // 4


def test_the_union_of_two_sketches_is_the_sketch_of_the_union(
    client: Client, map_name: str
) -> None:
    client.sketches.create(map_name, kind="hll", lg_k=12)
    left = [f"item-{index}" for index in range(0, 60_000)]
    right = [f"item-{index}" for index in range(40_000, 100_000)]
    add_in_batches(client, map_name, "left", left)
    add_in_batches(client, map_name, "right", right)
    add_in_batches(client, map_name, "union", sorted(set(left) | set(right)))
    merged = client.sketches.merge_estimate(map_name, ["left", "right"])
    whole = client.sketches.estimate(map_name, "union")
    assert merged.value == whole.value
    assert merged.intervals == whole.intervals
    # Merging the exported bytes with DataSketches itself gives the same answer.
    union = datasketches.hll_union(12)
    for key in ("left", "right"):
        exported = client.sketches.export(map_name, key)
        assert exported is not None
        union.update(datasketches.hll_sketch.deserialize(exported))
    assert union.get_result().get_estimate() == pytest.approx(whole.value, rel=1e-9)


def test_exported_bytes_are_datasketches_images_and_round_trip(
    client: Client, map_name: str
) -> None:
    client.sketches.create(map_name, kind="hll", lg_k=11)
    add_in_batches(client, map_name, "k", [f"x{index}" for index in range(25_000)])
    exported = client.sketches.export(map_name, "k")
    assert exported is not None
    sketch = datasketches.hll_sketch.deserialize(exported)
    assert sketch.lg_config_k == 11
    assert sketch.get_estimate() == pytest.approx(client.sketches.estimate(map_name, "k").value)
    # The key-value API answers a sketch map's values with the same portable bytes.
    assert client.get(map_name, "k") == exported
    assert client.get_many(map_name, ["k", "absent"]) == {"k": exported}
    assert dict(client.scan(map_name)) == {"k": exported}
    assert client.sketches.export(map_name, "absent") is None


def test_merge_estimate_spans_partitions(client: Client, map_name: str) -> None:
    client.sketches.create(map_name, kind="hll")
    partitioner = Partitioner(client.cluster_info().partitions)
    keys: dict[int, str] = {}
    index = 0
    while len(keys) < 4:
        key = f"shard-{index}"
        keys.setdefault(partitioner.partition_of(key), key)
        index += 1
    for position, key in enumerate(keys.values()):
        client.sketches.add(map_name, key, [f"u{position}-{item}" for item in range(100)])
    assert client.sketches.merge_estimate(map_name, list(keys.values())).value == pytest.approx(
        400, rel=0.03
    )
