"""List-append histories through three coordinators on one shared store, one of them killed
(`kill -9`) at random moments and started again, checked the way Elle does.

Clients spread random transactions (reads and appends over a few lists) over the three
coordinators and fail over as the SDK does. After the run every committed transaction and
every transaction whose outcome the client never learned (its coordinator died under it) is
checked against the final lists (tests/support/elle.py): no dependency cycle (G0, G1c,
G2-item, or a read missing a commit acknowledged before its transaction began), every read
a prefix of the final list, no read of an element no committed transaction wrote (an
aborted read), every acknowledged append present exactly once, and an unacknowledged
transaction either whole or absent. `SHOAL_HISTORY_SECONDS` runs it longer
(tests/README.md); `SHOAL_HISTORY_STORES` adds redis-cluster, hazelcast and ignite.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shoal import Client, ConflictError, ShoalError
from tests.fault.test_shared_coordinators_kill import wait_nothing_in_doubt
from tests.support.elle import Observed, check
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME
from tests.support.shared_store import coordinators, wait_for_map

pytestmark = [pytest.mark.fault, pytest.mark.timeout(900)]

SECONDS = float(os.environ.get("SHOAL_HISTORY_SECONDS", "15"))
STORES = os.environ.get("SHOAL_HISTORY_STORES", "redis").split(",")
KEYS = [f"list{index}" for index in range(6)]
CLIENTS = 6
LEASE_MS = 2000
SHORT_LEASES = ["--txn-lease-ms", str(LEASE_MS), "--txn-sweep-interval-ms", "200"]


@dataclass
class History:
    """What the clients saw: per transaction its attempts, and how the last one ended."""

    committed: list[Observed] = field(default_factory=list)
    # Attempts refused with a conflict (definitely aborted), their elements never to be seen.
    aborted: list[Observed] = field(default_factory=list)
    # Attempts whose commit failed otherwise (their coordinator killed): outcome unknown.
    unknown: list[Observed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def store_url(request: pytest.FixtureRequest, store: str) -> str:
    if store == "redis":
        return str(request.getfixturevalue("redis_url"))
    if store == "redis-cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    if store == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        return f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
    return "ignite://" + str(request.getfixturevalue("ignite_address"))


def attempt(
    tx: Any,
    name: str,
    elements: Any,
    attempts: list[Observed],
    reading: list[str],
    appending: list[str],
) -> None:
    """One attempt of a transaction (the SDK runs it again after a conflict)."""
    observed = Observed(f"{name}.{len(attempts)}", committed=True, started=time.monotonic())
    attempts.append(observed)
    for key in reading:
        observed.reads.append((key, tuple(tx.get("lists", key)["ids"])))
    for key in appending:
        element = next(elements)
        tx.append("lists", key, "ids", [element])
        observed.appends.append((key, element))


def run_client(
    targets: str, seed: int, stop: threading.Event, elements: Any, history: History
) -> None:
    rng = random.Random(seed)
    client = Client(targets, timeout_s=10)
    number = 0
    try:
        while not stop.is_set():
            number += 1
            chosen = rng.sample(KEYS, rng.randint(1, 3))
            reading = [key for key in chosen if rng.random() < 0.5]
            appending = [key for key in chosen if key not in reading or rng.random() < 0.3]
            attempts: list[Observed] = []
            try:
                client.transact(
                    attempt, f"c{seed}-{number}", elements, attempts, reading, appending
                )
                outcome = "committed"
                attempts[-1].ended = time.monotonic()
            except ConflictError:
                outcome = "aborted"
            except ShoalError:
                outcome = "unknown"
                time.sleep(0.05)
            with history.lock:
                # Every attempt before the last ended in a conflict: aborted.
                history.aborted += attempts[:-1]
                if attempts:
                    getattr(history, outcome).append(attempts[-1])
    finally:
        client.close()


def resolve(
    history: History, final: dict[str, tuple[int, ...]]
) -> tuple[list[Observed], list[str]]:
    """The transactions that committed (acknowledged, and unacknowledged ones whose elements
    are in the final lists), and the anomalies found on the way."""
    anomalies = []
    present = {(key, element) for key, elements in final.items() for element in elements}
    for key, elements in final.items():
        if len(set(elements)) != len(elements):
            anomalies.append(f"{key}: an element appears twice (a commit applied twice)")
    committed = list(history.committed)
    for txn in committed:
        lost = [append for append in txn.appends if append not in present]
        if lost:
            anomalies.append(f"{txn.name} was acknowledged, its appends {lost} are lost")
    for txn in history.aborted:
        seen = [append for append in txn.appends if append in present]
        if seen:
            anomalies.append(f"{txn.name} conflicted, its appends {seen} are in the lists")
    for txn in history.unknown:
        landed = [append in present for append in txn.appends]
        if any(landed) and not all(landed):
            anomalies.append(f"{txn.name} is half-applied: {txn.appends} vs {landed}")
        elif landed and all(landed):
            committed.append(txn)
    return committed, anomalies


@pytest.mark.parametrize("store", STORES)
def test_list_append_histories_through_three_coordinators_with_kills_are_serializable(
    tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    url = store_url(request, store)
    elements = itertools.count(1)
    history = History()
    with coordinators(tmp_path, url, 3, extra_args=SHORT_LEASES) as servers:
        targets = ",".join(server.target for server in servers)
        setup = Client(servers[0].target)
        setup.create_map("lists")
        for key in KEYS:
            setup.put("lists", key, {"ids": []})
        setup.close()
        wait_for_map(servers, "lists", KEYS[0])
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=run_client, args=(targets, seed, stop, elements, history), daemon=True
            )
            for seed in range(CLIENTS)
        ]
        for worker in workers:
            worker.start()
        rng = random.Random(int(os.environ.get("SHOAL_HISTORY_SEED", "7")))
        kills = 0
        ends = time.monotonic() + SECONDS
        try:
            # At least two kills however slowly a busy machine restarts a coordinator.
            while time.monotonic() < ends or kills < 2:
                time.sleep(rng.uniform(1.0, 4.0))
                victim = servers[rng.randrange(len(servers))]
                victim.kill()
                kills += 1
                time.sleep(rng.uniform(0.2, 1.0))
                victim.start()
            time.sleep(1.0)
        finally:
            stop.set()
            for worker in workers:
                worker.join(120)
        checker = Client(targets)
        assert wait_nothing_in_doubt(checker, LEASE_MS / 1000 + 30) == []
        final = {key: tuple(checker.get("lists", key)["ids"]) for key in KEYS}
        checker.close()
    committed, anomalies = resolve(history, final)
    slowest = max((txn.ended - (txn.started or 0.0) for txn in history.committed), default=0.0)
    print(
        f"{kills} kills; {len(history.committed)} committed, {len(history.aborted)} aborted, "
        f"{len(history.unknown)} unknown ({len(committed) - len(history.committed)} landed); "
        f"slowest commit {slowest:.1f} s"
    )
    assert kills >= 2
    assert len(history.committed) >= 30, "too little progress for the check to mean much"
    verdict = check(committed, final)
    assert anomalies + verdict.anomalies == [], (anomalies + verdict.anomalies)[:5]
    assert verdict.cycle is None, verdict.cycle
    assert verdict.edges > len(committed), "too few dependencies for the check to mean much"
