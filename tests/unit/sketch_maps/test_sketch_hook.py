"""The participant's sketch hook: batches merged into stored sketches, atomically."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from coordinator.sketches.apply import SketchApplier, SpecCache
from coordinator.sketches.items import PACKED_STRINGS
from grid.catalog import Catalog
from grid.entry import value_of
from grid.errors import FailedPrecondition, InvalidArgument, NotFound
from grid.memory.records import Op
from grid.participant import Abort, Applied, Commit, Participant, Read, Vote, Write
from grid.sketches import SketchSpec, deserialize_sketch
from tests.unit.participant_support import Harness, apply, prepare


class MemoryCatalogStore:
    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def load(self) -> list[dict[str, Any]]:
        return self.saved

    def save(self, maps: list[dict[str, Any]]) -> None:
        self.saved = maps


HLL = SketchSpec.of("hll", lg_k=10)
CMS = SketchSpec.of("cms", width=200, depth=4)


@pytest.fixture
def catalog() -> Catalog:
    created = Catalog(MemoryCatalogStore())
    created.create("visitors", None, now_ms=0, sketch=HLL.to_dict())
    created.create("counts", None, now_ms=0, sketch=CMS.to_dict())
    created.create("reservoir", None, now_ms=0, sketch=SketchSpec.of("reservoir", k=5).to_dict())
    created.create("plain", None, now_ms=0)
    return created


@pytest.fixture
def applier(catalog: Catalog) -> SketchApplier:
    return SketchApplier(SpecCache(catalog), random.Random(7))


def strings(*items: str) -> bytes:
    return bytes((PACKED_STRINGS,)) + "\x00".join(items).encode()


def add(map_name: str, key: str, items: bytes) -> Write:
    return Write(Op.SKETCH_ADD, map_name, key, items)


def test_the_first_add_makes_a_sketch_and_later_adds_merge_into_it(applier: SketchApplier) -> None:
    first = applier("visitors", None, strings("a", "b", "c"))
    assert deserialize_sketch(HLL, first).distinct_count().estimate == pytest.approx(3, abs=0.01)
    second = applier("visitors", first, orjson.dumps(["c", "d", 7]))
    assert deserialize_sketch(HLL, second).distinct_count().estimate == pytest.approx(5, abs=0.01)


def test_hll_estimates_do_not_depend_on_the_order_of_batches(applier: SketchApplier) -> None:
    batches = [strings(*(f"u{batch}-{i}" for i in range(3_000))) for batch in range(8)]
    orders = [list(range(8)), [5, 2, 7, 0, 1, 6, 3, 4], list(reversed(range(8)))]
    estimates = set()
    for order in orders:
        stored = None
        for index in order:
            stored = applier("visitors", stored, batches[index])
        assert stored is not None
        estimates.add(deserialize_sketch(HLL, stored).distinct_count().estimate)
    assert len(estimates) == 1


def test_bad_items_are_refused_with_the_reason(applier: SketchApplier) -> None:
    with pytest.raises(InvalidArgument, match="bool is not an item") as raised:
        applier("visitors", None, b'["a", true]')
    assert raised.value.field == "items"


def test_a_map_without_a_sketch_spec_is_refused(applier: SketchApplier) -> None:
    with pytest.raises(InvalidArgument, match="not a sketch map") as raised:
        applier("plain", None, strings("a"))
    assert raised.value.field == "map"
    with pytest.raises(NotFound, match="does not exist"):
        applier("missing", None, strings("a"))


def test_unreadable_stored_bytes_are_a_failed_precondition(applier: SketchApplier) -> None:
    with pytest.raises(FailedPrecondition, match="not a hll sketch"):
        applier("visitors", b"garbage", strings("a"))


def test_the_spec_is_read_again_when_the_map_is_created_anew(catalog: Catalog) -> None:
    specs = SpecCache(catalog)
    assert specs.spec("visitors") == HLL
    catalog.drop("visitors")
    catalog.create("visitors", None, now_ms=1, sketch=SketchSpec.of("hll", lg_k=5).to_dict())
    assert specs.spec("visitors") == SketchSpec.of("hll", lg_k=5)


def test_a_reservoir_draws_from_the_rng_it_is_given(catalog: Catalog) -> None:
    batch = strings(*(f"item-{index}" for index in range(100)))
    runs = [SketchApplier(SpecCache(catalog), random.Random(11)) for _ in range(2)]
    assert runs[0]("reservoir", None, batch) == runs[1]("reservoir", None, batch)


# Inside the participant --------------------------------------------------------------


def harness(applier: SketchApplier) -> Harness:
    return Harness(Participant(0, sketch_apply=applier))


def counts(participant: Participant, key: str) -> float:
    entry = participant.get("counts", key)
    assert entry is not None
    return deserialize_sketch(CMS, value_of(entry)).frequency("x").estimate


def test_concurrent_prepared_adds_share_the_key_and_both_commit(applier: SketchApplier) -> None:
    grid = harness(applier)
    for txn in (b"t1", b"t2"):
        vote = grid.reply(prepare(txn, add("counts", "k", strings("x", "x"))))
        assert isinstance(vote, Vote) and vote.yes, vote
    # A one-phase add meanwhile takes the same commutative lock.
    assert isinstance(grid.reply(apply(add("counts", "k", strings("x")))), Applied)
    grid.reply(Commit(b"t2"))
    grid.reply(Commit(b"t1"))
    assert counts(grid.participant, "k") == 5


def test_an_aborted_add_leaves_no_trace(applier: SketchApplier) -> None:
    grid = harness(applier)
    grid.reply(apply(add("counts", "k", strings("x"))))
    before = grid.participant.get("counts", "k")
    grid.reply(prepare(b"t1", add("counts", "k", strings("x", "x", "x"))))
    grid.reply(Abort(b"t1"))
    assert grid.participant.get("counts", "k") == before
    assert counts(grid.participant, "k") == 1


def test_a_bad_batch_votes_no_and_changes_nothing(applier: SketchApplier) -> None:
    grid = harness(applier)
    vote = grid.reply(prepare(b"t1", add("counts", "k", b"[null]")))
    assert isinstance(vote, Vote) and not vote.yes
    assert "not an item" in vote.reason
    assert grid.participant.get("counts", "k") is None
    error = grid.error(apply(add("counts", "k", b"[null]")))
    assert isinstance(error, InvalidArgument)


def test_a_reader_of_the_key_conflicts_with_an_adder(applier: SketchApplier) -> None:
    grid = harness(applier)
    grid.reply(prepare(b"t1", add("counts", "k", strings("x"))))
    vote = grid.reply(prepare(b"t2", reads=(Read("counts", "k", 0),)))
    assert isinstance(vote, Vote) and not vote.yes


def test_replay_rebuilds_the_sketch_without_calling_the_hook(applier: SketchApplier) -> None:
    grid = harness(applier)
    grid.reply(apply(add("counts", "k", strings("x", "y"))))
    grid.reply(prepare(b"t1", add("counts", "k", strings("x"))))
    grid.reply(Commit(b"t1"))

    def refuse(map_name: str, current: bytes | None, items: bytes) -> bytes:
        raise AssertionError("replay must install the logged sketch, not apply again")

    replayed = grid.replayed(sketch_apply=refuse)
    assert replayed.get("counts", "k") == grid.participant.get("counts", "k")
