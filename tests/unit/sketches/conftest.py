"""Shared data for the sketch tests: fixed-seed streams built once per session."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def million_distinct() -> list[str]:
    """One million distinct strings."""
    return [f"user-{index}" for index in range(1_000_000)]


@pytest.fixture(scope="session")
def zipf_stream() -> list[int]:
    """200,000 draws from a Zipf law (exponent 1.3) with a fixed seed."""
    return np.random.default_rng(20240611).zipf(1.3, size=200_000).tolist()
