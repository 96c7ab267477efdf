"""Two coordinators on one Hazelcast or one Ignite namespace: the checks of
test_redis_backend.py (which runs them on Redis and Redis Cluster), through the same test bodies.

A lock taken through one coordinator holds against the other, a transaction prepared by one is
finished by the other, status swaps racing between them have one winner, and increments racing
or prepared through both all count. What only a JVM store has (its commit sequence and catalog)
stays in test_hazelcast_backend.py and test_ignite_backend.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from grid.hazelcast import backend as hazelcast
from grid.ignite import backend as ignite
from tests.integration import test_redis_backend as shared
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture(
    params=[
        pytest.param("hazelcast", marks=pytest.mark.hazelcast),
        pytest.param("ignite", marks=pytest.mark.ignite),
    ]
)
def coordinators(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    """Two backends opened on one fresh namespace, as two coordinators would; dropped after."""
    namespace = f"shared-{uuid.uuid4().hex[:12]}"
    if request.param == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        url = f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
        config: Any = hazelcast.HazelcastBackendConfig(url, namespace, PARTITIONS)
        pair: tuple[Any, Any] = (
            hazelcast.HazelcastBackend(config),
            hazelcast.HazelcastBackend(config),
        )
    else:
        url = "ignite://" + request.getfixturevalue("ignite_address")
        config = ignite.IgniteBackendConfig(url, namespace, PARTITIONS)
        pair = (ignite.IgniteBackend(config), ignite.IgniteBackend(config))
    try:
        yield pair
    finally:
        for backend in pair:
            backend.close()
        if request.param == "hazelcast":
            client = hazelcast.connect(url)
            try:
                hazelcast.drop_namespace(client, namespace)
            finally:
                client.shutdown()
        else:
            client = ignite.connect(url)
            try:
                ignite.drop_namespace(client, namespace)
            finally:
                client.close()


def test_a_lock_taken_through_one_coordinator_holds_against_the_other(
    coordinators: tuple[Any, Any],
) -> None:
    shared.test_a_lock_taken_through_one_coordinator_holds_against_the_other(coordinators)


def test_status_swaps_racing_between_coordinators_have_one_winner(
    coordinators: tuple[Any, Any],
) -> None:
    shared.test_status_swaps_racing_between_coordinators_have_one_winner(coordinators)


def test_increments_racing_from_two_coordinators_all_count(coordinators: tuple[Any, Any]) -> None:
    shared.test_increments_racing_from_two_coordinators_all_count(coordinators)


def test_increments_prepared_through_both_coordinators_do_not_conflict(
    coordinators: tuple[Any, Any],
) -> None:
    shared.test_increments_prepared_through_both_coordinators_do_not_conflict(coordinators)
