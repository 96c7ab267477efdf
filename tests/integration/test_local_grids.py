"""The Hazelcast member and the Ignite node of deploy/local serve their Python clients.

Each test starts the real member through the session fixtures (deploy/local/*.sh), then
round-trips values with the client the shared backends will use: hazelcast-python-client and
pyignite. Beyond a plain put and get they check what the backends depend on: a Hazelcast client
transaction, compare-and-set, and Shoal's entry processor (built into the member by
hazelcast.sh); and a TRANSACTIONAL Ignite cache whose rolled-back writes are not seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hazelcast
import pytest
from pyignite import Client as IgniteClient
from pyignite.datatypes.cache_config import CacheAtomicityMode
from pyignite.datatypes.prop_codes import PROP_CACHE_ATOMICITY_MODE
from pyignite.datatypes.transactions import TransactionConcurrency, TransactionIsolation

from loadtests.bench.steps.hazelcast_steps import ProcessorSteps
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME

pytestmark = [pytest.mark.integration]


@pytest.fixture
def hazelcast_client(hazelcast_address: str) -> Iterator[hazelcast.HazelcastClient]:
    client = hazelcast.HazelcastClient(
        cluster_members=[hazelcast_address],
        cluster_name=HAZELCAST_CLUSTER_NAME,
        cluster_connect_timeout=30.0,
    )
    try:
        yield client
    finally:
        client.shutdown()


@pytest.fixture
def ignite_client(ignite_address: str) -> Iterator[IgniteClient]:
    host, port = ignite_address.rsplit(":", 1)
    client = IgniteClient(timeout=30.0)
    with client.connect(host, int(port)):
        yield client


@pytest.mark.hazelcast
def test_hazelcast_member_round_trips_values(hazelcast_client: hazelcast.HazelcastClient) -> None:
    entries = hazelcast_client.get_map(f"shoal.test.{uuid.uuid4().hex}").blocking()
    try:
        entries.put("k", b"\x00value")
        assert entries.get("k") == b"\x00value"
        # Compare-and-set: what a per-partition step record builds on.
        assert entries.replace_if_same("k", b"\x00value", b"\x01next")
        assert not entries.replace_if_same("k", b"\x00value", b"\x02lost")
        assert entries.get("k") == b"\x01next"
    finally:
        entries.destroy()


@pytest.mark.hazelcast
def test_hazelcast_transaction_commits_all_or_nothing(
    hazelcast_client: hazelcast.HazelcastClient,
) -> None:
    name = f"shoal.test.{uuid.uuid4().hex}"
    entries = hazelcast_client.get_map(name).blocking()
    try:
        transaction = hazelcast_client.new_transaction(timeout=30)
        transaction.begin()
        staged = transaction.get_map(name)
        staged.put("a", 1)
        staged.put("b", 2)
        transaction.rollback()
        assert entries.get("a") is None
        assert entries.get("b") is None

        transaction = hazelcast_client.new_transaction(timeout=30)
        transaction.begin()
        staged = transaction.get_map(name)
        staged.put("a", 1)
        staged.put("b", 2)
        transaction.commit()
        assert entries.get_all(["a", "b"]) == {"a": 1, "b": 2}
    finally:
        entries.destroy()


@pytest.mark.hazelcast
def test_hazelcast_member_runs_shoals_step_processor(
    hazelcast_client: hazelcast.HazelcastClient,
) -> None:
    """hazelcast.sh compiles deploy/local/hazelcast/src into the member's classpath and
    registers its factory: a participant step then runs on the member in one call."""
    steps = ProcessorSteps(hazelcast_client)
    key = f"k-{uuid.uuid4().hex}"
    txn = f"t-{uuid.uuid4().hex}"
    try:
        assert steps.one_phase(0, key, b"first")
        assert steps.prepare(0, key, txn, b"second")
        # The key is locked by txn: another transaction's prepare and a one-phase write refuse.
        assert not steps.prepare(0, key, "someone-else", b"third")
        assert not steps.one_phase(0, key, b"third")
        steps.precommit(0, key, txn)
        steps.commit(0, key, txn)
        record = bytes(steps.records.get(key))
        assert record[:8] == (2).to_bytes(8, "big")
        assert record.endswith(b"second")
        assert steps.one_phase(0, key, b"fourth")

        assert steps.set_status(0, txn, "", "pending")
        assert not steps.set_status(0, txn, "", "pending")
        assert not steps.set_status(0, txn, "pre_committed", "committed")
        assert steps.set_status(0, txn, "pending", "aborted")
    finally:
        steps.records.delete(key)
        steps.statuses.delete(txn)


@pytest.mark.ignite
def test_ignite_node_round_trips_values(ignite_client: IgniteClient) -> None:
    cache = ignite_client.get_or_create_cache(f"shoal.test.{uuid.uuid4().hex}")
    try:
        cache.put("k", b"\x00value")
        assert cache.get("k") == b"\x00value"
        assert cache.replace_if_equals("k", b"\x00value", b"\x01next")
        assert not cache.replace_if_equals("k", b"\x00value", b"\x02lost")
        assert cache.get("k") == b"\x01next"
    finally:
        cache.destroy()


@pytest.mark.ignite
def test_ignite_shoal_caches_are_transactional(ignite_client: IgniteClient) -> None:
    cache = ignite_client.get_or_create_cache(f"shoal.test.{uuid.uuid4().hex}")
    try:
        # ignite.sh's cache template makes every cache named shoal* TRANSACTIONAL.
        assert cache.settings[PROP_CACHE_ATOMICITY_MODE] == CacheAtomicityMode.TRANSACTIONAL
        with ignite_client.tx_start(
            concurrency=TransactionConcurrency.PESSIMISTIC,
            isolation=TransactionIsolation.REPEATABLE_READ,
            timeout=10_000,
        ) as transaction:
            cache.put("a", 1)
            cache.put("b", 2)
            transaction.rollback()
        assert cache.get_all(["a", "b"]) == {}

        with ignite_client.tx_start(
            concurrency=TransactionConcurrency.PESSIMISTIC,
            isolation=TransactionIsolation.REPEATABLE_READ,
            timeout=10_000,
        ) as transaction:
            cache.put("a", 1)
            cache.put("b", 2)
            transaction.commit()
        assert cache.get_all(["a", "b"]) == {"a": 1, "b": 2}
    finally:
        cache.destroy()
