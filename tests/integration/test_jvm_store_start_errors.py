"""A Hazelcast or Ignite cluster that cannot be reached, or a Hazelcast one without Shoal's jar,
is one clear error at start, not a client's traceback."""

from __future__ import annotations

import gc
import socket

import pytest
from hazelcast.errors import HazelcastSerializationError

from grid.errors import Unavailable
from grid.hazelcast.backend import connect, missing_jar
from grid.ignite.backend import connect as connect_ignite

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


def test_a_member_without_shoals_jar_is_named_with_what_to_do() -> None:
    # What a bare member answers Shoal's first processor (seen on a 5.7.0 member started without
    # the jar: `shoal serve` used to print the member's Java stack and exit 1).
    answered = HazelcastSerializationError(
        "Exception from server: com.hazelcast.nio.serialization.HazelcastSerializationException:"
        " No DataSerializerFactory registered for namespace: 7001"
    )
    refused = missing_jar(answered, "hazelcast://127.0.0.1:5811,127.0.0.1:5812/vanilla")
    assert refused is not None
    assert refused.status == "FAILED_PRECONDITION"
    message = str(refused)
    assert message.startswith(
        "the Hazelcast cluster 'vanilla' at 127.0.0.1:5811,127.0.0.1:5812 runs without Shoal's jar"
    )
    assert "shoal-hazelcast-*.jar" in message and "factory 7001" in message
    other = HazelcastSerializationError("Exception from server: unknown class id 99")
    assert missing_jar(other, "hazelcast://127.0.0.1:5811/vanilla") is None


# pyignite leaves the socket of a refused handshake unclosed (its close shuts the unconnected
# socket down first, which raises, and skips the close): its warning, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_ignite_node_answering_is_unavailable_naming_the_nodes() -> None:
    # Was "the Ignite cluster did not answer load_versioned: Can not connect.", naming neither.
    port = closed_port()
    with pytest.raises(Unavailable) as refused:
        connect_ignite(f"ignite://127.0.0.1:{port}", timeout_s=2)
    assert str(refused.value).startswith(
        f"the Ignite cluster cannot be reached at 127.0.0.1:{port} (Can not connect."
    )
    del refused
    gc.collect()  # the leaked socket's warning lands in this test, not a later one
