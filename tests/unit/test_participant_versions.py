"""Multi-version entries: reads at a version, the window, the byte budget, recovery."""

from __future__ import annotations

import orjson
import pytest

from grid.entry import value_of, version_of
from grid.errors import ReadVersionTooOld
from grid.participant import ApplyOnePhase, Commit, ForgetVersions, Participant
from tests.unit.participant_support import Harness, delete, prepare, put


def at(version: int, *writes: object, horizon: int = 0) -> ApplyOnePhase:
    return ApplyOnePhase(b"", (), tuple(writes), version, horizon)  # type: ignore[arg-type]


def value_at(participant: Participant, key: str, version: int) -> object:
    entry = participant.read_at("m", key, version)
    return None if entry is None else orjson.loads(value_of(entry))


def test_a_read_at_a_version_sees_the_state_committed_up_to_it() -> None:
    harness = Harness()
    harness.step(at(10, put("k", {"n": 1})))
    harness.step(at(20, put("k", {"n": 2})))
    harness.step(at(30, delete("k")))
    harness.step(at(40, put("k", {"n": 4})))
    participant = harness.participant
    assert [value_at(participant, "k", version) for version in (5, 10, 19, 20, 29, 30, 39, 40)] == [
        None,
        {"n": 1},
        {"n": 1},
        {"n": 2},
        {"n": 2},
        None,
        None,
        {"n": 4},
    ]
    entry = participant.read_at("m", "k", 25)
    assert entry is not None and version_of(entry) == 20, "the version of the state read"


def test_keys_that_do_not_change_keep_no_history() -> None:
    harness = Harness()
    harness.step(at(1, *(put(f"k{index}") for index in range(100))))
    harness.step(at(2, put("k0", {"n": 2})))
    assert list(harness.participant.segments["m"].history) == ["k0"]
    assert harness.participant.versions.stats.kept == 1


def test_a_transaction_committed_at_a_version_is_invisible_below_it() -> None:
    harness = Harness()
    harness.step(at(1, put("a", {"n": 1})))
    harness.step(prepare(b"t1", put("a", {"n": 2}), put("b", {"n": 2})))
    harness.step(Commit(b"t1", 7))
    participant = harness.participant
    assert (value_at(participant, "a", 6), value_at(participant, "b", 6)) == ({"n": 1}, None)
    assert (value_at(participant, "a", 7), value_at(participant, "b", 7)) == ({"n": 2}, {"n": 2})


def test_items_at_a_version_include_keys_deleted_since_and_exclude_keys_created_since() -> None:
    harness = Harness()
    harness.step(at(1, put("a", {"n": 1}), put("b", {"n": 1})))
    harness.step(at(2, delete("a"), put("b", {"n": 2}), put("c", {"n": 2})))
    items = dict(harness.participant.items_at("m", 1))
    assert {key: orjson.loads(value_of(entry)) for key, entry in items.items()} == {
        "a": {"n": 1},
        "b": {"n": 1},
    }
    assert sorted(dict(harness.participant.items_at("m", 2))) == ["b", "c"]


def test_a_key_overwritten_100000_times_keeps_only_the_window() -> None:
    participant = Participant(0)
    window = 50
    largest = 0
    for version in range(1, 100_001):
        participant.handle(at(version, put("hot", {"n": version}), horizon=version - window))
        largest = max(largest, len(participant.segments["m"].history.get("hot", ())))
    assert largest <= window
    assert participant.versions.stats.kept <= window
    assert participant.versions.stats.dropped_by_age >= 100_000 - window - 1
    assert value_at(participant, "hot", 100_000 - window + 1) == {"n": 100_000 - window + 1}
    with pytest.raises(ReadVersionTooOld, match="read version too old"):
        participant.read_at("m", "hot", 100_000 - window - 10)


def test_versions_are_dropped_once_the_horizon_passes_even_without_commits() -> None:
    participant = Participant(0)
    for version in range(1, 11):
        participant.handle(at(version, put("k", {"n": version})))
    assert participant.versions.stats.kept == 9
    participant.handle(ForgetVersions(horizon=10))
    assert participant.versions.stats.kept == 0
    assert participant.segments["m"].history == {}
    assert value_at(participant, "k", 10) == {"n": 10}


def test_the_byte_budget_drops_the_oldest_versions_and_refuses_reads_below_them() -> None:
    participant = Participant(0, versions_bytes_max=2_000)
    for version in range(1, 201):
        participant.handle(at(version, put(f"k{version % 3}", {"pad": "x" * 40})))
    stats = participant.versions.stats
    assert stats.kept_bytes <= 2_000
    assert stats.dropped_by_budget > 0
    floor = participant.versions.floor
    assert value_at(participant, "k0", floor) is not None
    with pytest.raises(ReadVersionTooOld):
        participant.read_at("m", "k0", floor - 1)
    # A key whose latest entry is older than the read needs no history at all.
    participant.handle(at(201, put("still", {"n": 1})))
    assert value_at(participant, "still", 201) == {"n": 1}


def test_a_window_of_zero_keeps_nothing() -> None:
    participant = Participant(0, versions_bytes_max=0)
    participant.handle(at(1, put("k", {"n": 1})))
    participant.handle(at(2, put("k", {"n": 2})))
    assert participant.segments["m"].history == {}
    with pytest.raises(ReadVersionTooOld):
        participant.read_at("m", "k", 1)
    assert value_at(participant, "k", 2) == {"n": 2}


def test_recovery_installs_the_logged_versions_and_keeps_no_history() -> None:
    harness = Harness()
    harness.step(at(10, put("k", {"n": 1})))
    harness.step(at(20, put("k", {"n": 2})))
    harness.step(prepare(b"t1", put("k", {"n": 3})))
    harness.step(Commit(b"t1", 30))
    recovered = harness.replayed()
    assert recovered.version == 30
    entry = recovered.get("m", "k")
    assert entry is not None and version_of(entry) == 30
    assert recovered.segments["m"].history == {}
    with pytest.raises(ReadVersionTooOld):
        recovered.read_at("m", "k", 25)
