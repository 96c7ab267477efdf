"""Choosing which key a task touches: uniformly, or by a Zipf law (a few hot keys).

Under ``zipf`` the key of rank k (k = 1..n) is chosen with probability proportional to
1/k^s, so with s around 1 a handful of keys take most of the traffic, as in real
workloads, and transactions on them conflict. Rank 1 is index 0.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random

from loadtests.locust.settings import LoadSettings


@functools.lru_cache(maxsize=16)
def _zipf_cumulative(count: int, exponent: float) -> tuple[float, ...]:
    """Cumulative weights of ranks 1..count; built once per process and shape."""
    return tuple(itertools.accumulate(1.0 / rank**exponent for rank in range(1, count + 1)))


class KeyChooser:
    """Draws indexes in ``range(count)`` with the configured distribution."""

    def __init__(self, count: int, distribution: str, zipf_s: float, rng: random.Random) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.count = count
        self.distribution = distribution
        self._rng = rng
        self._cumulative = _zipf_cumulative(count, zipf_s) if distribution == "zipf" else ()

    @classmethod
    def from_settings(cls, count: int, settings: LoadSettings, rng: random.Random) -> KeyChooser:
        return cls(count, settings.distribution, settings.zipf_s, rng)

    def index(self) -> int:
        if not self._cumulative:
            return self._rng.randrange(self.count)
        point = self._rng.random() * self._cumulative[-1]
        return min(bisect.bisect_right(self._cumulative, point), self.count - 1)

    def distinct(self, how_many: int) -> list[int]:
        """``how_many`` different indexes (all of them when there are fewer)."""
        wanted = min(how_many, self.count)
        chosen: dict[int, None] = {}
        # Under a steep Zipf law repeats are common; past a bound, fill in uniformly.
        for _ in range(wanted * 8):
            chosen[self.index()] = None
            if len(chosen) == wanted:
                return list(chosen)
        while len(chosen) < wanted:
            chosen[self._rng.randrange(self.count)] = None
        return list(chosen)
