"""Write answers are true and survive a retry: a delete's "existed" under concurrent
writers, and every write's answer when its reply is cut and the SDK retries."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from shoal import Client, FailedPreconditionError, Versioned
from tests.support.cutting_proxy import CuttingProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(shoal_server: str) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy(int(shoal_server.rsplit(":", 1)[1])).start()
    yield cutting
    cutting.stop()


@pytest.fixture
def cut_client(proxy: CuttingProxy, map_name: str) -> Iterator[Client]:
    """A client whose connection goes through the proxy (opened before any cut)."""
    with Client(proxy.target) as connected:
        connected.list_maps()
        yield connected


def test_delete_answers_from_its_commit_under_concurrent_writers(
    shoal_server: str, map_name: str
) -> None:
    # Creators put the key only if it is absent; deleters delete it. Each create moves it
    # from absent to present and each delete that answers "existed" from present to
    # absent, so the two counts match exactly when every answer is the commit's own.
    # An answer read beside the commit lets two deleters both claim one create.
    setup = Client(shoal_server)
    setup.create_map(map_name)
    rounds = 150
    created: list[int] = []
    removed: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def create() -> None:
        count = 0
        with Client(shoal_server) as client:
            start.wait()
            for _ in range(rounds):
                try:
                    client.put(map_name, "key", {"n": 1}, if_absent=True)
                    count += 1
                except FailedPreconditionError:
                    pass
                except BaseException as error:
                    errors.append(error)
        created.append(count)

    def delete() -> None:
        count = 0
        with Client(shoal_server) as client:
            start.wait()
            for _ in range(rounds):
                try:
                    count += client.delete(map_name, "key")
                except BaseException as error:
                    errors.append(error)
        removed.append(count)

    threads = [threading.Thread(target=target) for target in (create, create, delete, delete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    final = setup.delete(map_name, "key")
    assert sum(created) > 10, "the creators must have created the key repeatedly"
    assert sum(removed) + final == sum(created)
    setup.close()


def test_a_retried_delete_answers_that_the_first_attempt_removed_the_key(
    client: Client, cut_client: Client, proxy: CuttingProxy, map_name: str
) -> None:
    client.create_map(map_name)
    client.put(map_name, "k", {"v": 1})
    proxy.arm()
    assert cut_client.delete(map_name, "k") is True
    assert proxy.cuts == 1, "the reply of the first attempt must have been cut"
    assert client.get(map_name, "k") is None
    proxy.arm()
    assert cut_client.delete(map_name, "k") is False
    assert proxy.cuts == 2


def test_a_retried_conditional_delete_and_put_answer_the_first_attempt(
    client: Client, cut_client: Client, proxy: CuttingProxy, map_name: str
) -> None:
    client.create_map(map_name)
    version = client.put(map_name, "k", {"v": 1})
    proxy.arm()
    assert cut_client.delete(map_name, "k", if_version=version) is True
    assert proxy.cuts == 1
    proxy.arm()
    created = cut_client.put(map_name, "k", {"v": 2}, if_absent=True)
    assert proxy.cuts == 2
    assert client.get_versioned(map_name, "k") == Versioned({"v": 2}, created)


def test_retried_writes_with_references_answer_their_versions(
    client: Client, cut_client: Client, proxy: CuttingProxy, map_name: str
) -> None:
    # A value with references also writes to the referenced keys' partitions: the write
    # commits in three phases, and a retry must still learn the first answer.
    customers, orders = f"{map_name}_customers", f"{map_name}_orders"
    client.create_map(customers)
    client.create_map(orders, schema={"customer": {"type": "string", "ref": customers}})
    client.put_many(customers, {f"c{number}": {"n": number} for number in range(8)})
    proxy.arm()
    version = cut_client.put(orders, "o1", {"customer": "c3"})
    assert proxy.cuts == 1
    assert client.get_versioned(orders, "o1") == Versioned({"customer": "c3"}, version)
    proxy.arm()
    batch = {f"o{number}": {"customer": f"c{number}"} for number in range(2, 8)}
    versions = cut_client.put_many(orders, batch)
    assert proxy.cuts == 2
    stored = [client.get_versioned(orders, key) for key in batch]
    assert versions == [found.version for found in stored if found is not None]
    proxy.arm()
    assert cut_client.delete(orders, "o1") is True
    assert proxy.cuts == 3


def test_a_retried_transaction_over_partitions_answers_its_versions(
    client: Client, cut_client: Client, proxy: CuttingProxy, map_name: str
) -> None:
    client.create_map(map_name, schema={"n": {"type": "int"}})
    client.put_many(map_name, {"a-1": {"n": 1}, "b-7": {"n": 1}, "c-3": {"n": 1}})
    tx = cut_client.transaction()
    tx.increment(map_name, "a-1", "n", 5)
    tx.put(map_name, "b-7", {"n": 9})
    tx.delete(map_name, "c-3")
    proxy.arm()
    result = tx.commit()
    assert proxy.cuts == 1
    assert result.replayed
    a, b = client.get_versioned(map_name, "a-1"), client.get_versioned(map_name, "b-7")
    assert a is not None and b is not None
    assert a.value == {"n": 6}
    assert result.versions == (a.version, b.version, 0)
