"""Micro-batching by count and time, and the flow-control rule (pure; time passed in)."""

from __future__ import annotations

import pytest

from coordinator.pipelines.batching import Batcher, Chunk, fair_shares, should_fetch


def chunk(partition: int, count: int, epoch: int = 1) -> Chunk:
    return Chunk("t", partition, epoch, list(range(count)))


def test_a_batch_closes_at_batch_max_records():
    batcher = Batcher(batch_max=10, batch_ms=1000)
    batcher.add(chunk(0, 6), now_s=0.0)
    assert not batcher.ready(0.0)
    assert batcher.room == 4
    batcher.add(chunk(1, 4), now_s=0.01)
    assert batcher.ready(0.01)
    batch = batcher.take()
    assert batch.size == 10
    assert batch.partitions() == {("t", 0), ("t", 1)}
    assert batcher.size == 0 and batcher.room == 10


def test_a_batch_closes_batch_ms_after_its_first_record():
    batcher = Batcher(batch_max=100, batch_ms=50)
    assert batcher.wait_s(5.0) == pytest.approx(0.05)
    batcher.add(chunk(0, 1), now_s=5.0)
    assert batcher.wait_s(5.02) == pytest.approx(0.03)
    assert not batcher.ready(5.049)
    # A later record does not restart the clock.
    batcher.add(chunk(0, 1), now_s=5.04)
    assert batcher.ready(5.05)
    assert batcher.wait_s(5.06) == 0


def test_an_empty_batcher_is_never_ready_and_ids_increase():
    batcher = Batcher(batch_max=2, batch_ms=1)
    assert not batcher.ready(100.0)
    batcher.add(chunk(0, 2), 0.0)
    first = batcher.take()
    batcher.add(chunk(0, 1), 0.0)
    assert batcher.take().batch_id == first.batch_id + 1


def test_records_beyond_the_room_are_refused():
    batcher = Batcher(batch_max=3, batch_ms=10)
    with pytest.raises(ValueError, match="exceed the room"):
        batcher.add(chunk(0, 4), 0.0)


def test_dropping_a_partition_forgets_its_records_only():
    batcher = Batcher(batch_max=100, batch_ms=10)
    batcher.add(chunk(0, 5), 0.0)
    batcher.add(chunk(1, 3), 0.0)
    batcher.add(chunk(0, 2), 0.0)
    assert batcher.drop([("t", 0)]) == 7
    assert batcher.size == 3
    assert batcher.take().partitions() == {("t", 1)}


@pytest.mark.parametrize(
    ("in_flight", "paused", "room", "expected"),
    [(0, False, 10, True), (2, False, 10, False), (1, True, 10, False), (1, False, 0, False)],
)
def test_fetching_pauses_at_the_in_flight_bound_when_paused_or_full(
    in_flight, paused, room, expected
):
    assert should_fetch(in_flight=in_flight, max_in_flight=2, paused=paused, room=room) is expected


def test_fair_shares_split_the_room_evenly_and_the_first_take_the_rest() -> None:
    shares = fair_shares(10, ["p0", "p1", "p2", "p3"], start=0)
    assert shares == [("p0", 3), ("p1", 3), ("p2", 2), ("p3", 2)]
    assert sum(share for _, share in shares) == 10


def test_fair_shares_turn_moves_the_first_partition() -> None:
    assert [partition for partition, _ in fair_shares(8, ["a", "b", "c"], start=4)] == [
        "b",
        "c",
        "a",
    ]


def test_fair_shares_with_less_room_than_partitions_gives_one_each_in_turn() -> None:
    taken = [fair_shares(2, ["a", "b", "c", "d"], start=turn) for turn in range(4)]
    assert [[partition for partition, _ in shares] for shares in taken] == [
        ["a", "b"],
        ["b", "c"],
        ["c", "d"],
        ["d", "a"],
    ]
    assert all(share == 1 for shares in taken for _, share in shares)


def test_fair_shares_of_nothing() -> None:
    assert fair_shares(0, ["a"], start=0) == []
    assert fair_shares(5, [], start=0) == []
