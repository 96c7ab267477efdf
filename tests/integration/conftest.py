"""Fixtures of the integration tier: SDK clients connected to the session's server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoal import Client


@pytest.fixture
def client(shoal_server: str) -> Iterator[Client]:
    """A synchronous client of the shared server, closed after the test."""
    with Client(shoal_server) as connected:
        yield connected
