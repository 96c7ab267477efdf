"""Shoal on a shared Hazelcast or Ignite next to that store's own Python client (suites
`shared_hazelcast` and `shared_ignite`): the `shared` suite's per-backend rows for the JVM stores.

One coordinator started with `--backend hazelcast://…` (or `ignite://…`) on a fresh namespace,
next to the same operation done directly with hazelcast-python-client (IMap get, get_all of
1,000 keys, set; a 2-key transfer in its own TWO_PHASE TransactionContext, the keys locked by
get_for_update) or pyignite (get, get_all, put on a TRANSACTIONAL cache; the transfer as get_all
and put_all in a PESSIMISTIC REPEATABLE_READ transaction). Values are JSON on both sides, as in
the Redis rows. Each pair is measured the same way and as often on both sides, the sides taking
turns (`shared.best_rates`, `txn.measure_sides`).

The member: the one SHOAL_TEST_HAZELCAST / SHOAL_TEST_IGNITE names, else the one answering on
HAZELCAST_PORT / IGNITE_PORT (defaults 5701 / 10800), else one started with
deploy/local/hazelcast.sh / ignite.sh and stopped at the suite's end. When none can be started
(no Java, no Maven, a port taken) the suite prints why and adds no rows.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from loadtests.bench import txn
from loadtests.bench.report import Report, Row
from loadtests.bench.scale import pick
from loadtests.bench.shared import DOCUMENT, Case, kv_case_rows, start_coordinators
from shoal import Client
from tests.support import external_servers
from tests.support.external_servers import ExternalServerError

SUITE_HAZELCAST = "shared_hazelcast"
SUITE_IGNITE = "shared_ignite"
# A transfer's own transaction timeout on the native side (a lock wait past it is an error).
TX_TIMEOUT_S = 10


class NativeStore(Protocol):
    """The store's own client doing what the coordinator does, on a map of its own."""

    def get(self, key: str) -> Any: ...
    def get_many(self, keys: list[str]) -> list[Any]: ...
    def put(self, key: str, value: Any) -> None: ...
    def load(self, values: dict[str, Any]) -> None: ...
    def transfer(self, keys: list[str]) -> None: ...
    def close(self) -> None: ...


def move(values: list[Any]) -> list[Any] | None:
    """The transfer's check and change (the first half pays the second half); None when a
    source lacks the amount, as in txn.shoal_transfers."""
    half = len(values) // 2
    if any(value["balance"] < txn.AMOUNT for value in values[:half]):
        return None
    for position in range(half):
        values[position] = {"balance": values[position]["balance"] - txn.AMOUNT}
        values[position + half] = {"balance": values[position + half]["balance"] + txn.AMOUNT}
    return values


class HazelcastNative:
    """hazelcast-python-client on an IMap of its own: one client shared by every thread (it is
    thread-safe; a transaction is bound to the thread that began it)."""

    def __init__(self, address: str, map_name: str) -> None:
        from hazelcast.client import HazelcastClient
        from hazelcast.transaction import TWO_PHASE

        self._two_phase = TWO_PHASE
        self._client = HazelcastClient(
            cluster_members=[address], cluster_name=external_servers.HAZELCAST_CLUSTER_NAME
        )
        self._map_name = map_name
        self._map: Any = self._client.get_map(map_name).blocking()

    def get(self, key: str) -> Any:
        return json.loads(self._map.get(key))

    def get_many(self, keys: list[str]) -> list[Any]:
        return [json.loads(raw) for raw in self._map.get_all(keys).values()]

    def put(self, key: str, value: Any) -> None:
        # set, not put: put answers the old value, which the coordinator's put does not read.
        self._map.set(key, json.dumps(value))

    def load(self, values: dict[str, Any]) -> None:
        self._map.put_all({key: json.dumps(value) for key, value in values.items()})

    def transfer(self, keys: list[str]) -> None:
        with self._client.new_transaction(timeout=TX_TIMEOUT_S, type=self._two_phase) as tx:
            accounts = tx.get_map(self._map_name)
            values = move([json.loads(accounts.get_for_update(key)) for key in keys])
            if values is not None:
                for key, value in zip(keys, values, strict=True):
                    accounts.set(key, json.dumps(value))

    def close(self) -> None:
        self._map.destroy()
        self._client.shutdown()


class IgniteNative:
    """pyignite on a cache of its own, named `shoal…` so ignite.sh makes it TRANSACTIONAL like
    the backend's caches; one Client per thread (pyignite's is not thread-safe)."""

    def __init__(self, address: str, cache_name: str) -> None:
        host, _, port = address.rpartition(":")
        self._node = (host, int(port))
        self._cache_name = cache_name
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()

    def _mine(self) -> tuple[Any, Any]:
        if not hasattr(self._local, "cache"):
            from pyignite import Client as IgniteClient

            client = IgniteClient(timeout=30)
            client.connect([self._node])
            with self._lock:
                self._clients.append(client)
            self._local.client = client
            self._local.cache = client.get_or_create_cache(self._cache_name)
        return self._local.client, self._local.cache

    def get(self, key: str) -> Any:
        return json.loads(self._mine()[1].get(key))

    def get_many(self, keys: list[str]) -> list[Any]:
        return [json.loads(raw) for raw in self._mine()[1].get_all(keys).values()]

    def put(self, key: str, value: Any) -> None:
        self._mine()[1].put(key, json.dumps(value))

    def load(self, values: dict[str, Any]) -> None:
        self._mine()[1].put_all({key: json.dumps(value) for key, value in values.items()})

    def transfer(self, keys: list[str]) -> None:
        from pyignite.datatypes import TransactionConcurrency, TransactionIsolation

        client, cache = self._mine()
        with client.tx_start(
            concurrency=TransactionConcurrency.PESSIMISTIC,
            isolation=TransactionIsolation.REPEATABLE_READ,
            timeout=TX_TIMEOUT_S * 1000,
        ) as tx:
            # get_all locks every key in one round trip (pessimistic), put_all writes them.
            read = cache.get_all(keys)
            values = move([json.loads(read[key]) for key in keys])
            if values is not None:
                cache.put_all(
                    {key: json.dumps(value) for key, value in zip(keys, values, strict=True)}
                )
            tx.commit()

    def close(self) -> None:
        self._mine()[1].destroy()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


def native_transfers(
    store: NativeStore, groups: list[list[str]], seconds: float
) -> tuple[float, txn.Counter]:
    """The transfers of txn.shoal_transfers from as many threads, done by the store's client;
    a transaction the store refused (a lock wait past its timeout) is counted and retried."""

    def work(rng: random.Random, counter: txn.Counter) -> None:
        keys = rng.choice(groups)
        aborts = 0
        started = time.perf_counter()
        while True:
            try:
                store.transfer(keys)
                break
            except Exception:
                aborts += 1
                if aborts > 8:
                    raise
                time.sleep(rng.uniform(0, 0.002 * aborts))
        counter.add(time.perf_counter() - started, aborts)

    return txn.drive(work, seconds)


def kv_cases(client: Client, store: NativeStore, name: str) -> list[Case]:
    keys = [f"k{index}" for index in range(1000)]
    client.create_map("kv", if_not_exists=True)
    client.put_many("kv", {key: DOCUMENT for key in keys})
    store.load({key: DOCUMENT for key in keys})
    getter, many, putter = {
        "hazelcast": ("IMap.get + json", "IMap.get_all + json", "IMap.set json"),
        "ignite": ("cache.get + json", "cache.get_all + json", "cache.put json"),
    }[name]
    return [
        (
            "get",
            getter,
            lambda i: client.get("kv", keys[i % 1000]),
            lambda i: store.get(keys[i % 1000]),
            1,
            0.5,
        ),
        (
            "get-many 1,000 keys",
            many,
            lambda i: client.get_many("kv", keys),
            lambda i: store.get_many(keys),
            1000,
            0.8,
        ),
        (
            "put",
            putter,
            lambda i: client.put("kv", keys[i % 1000], DOCUMENT),
            lambda i: store.put(keys[i % 1000], DOCUMENT),
            1,
            None,
        ),
    ]


def transfer_row(
    report: Report,
    suite: str,
    name: str,
    baseline_name: str,
    target: str,
    store: NativeStore,
    seconds: float,
    runs: int,
    group_count: int,
) -> None:
    groups = txn.account_groups(group_count, 2)
    accounts = {key: {"balance": 1_000_000} for group in groups for key in group}
    with Client(target) as client:
        client.create_map("accounts", if_not_exists=True)
        client.put_many("accounts", accounts)
    store.load(accounts)
    results = txn.measure_sides(
        {
            "shoal": [lambda: txn.shoal_transfers(target, groups, seconds)],
            name: [lambda: native_transfers(store, groups, seconds)],
        },
        runs,
    )
    ours_rate, ours = results["shoal"]
    theirs_rate, theirs = results[name]
    report.add(
        Row(
            suite,
            f"{name} backend: 2-partition transfer, {txn.CLIENTS} clients",
            ours_rate,
            "txn/s",
            baseline_name,
            theirs_rate,
            0.5,
            note=(
                f"best of {runs} run(s) a side, taking turns; retries: shoal {ours.aborts}, "
                f"{name} {theirs.aborts}"
            ),
        )
    )


@contextmanager
def member(
    suite: str,
    ensure: Callable[[], str],
    running: Callable[[], bool],
    stop: Callable[[], None],
    variable: str,
) -> Iterator[str | None]:
    """The member's address, or None (the reason printed) when none could be started; one
    started here is stopped at the end, one found running is left as it was."""
    started_here = not os.environ.get(variable) and not running()
    address: str | None = None
    try:
        address = ensure()
    except ExternalServerError as error:
        started_here = False
        reason = " ".join(str(error).split())[-600:]
        print(f"  {suite}: skipped, no member could be started: {reason}", flush=True)
    try:
        yield address
    finally:
        if started_here:
            stop()


def run(
    report: Report,
    suite: str,
    name: str,
    url: str,
    store: NativeStore,
    transfer_baseline: str,
    work_dir: Path,
    scale: str,
) -> None:
    seconds = pick(scale, tiny=0.3, quick=2.0, full=4.0)
    runs = pick(scale, tiny=1, quick=2, full=3)
    group_count = pick(scale, tiny=20, quick=300, full=500)
    try:
        (server,) = start_coordinators(work_dir, url, 1)
        try:
            # A get-many reads its 1,000 keys one store call each on these stores: on a loaded
            # machine one passed the SDK's 10 s deadline, which cost the suite all its rows.
            with Client(server.target, timeout_s=60) as client:
                kv_case_rows(report, suite, name, kv_cases(client, store, name), seconds, runs)
            transfer_row(
                report,
                suite,
                name,
                transfer_baseline,
                server.target,
                store,
                seconds,
                runs,
                group_count,
            )
        finally:
            server.stop()
            _drop(url)
    finally:
        store.close()


def _drop(url: str) -> None:
    from tests.support.shared_store import drop_namespace

    base, _, namespace = url.rpartition("/")
    drop_namespace(base, namespace)


def hazelcast_main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    with member(
        SUITE_HAZELCAST,
        external_servers.ensure_hazelcast,
        external_servers.hazelcast_running,
        external_servers.stop_hazelcast,
        external_servers.HAZELCAST_ENV,
    ) as address:
        if address is None:
            return
        tag = uuid.uuid4().hex[:10]
        url = f"hazelcast://{address}/{external_servers.HAZELCAST_CLUSTER_NAME}/bench{tag}"
        store = HazelcastNative(address, f"bench-native-{tag}")
        run(
            report,
            SUITE_HAZELCAST,
            "hazelcast",
            url,
            store,
            "hazelcast TransactionContext TWO_PHASE",
            work_dir,
            scale,
        )


def ignite_main(report: Report, redis_port: int, work_dir: Path, scale: str) -> None:
    with member(
        SUITE_IGNITE,
        external_servers.ensure_ignite,
        external_servers.ignite_running,
        external_servers.stop_ignite,
        external_servers.IGNITE_ENV,
    ) as address:
        if address is None:
            return
        tag = uuid.uuid4().hex[:10]
        store = IgniteNative(address, f"shoal-bench-native-{tag}")
        run(
            report,
            SUITE_IGNITE,
            "ignite",
            f"ignite://{address}/bench{tag}",
            store,
            "ignite PESSIMISTIC REPEATABLE_READ tx",
            work_dir,
            scale,
        )
