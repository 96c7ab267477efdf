"""A token bucket: the rate cap of a replay, so it cannot take the broker from production.

Pure: the caller passes the time in and sleeps for as long as `wait_s` says.
"""

from __future__ import annotations


class TokenBucket:
    """At most `rate_per_s` tokens a second on average, in bursts of at most `burst`."""

    def __init__(self, rate_per_s: float, *, burst: float | None = None, now_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError("a token bucket needs a positive rate")
        self.rate_per_s = rate_per_s
        # One second's worth by default: a burst never exceeds the cap over any second.
        self.burst = max(1.0, burst if burst is not None else rate_per_s)
        self._tokens = self.burst
        self._updated_s = now_s

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._updated_s)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
        self._updated_s = now_s

    def wait_s(self, count: float, now_s: float) -> float:
        """How long to wait before `count` tokens are there (0: take them now)."""
        self._refill(now_s)
        wanted = min(count, self.burst)
        if self._tokens >= wanted:
            return 0.0
        return (wanted - self._tokens) / self.rate_per_s

    def take(self, count: float, now_s: float) -> None:
        """Takes `count` tokens; the balance may go below zero for a count over the burst,
        which the next waits then pay back."""
        self._refill(now_s)
        self._tokens -= count
