"""Coordinators started together race for the metrics port: the loser serves without metrics."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from coordinator.config import ConfigError
from coordinator.metrics import Registry
from coordinator.server import metrics_endpoint_on


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process holds, as a coordinator that bound it first would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_default_port_taken_after_the_probe_is_skipped_with_a_warning(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    # README's shared-backend example starts two coordinators at once: both probe 9464 free,
    # one binds it, and the other used to exit on a bare "[Errno 98] Address already in use".
    with caplog.at_level(logging.WARNING, logger="coordinator.server"):
        endpoint = metrics_endpoint_on(
            "127.0.0.1", taken_port, Registry(), ssl_context=None, optional=True
        )
    assert endpoint is None
    assert f"metrics not served: 127.0.0.1:{taken_port}" in caplog.text
    assert "--metrics-port" in caplog.text


def test_chosen_port_taken_after_the_probe_is_one_line_naming_it(taken_port: int) -> None:
    with pytest.raises(ConfigError) as refused:
        metrics_endpoint_on("127.0.0.1", taken_port, Registry(), ssl_context=None, optional=False)
    assert str(refused.value) == (
        f"cannot serve metrics on 127.0.0.1:{taken_port}: port {taken_port} is already in use "
        "(is another shoal serve running?)"
    )


def test_free_port_serves() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    endpoint = metrics_endpoint_on("127.0.0.1", free, Registry(), ssl_context=None, optional=True)
    assert endpoint is not None
    endpoint.start()
    try:
        assert endpoint.port == free
    finally:
        endpoint.stop()
