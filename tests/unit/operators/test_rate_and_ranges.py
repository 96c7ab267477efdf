"""The replay's token bucket and the checks of a range made before Kafka is asked."""

from __future__ import annotations

import pytest

from coordinator.operators.ranges import RangeRequest, check_request
from coordinator.operators.rate import TokenBucket
from grid.errors import InvalidArgument


def test_the_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(100, now_s=0.0)
    assert bucket.wait_s(100, 0.0) == 0.0
    bucket.take(100, 0.0)
    # Empty: 50 tokens come back in half a second.
    assert bucket.wait_s(50, 0.0) == pytest.approx(0.5)
    assert bucket.wait_s(50, 0.5) == 0.0
    bucket.take(50, 0.5)
    # Over any long stretch the average is the rate.
    now, taken = 0.5, 0
    while now < 10.5:
        wait = bucket.wait_s(25, now)
        now += wait
        bucket.take(25, now)
        taken += 25
    assert taken <= 100 * 10 + 100


def test_a_count_over_the_burst_waits_for_a_full_bucket_and_is_paid_back():
    bucket = TokenBucket(10, now_s=0.0)
    bucket.take(10, 0.0)
    assert bucket.wait_s(40, 0.0) == pytest.approx(1.0)
    bucket.take(40, 1.0)
    assert bucket.wait_s(1, 1.0) == pytest.approx(3.1)


def test_a_bucket_needs_a_positive_rate():
    with pytest.raises(ValueError):
        TokenBucket(0, now_s=0.0)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (RangeRequest("t"), "from"),
        (RangeRequest("t", from_ms=1), "to"),
        (RangeRequest("t", to_ms=1), "from"),
        (RangeRequest("t", from_ms=5, to_ms=5), "to"),
        (RangeRequest("t", from_ms=5, to_ms=1), "to"),
        (RangeRequest("t", from_ms=1, to_ms=5, from_offsets={0: 1}), "from"),
        (RangeRequest("t", to_offsets={0: 1}), "from_offsets"),
        (RangeRequest("t", from_offsets={0: -1}), "from_offsets"),
        (RangeRequest("t", from_offsets={0: 1}, to_offsets={1: 4}), "to_offsets"),
        (RangeRequest("t", from_offsets={0: 9}, to_offsets={0: 4}), "to_offsets"),
    ],
)
def test_bad_ranges_are_refused_naming_the_field(request_, field):
    with pytest.raises(InvalidArgument) as raised:
        check_request(request_)
    assert raised.value.field == field


def test_good_ranges_pass():
    check_request(RangeRequest("t", from_ms=1, to_ms=2))
    check_request(RangeRequest("t", from_offsets={0: 0, 1: 5}, to_offsets={1: 5}))


def test_a_backward_or_empty_window_is_refused_naming_its_times():
    start_ms, end_ms = 1_795_564_800_000, 1_795_586_400_000  # 2026-11-25 00:00 and 06:00 UTC
    with pytest.raises(InvalidArgument) as backward:
        check_request(RangeRequest(topic="orders", from_ms=end_ms, to_ms=start_ms))
    assert backward.value.field == "to"
    assert "ends at 2026-11-25T00:00:00.000Z" in str(backward.value)
    assert "before it starts at 2026-11-25T06:00:00.000Z" in str(backward.value)
    with pytest.raises(
        InvalidArgument, match="empty: it starts and ends at 2026-11-25T00"
    ) as empty:
        check_request(RangeRequest(topic="orders", from_ms=start_ms, to_ms=start_ms))
    assert empty.value.field == "to"
    # A time past what a date can hold is still named, in milliseconds.
    with pytest.raises(InvalidArgument, match=f"before it starts at {2**62} ms"):
        check_request(RangeRequest(topic="orders", from_ms=2**62, to_ms=0))
