"""How big a benchmark run is: `tiny` (the smoke test in `make test`), `quick`, `full`.

Each suite picks its data sizes and run times with `pick`, so the three scales run the
same code and the smoke test exercises every path `make bench` takes.
"""

from __future__ import annotations

from typing import TypeVar

SCALES = ("tiny", "quick", "full")
Value = TypeVar("Value")


def pick(scale: str, *, tiny: Value, quick: Value, full: Value) -> Value:
    """The value of `scale`; raises ValueError for an unknown scale."""
    if scale == "tiny":
        return tiny
    if scale == "quick":
        return quick
    if scale == "full":
        return full
    raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
