"""The dedup window: segments of event keys, at least `capacity` of the latest kept."""

from __future__ import annotations

import pytest

from coordinator.pipelines.dedup import DedupWindow


def test_keys_of_every_segment_are_in_the_window():
    window = DedupWindow(capacity=10)
    window.add_segment(0, ["a", "b"])
    window.add_segment(2, ["c"])
    assert "a" in window and "c" in window and "z" not in window
    assert len(window) == 3
    assert window.segment_ids == [0, 2]


def test_old_segments_expire_only_while_the_rest_covers_the_capacity():
    window = DedupWindow(capacity=4)
    window.add_segment(0, ["a", "b"])
    window.add_segment(2, ["c", "d"])
    # Two incoming keys plus segment 2 still cover four: segment 0 may go.
    assert window.expired(incoming=2) == [0]
    # One incoming key plus segment 2 cover three only: nothing may go.
    assert window.expired(incoming=1) == []
    window.drop([0])
    assert "a" not in window and "c" in window
    assert len(window) == 2


def test_a_key_repeated_in_two_segments_stays_until_both_are_dropped():
    window = DedupWindow(capacity=1)
    window.add_segment(0, ["a"])
    window.add_segment(1, ["a", "b"])
    window.drop([0])
    assert "a" in window
    window.drop([1])
    assert "a" not in window and len(window) == 0


def test_the_window_remembers_at_least_capacity_events():
    window = DedupWindow(capacity=100)
    seen: list[str] = []
    for segment in range(50):
        keys = [f"k{segment}-{index}" for index in range(7)]
        window.drop(window.expired(incoming=len(keys)))
        window.add_segment(segment * 7, keys)
        seen.extend(keys)
        assert all(key in window for key in seen[-100:])
        assert len(window) < 100 + 7 * 2


def test_segments_must_be_added_in_offset_order():
    window = DedupWindow(capacity=5)
    window.add_segment(10, ["a"])
    with pytest.raises(ValueError, match="not newer"):
        window.add_segment(10, ["b"])
    with pytest.raises(ValueError, match="at least one"):
        DedupWindow(capacity=0)
