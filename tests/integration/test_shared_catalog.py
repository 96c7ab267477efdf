"""A catalog change acknowledged by one coordinator holds at once on every other (read your
writes across coordinators): a map created through A is written and read through B with no
wait, a write through B that only A's new schema refuses is refused, and a map dropped through
A is refused by B. Each round runs with no pause between the change and the call, on Redis,
Hazelcast and Ignite (two real coordinators each).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import Client, InvalidArgumentError, NotFoundError
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME
from tests.support.shared_store import coordinators

pytestmark = pytest.mark.integration

ROUNDS = 15


@pytest.fixture(
    scope="module",
    params=[
        "redis",
        pytest.param("hazelcast", marks=pytest.mark.hazelcast),
        pytest.param("ignite", marks=pytest.mark.ignite),
    ],
)
def two_clients(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Client, Client]]:
    """Two clients, each on its own coordinator of one fresh namespace."""
    if request.param == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        url = f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
    elif request.param == "ignite":
        url = "ignite://" + request.getfixturevalue("ignite_address")
    else:
        url = request.getfixturevalue("redis_url")
    tmp_path: Path = tmp_path_factory.mktemp(f"catalog-{request.param}")
    with coordinators(tmp_path, url, 2) as servers:
        first, second = (Client(server.target) for server in servers)
        yield first, second
        first.close()
        second.close()


def test_a_map_created_through_one_coordinator_is_written_and_read_through_another_at_once(
    two_clients: tuple[Client, Client],
) -> None:
    first, second = two_clients
    for round_number in range(ROUNDS):
        name = f"fresh{round_number}"
        first.create_map(name, schema={"total": "int"})
        assert name in {info.name for info in second.list_maps()}
        second.put(name, "k", {"total": round_number})
        assert first.get(name, "k") == {"total": round_number}
        other = f"read{round_number}"
        first.create_map(other)
        assert second.get(other, "absent") is None


def test_a_schema_changed_through_one_coordinator_holds_at_once_through_another(
    two_clients: tuple[Client, Client],
) -> None:
    first, second = two_clients
    for round_number in range(ROUNDS):
        name = f"altered{round_number}"
        first.create_map(name, schema={"total": "int"})
        # An empty map takes any schema: narrowed, a value the old schema took is refused.
        first.alter_schema(name, {"total": {"type": "int", "max": 10}})
        assert second.describe_map(name).schema_version == 2
        with pytest.raises(InvalidArgumentError, match="total"):
            second.put(name, "k", {"total": 50})
        assert second.get(name, "k") is None
        # Widened: SQL sees the new column, and a value only the new schema takes is taken.
        first.alter_schema(name, {"total": {"type": "int", "max": 10}, "note": "string"})
        assert second.sql(f"SELECT count(note) AS n FROM {name}").fetchall() == [(0,)]
        second.put(name, "k", {"total": 5, "note": "new"})
        assert first.get(name, "k") == {"total": 5, "note": "new"}


def test_a_map_dropped_through_one_coordinator_is_refused_at_once_by_another(
    two_clients: tuple[Client, Client],
) -> None:
    first, second = two_clients
    for round_number in range(ROUNDS):
        name = f"dropped{round_number}"
        first.create_map(name)
        second.put(name, "k", {"n": 1})
        first.drop_map(name)
        with pytest.raises(NotFoundError):
            second.put(name, "k", {"n": 2})
