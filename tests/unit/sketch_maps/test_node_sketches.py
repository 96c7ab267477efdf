"""Sketch maps on an in-process node: specs, adds, merged reads, accuracy, SQL answers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from coordinator.config import load
from coordinator.metrics import Registry
from coordinator.node import Node
from coordinator.sketches import sketch_answer, sketch_union_answer
from coordinator.sketches.items import PACKED_DOUBLES, PACKED_STRINGS
from grid.errors import AlreadyExists, InvalidArgument
from grid.memory.records import Op
from grid.participant import Write


def strings(*items: str) -> bytes:
    return bytes((PACKED_STRINGS,)) + "\x00".join(items).encode()


def doubles(values: np.ndarray) -> bytes:
    return bytes((PACKED_DOUBLES,)) + values.astype("<f8").tobytes()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    config = replace(
        load(environment={}),
        data_dir=tmp_path / "data",
        partitions=4,
        fsync="off",
        sketch_accuracy_sample_rate=1.0,
    )
    created = Node(config, rng=random.Random(5), metrics=Registry())
    yield created
    created.close()


def test_create_validates_and_stores_the_normalized_spec(node: Node) -> None:
    view = node.sketches.create("cms", "cms", {"epsilon": 0.01, "delta": 0.01})
    assert view.spec.params == {"width": 272, "depth": 5}
    assert node.catalog.get("cms").sketch == {"kind": "cms", "params": {"depth": 5, "width": 272}}
    assert view.sketch_bytes_max == 24 + 8 * 272 * 5
    with pytest.raises(InvalidArgument, match="lg_k: must be from 4 to 21") as raised:
        node.sketches.create("bad", "hll", {"lg_k": 30})
    assert raised.value.field == "lg_k"
    with pytest.raises(InvalidArgument, match="unknown kind 'hyperloglog'") as raised:
        node.sketches.create("bad", "hyperloglog", {})
    assert raised.value.field == "kind"


def test_if_not_exists_accepts_the_same_spec_only(node: Node) -> None:
    node.sketches.create("v", "hll", {"lg_k": 11})
    assert node.sketches.create("v", "hll", {"lg_k": 11}, if_not_exists=True).spec.kind == "hll"
    with pytest.raises(AlreadyExists, match="another spec"):
        node.sketches.create("v", "hll", {"lg_k": 12}, if_not_exists=True)
    with pytest.raises(AlreadyExists):
        node.sketches.create("v", "hll", {"lg_k": 11})


def test_adds_are_writes_that_only_sketch_maps_take(node: Node) -> None:
    node.sketches.create("v", "hll", {})
    node.create_map("plain")
    assert node.sketches.add("v", "day", strings("a", "b")) > 0
    with pytest.raises(InvalidArgument, match="not a sketch map"):
        node.sketches.add("plain", "day", strings("a"))
    with pytest.raises(InvalidArgument, match="holds sketches"):
        node.keyvalue.put("v", "day", b'{"a": 1}')


def test_a_read_of_several_keys_is_their_union(node: Node) -> None:
    node.sketches.create("v", "hll", {"lg_k": 12})
    node.sketches.add("v", "a", strings(*(f"u{i}" for i in range(0, 6_000))))
    node.sketches.add("v", "b", strings(*(f"u{i}" for i in range(4_000, 10_000))))
    node.sketches.add("v", "both", strings(*(f"u{i}" for i in range(0, 10_000))))
    union = node.sketches.load("v", ["a", "b", "missing", "a"])
    assert union.keys_found == 2
    both = node.sketches.load("v", ["both"])
    assert union.sketch.distinct_count().estimate == both.sketch.distinct_count().estimate
    assert union.sketch.serialize() == both.sketch.serialize()


def test_the_accuracy_monitor_sees_committed_batches_and_publishes_errors(node: Node) -> None:
    node.sketches.create("v", "hll", {"lg_k": 10})
    node.sketches.create("lat", "kll", {"k": 100})
    for batch in range(5):
        node.sketches.add("v", "day", strings(*(f"u{batch}-{i}" for i in range(500))))
    node.sketches.add("lat", "p", doubles(np.random.default_rng(1).normal(size=2_000)))
    # A transaction's sketch write is observed too; an aborted one is not.
    node.transactions.commit(b"txn-0001", (), [Write(Op.SKETCH_ADD, "v", "day", strings("x"))])
    report = node.sketches.measure_accuracy()
    kinds = {item.stats.kind.value: item for item in report.kinds}
    assert set(kinds) == {"hll", "kll"}
    hll = kinds["hll"].stats
    assert hll.samples == 1 and hll.outside_bound == 0
    assert hll.max_relative_error <= hll.error_bound
    assert kinds["kll"].stats.samples == 9
    observed = node.metrics.value("shoal_sketch_observed_relative_error", kind="hll", stat="max")
    assert observed == pytest.approx(hll.max_relative_error)
    assert 'shoal_sketch_error_bound{kind="kll"}' in node.metrics.render()


def test_keys_the_monitor_did_not_see_from_the_start_are_not_measured(node: Node) -> None:
    node.sketches.create("v", "hll", {})
    assert node.sketches.accuracy is not None
    # Written while the monitor is off (as before a restart): the key is not trusted.
    node.transactions.observer = None
    node.sketches.add("v", "old", strings("a", "b"))
    node.transactions.observer = node.sketches.accuracy
    node.sketches.add("v", "old", strings("c"))
    node.sketches.add("v", "new", strings("c"))
    report = node.sketches.measure_accuracy()
    assert report.untrusted_keys == 1
    assert report.tracked_keys == 1
    # Deleting a key forgets it; its next add starts afresh.
    node.keyvalue.delete("v", "new")
    node.sketches.add("v", "new", strings("d"))
    assert node.sketches.measure_accuracy().kinds[0].keys == 1


def test_sketch_answers_for_sql(node: Node) -> None:
    node.sketches.create("v", "hll", {})
    node.sketches.create("lat", "kll", {})
    node.sketches.add("v", "a", strings("x", "y"))
    node.sketches.add("v", "b", strings("y", "z"))
    node.sketches.add("lat", "p", doubles(np.arange(1, 101, dtype=float)))
    spec = node.catalog.get("v").sketch
    assert spec is not None
    stored = [node.sketches.export("v", key) for key in ("a", "b")]
    data = [item.data if item is not None else None for item in stored]
    assert sketch_answer(spec, data[0], "hll_estimate") == pytest.approx(2, abs=0.01)
    assert sketch_answer(spec, None, "hll_estimate") == 0
    assert sketch_union_answer(spec, [*data, None], "hll_estimate") == pytest.approx(3, abs=0.01)
    lat = node.sketches.export("lat", "p")
    assert lat is not None
    assert sketch_answer(lat.spec, lat.data, "kll_quantile", 0.5) == 50
    with pytest.raises(InvalidArgument, match="needs a kll sketch, not hll"):
        sketch_answer(spec, data[0], "kll_quantile", 0.5)
    with pytest.raises(InvalidArgument, match="unknown sketch function"):
        sketch_answer(spec, data[0], "hll_median")


def test_a_tracked_key_changed_by_a_commit_the_monitor_did_not_see_is_dropped(node: Node) -> None:
    # On a shared store another coordinator's adds reach a key without passing this monitor:
    # its exact answer would miss them and report a sketch error that is not there.
    node.sketches.create("v", "hll", {"lg_k": 10})
    node.sketches.add("v", "day", strings(*(f"u{i}" for i in range(300))))
    node.sketches.add("v", "other", strings("a"))
    assert node.sketches.measure_accuracy().tracked_keys == 2
    monitor = node.transactions.observer
    node.transactions.observer = None  # the other coordinator's commit
    node.sketches.add("v", "day", strings(*(f"w{i}" for i in range(300))))
    node.transactions.observer = monitor
    report = node.sketches.measure_accuracy()
    assert report.tracked_keys == 1
    assert report.untrusted_keys == 1
    assert report.kinds[0].keys == 1 and report.kinds[0].stats.outside_bound == 0
    # Its next add through this monitor does not trust it again.
    node.sketches.add("v", "day", strings("x"))
    assert node.sketches.measure_accuracy().tracked_keys == 1


def test_a_tracked_key_stays_trusted_through_the_monitors_own_commits(node: Node) -> None:
    node.sketches.create("v", "hll", {"lg_k": 10})
    for batch in range(4):
        node.sketches.add("v", "day", strings(*(f"u{batch}-{i}" for i in range(100))))
        node.transactions.commit(
            f"txn-{batch:04d}".encode(), (), [Write(Op.SKETCH_ADD, "v", "day", strings("t"))]
        )
    report = node.sketches.measure_accuracy()
    assert (report.tracked_keys, report.untrusted_keys) == (1, 0)
    assert report.kinds[0].stats.samples == 1
