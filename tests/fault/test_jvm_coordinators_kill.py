"""kill -9 of coordinators sharing one Hazelcast cluster or one Ignite cluster: the same checks
as test_shared_coordinators_kill.py (which runs them on Redis), through the same test bodies.

The bank through three coordinators with one killed every few seconds conserves its total and
keeps every acknowledged transfer; a coordinator killed at a point of the commit protocol has
its transaction ended by another's recovery sweeper within one lease, by the store's clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fault import test_shared_coordinators_kill as shared
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME

# Restarting coordinators on a busy machine is slow (each one connects to the JVM store):
# about 2 minutes on Hazelcast and 4 on Ignite for this file.
pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(
    params=[
        pytest.param("hazelcast", marks=pytest.mark.hazelcast),
        pytest.param("ignite", marks=pytest.mark.ignite),
    ]
)
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        return f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
    return "ignite://" + request.getfixturevalue("ignite_address")


def test_bank_through_three_coordinators_with_one_killed_every_few_seconds(
    tmp_path: Path, store_url: str
) -> None:
    shared.test_bank_through_three_coordinators_with_one_killed_every_few_seconds(
        tmp_path, store_url
    )


def test_a_coordinator_killed_after_pre_commit_has_its_transaction_committed_by_another(
    tmp_path: Path, store_url: str
) -> None:
    """The fault point where recovery must commit, not abort (the others, pending and partly
    committed, run on Redis; all three passed here too when this was written)."""
    shared.killed_mid_commit(tmp_path, store_url, "after_status_pre_committed")
