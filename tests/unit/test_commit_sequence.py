"""The commit sequence: numbers in order, visible once applied, and the read horizon."""

from __future__ import annotations

import pytest

from coordinator.clock import ManualClock
from coordinator.transactions.sequence import CommitSequence


def test_numbers_follow_the_start_and_become_visible_when_the_commit_ends() -> None:
    sequence = CommitSequence(41, ManualClock(), window_ms=5000)
    assert sequence.read_version() == 41
    with sequence.commit() as version:
        assert version == 42
        assert sequence.read_version() == 41, "visible only once applied everywhere"
    assert sequence.read_version() == 42


def test_a_failed_commit_leaves_a_gap_and_the_sequence_goes_on() -> None:
    sequence = CommitSequence(1, ManualClock())
    with pytest.raises(RuntimeError), sequence.commit():
        raise RuntimeError("conflict")
    with sequence.commit() as version:
        assert version == 3


def test_the_horizon_is_what_was_visible_a_window_ago() -> None:
    clock = ManualClock()
    sequence = CommitSequence(1, clock, window_ms=1000)
    for _ in range(10):
        with sequence.commit():
            pass
        clock.advance_ms(200)
    # Now = 2000 ms after the start; version v became visible at (v - 2) * 200 ms.
    horizon = sequence.horizon()
    assert 6 <= horizon <= 7, horizon
    clock.advance_ms(5000)
    # Idle: what is visible now becomes the horizon once a window has passed.
    sequence.horizon()
    clock.advance_ms(1000)
    assert sequence.horizon() == 11


def test_a_zero_window_keeps_nothing_old() -> None:
    sequence = CommitSequence(1, ManualClock(), window_ms=0)
    with sequence.commit():
        pass
    assert sequence.horizon() == sequence.read_version() == 2


def test_read_versions_are_never_zero() -> None:
    # 0 means "no read version" on the wire: an empty grid still has one to give.
    assert CommitSequence(0, ManualClock()).read_version() == 1
