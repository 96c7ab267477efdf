"""The shared store's commit sequence as the manager uses it: a commit waits for every lower
number, for this process's holders by their release here, for others' by the store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import pytest

from coordinator.clock import ManualClock
from coordinator.transactions import store_sequence
from coordinator.transactions.store_sequence import StoreCommitSequence
from grid.backend import PartitionStore
from grid.errors import Unavailable
from grid.participant import Applied, ApplyOnePhase, Reply


class ListingStore:
    """A store sequence that lists the lower numbers held with each new one, and counts how
    often it is asked for the read version."""

    def __init__(self) -> None:
        self.last = 0
        self.held: set[int] = set()
        self.read_versions = 0
        self.lock = threading.Lock()

    def take(self, owner: str) -> int:
        return self.take_with_lower(owner)[0]

    def take_with_lower(self, owner: str) -> tuple[int, int, list[int] | None]:
        with self.lock:
            self.last += 1
            self.held.add(self.last)
            return self.last, 0, sorted(number for number in self.held if number < self.last)

    def release(self, number: int) -> None:
        with self.lock:
            self.held.discard(number)

    def read_version(self) -> int:
        with self.lock:
            self.read_versions += 1
            return min(self.held, default=self.last + 1) - 1

    def expired(self, scan_max: int = 1000) -> list[tuple[int, str]]:
        return []


def test_a_commit_with_no_lower_number_held_asks_the_store_nothing() -> None:
    store = ListingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    with sequence.commit(b"t") as number:
        assert number == 1
    assert store.read_versions == 0


def test_a_commit_waits_for_a_lower_number_held_here_until_it_is_given_back() -> None:
    store = ListingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    order: list[str] = []
    lower_held = threading.Event()
    finish_lower = threading.Event()

    def lower() -> None:
        with sequence.commit(b"low"):
            lower_held.set()
            finish_lower.wait(10)
            order.append("low applied")

    def higher() -> None:
        with sequence.commit(b"high"):
            order.append("high applied")

    first = threading.Thread(target=lower)
    first.start()
    assert lower_held.wait(10)
    second = threading.Thread(target=higher)
    second.start()
    second.join(0.2)
    assert second.is_alive(), "the higher number went ahead of a lower one still applying"
    finish_lower.set()
    first.join(10)
    second.join(10)
    assert order == ["low applied", "high applied"]
    assert store.read_versions == 0, "waited for its own process's holder by asking the store"


def test_a_lower_number_held_elsewhere_is_waited_for_through_the_store() -> None:
    store = ListingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    other = store.take("another coordinator")
    released = threading.Timer(0.05, store.release, args=(other,))
    released.start()
    with sequence.commit(b"t") as number:
        assert number == other + 1
        assert other not in store.held, "applied before a lower number held elsewhere"
    released.join()
    assert store.read_versions >= 1


def test_a_commit_the_store_failed_under_keeps_its_number_for_the_sweeper() -> None:
    """A transaction's commits on its partitions failed part-way (the store went away): some
    partitions may hold it and others not yet. The number stays held in the store, and a
    later commit here waits for the store to release it (the sweeper finishing the
    transaction at that number), not only for this process to give it back."""
    store = ListingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    failing_held = threading.Event()
    fail = threading.Event()
    order: list[str] = []

    def failing() -> None:
        with pytest.raises(Unavailable), sequence.commit(b"split", several_steps=True):
            failing_held.set()
            fail.wait(10)
            raise Unavailable("the store went away after some partitions committed")

    def later() -> None:
        with sequence.commit(b"later"):
            order.append("later applied")

    first = threading.Thread(target=failing)
    first.start()
    assert failing_held.wait(10)
    second = threading.Thread(target=later)
    second.start()
    fail.set()
    first.join(10)
    second.join(0.3)
    assert store.held >= {1}, "the number of a commit that may have split was released"
    assert second.is_alive() and order == [], "a later commit passed a split one"
    store.release(1)  # the sweeper finished the transaction at its number
    second.join(10)
    assert order == ["later applied"]


def test_a_one_step_commit_the_store_failed_under_gives_its_number_back() -> None:
    store = ListingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    with pytest.raises(Unavailable), sequence.commit(b"one step"):
        raise Unavailable("the store went away")
    assert store.held == set()


def test_a_wait_that_gives_up_keeps_a_number_another_may_be_committing_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sweeper finishing a transaction gets the number its live driver holds; giving up on
    the wait must not release it under the driver."""
    monkeypatch.setattr(store_sequence, "LOWER_NUMBERS_WAIT_S", 0.05)
    store = ListingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    store.take("a dead coordinator")
    with pytest.raises(Unavailable), sequence.commit(b"shared", several_steps=True):
        pass
    assert 2 in store.held


class RidingStore(ListingStore):
    """A store whose release can ride behind a partition's step; counts its own releases."""

    def __init__(self) -> None:
        super().__init__()
        self.releases = 0

    def release(self, number: int) -> None:
        self.releases += 1
        super().release(number)

    def release_command(self, number: int) -> list[Any] | None:
        return ["release", number]


class RidingPartition:
    """A partition that runs the command sent behind a step when `runs` says so."""

    index = 0

    def __init__(self, store: RidingStore, *, runs: bool) -> None:
        self.store = store
        self.runs = runs
        self.applied: list[int] = []

    def apply(self, event: ApplyOnePhase) -> tuple[Reply, Callable[[], None]]:
        self.applied.append(event.version)
        return Applied((event.version,)), lambda: None

    def apply_then(self, event: ApplyOnePhase, command: list[Any]) -> tuple[Reply, bool]:
        self.applied.append(event.version)
        assert command == ["release", event.version]
        if self.runs:
            ListingStore.release(self.store, event.version)
        return Applied((event.version,)), self.runs


def test_a_release_sent_with_the_last_step_is_not_sent_again() -> None:
    store = RidingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    partition = RidingPartition(store, runs=True)
    with sequence.commit(b"t") as number:
        reply, _ = sequence.apply_last(
            cast(PartitionStore, partition), ApplyOnePhase(b"t", (), (), number)
        )
    assert reply == Applied((number,)) and partition.applied == [number]
    assert store.releases == 0 and not store.held


def test_a_release_that_did_not_run_with_the_step_is_sent_at_the_end() -> None:
    store = RidingStore()
    sequence = StoreCommitSequence(store, ManualClock())
    partition = RidingPartition(store, runs=False)
    with sequence.commit(b"t") as number:
        sequence.apply_last(cast(PartitionStore, partition), ApplyOnePhase(b"t", (), (), number))
    assert store.releases == 1 and not store.held
