"""A Hazelcast cluster that cannot be reached at start is one clear error, not a client crash."""

from __future__ import annotations

import socket

import pytest

from grid.errors import Unavailable
from grid.hazelcast.backend import connect

pytestmark = [pytest.mark.integration]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_member_answering_is_unavailable_naming_the_members_and_the_cluster() -> None:
    # `shoal serve --backend hazelcast://127.0.0.1:<nothing>/dev` used to end in the client's
    # own traceback ("IllegalStateError: Unable to connect to any cluster") and exit status 1.
    port = closed_port()
    with pytest.raises(Unavailable) as refused:
        connect(f"hazelcast://127.0.0.1:{port}/shoal-nowhere", connect_timeout_s=1)
    message = str(refused.value)
    assert message.startswith(
        f"the Hazelcast cluster 'shoal-nowhere' cannot be reached at 127.0.0.1:{port} within 1 s"
    )
    assert refused.value.status == "UNAVAILABLE"
