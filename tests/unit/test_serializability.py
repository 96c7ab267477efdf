"""Random transactions against the real commit path, checked for serializability.

Seeded histories of concurrent transactions (their steps interleaved by one seeded
Random, so a failure replays from its seed) run through a real Node: reads at the
transaction's read version, appends, read-modify-write puts, increments, and
read-only transactions that never call commit. The Elle-style checker of
tests/support/elle.py builds the dependency graph from the list-append values and
looks for cycles; every read must be the state of exactly the commits up to its read
version (a prefix of the commit order); and each key's list must be in commit order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from coordinator import config as config_module
from coordinator.clock import ManualClock
from coordinator.node import Node
from grid.entry import value_of, version_of
from grid.errors import GridError
from grid.memory.records import Op
from grid.participant import Read, Write
from tests.support.elle import Observed, check, find_cycle

KEYS = [f"k{index}" for index in range(6)]
CLIENTS = 4
TRANSACTIONS_PER_CLIENT = 12
SEEDS = range(12)


@dataclass
class Running:
    """One transaction in progress: its planned operations and what it did so far."""

    observed: Observed
    operations: list[tuple[str, str]]
    read_version: int = 0
    # key -> (items, n, version of the entry read)
    seen: dict[str, tuple[list[int], int, int]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    replaced: set[str] = field(default_factory=set)
    increments: dict[str, int] = field(default_factory=dict)


@dataclass
class History:
    transactions: list[Observed] = field(default_factory=list)
    read_versions: dict[str, int] = field(default_factory=dict)
    commit_versions: dict[str, int] = field(default_factory=dict)
    increments: dict[str, dict[str, int]] = field(default_factory=dict)
    # (transaction, key, n read) for every read.
    counts_read: list[tuple[str, str, int]] = field(default_factory=list)
    final: dict[str, tuple[int, ...]] = field(default_factory=dict)
    final_counts: dict[str, int] = field(default_factory=dict)
    aborted: int = 0


def plan(rng: random.Random) -> list[tuple[str, str]]:
    if rng.random() < 0.3:
        chosen = rng.sample(KEYS, rng.randint(2, 4))
        if rng.random() < 0.5:
            # A read that takes the read version, then, later, a batch at that version.
            return [("read", chosen[0]), ("read_many", ",".join(chosen[1:]))]
        return [("read", key) for key in chosen]
    kinds = ("read", "append", "rmw", "increment")
    return [(rng.choice(kinds), rng.choice(KEYS)) for _ in range(rng.randint(1, 4))]


def run_history(seed: int, directory: Path) -> History:
    rng = random.Random(seed)
    node = Node(
        config_module.load(
            {"data_dir": str(directory), "partitions": "4", "fsync": "off"}, environment={}
        ),
        clock=ManualClock(),
    )
    history = History()
    try:
        node.create_map("m")
        queues = [[plan(rng) for _ in range(TRANSACTIONS_PER_CLIENT)] for _ in range(CLIENTS)]
        running: list[Running | None] = [None] * CLIENTS
        number = 0
        element = 0
        while any(queues) or any(running):
            client = rng.choice([c for c in range(CLIENTS) if queues[c] or running[c]])
            current = running[client]
            if current is None:
                number += 1
                current = running[client] = Running(
                    Observed(f"T{number}", committed=False), queues[client].pop(0)
                )
                history.transactions.append(current.observed)
            if not current.operations:
                commit(node, current, history)
                running[client] = None
                continue
            kind, key = current.operations.pop(0)
            if kind == "read":
                read(node, current, key, history)
            elif kind == "read_many":
                read_many(node, current, key.split(","), history)
            elif kind == "append":
                element += 1
                current.writes.append(
                    Write(Op.APPEND, "m", key, orjson.dumps({"items": [element]}))
                )
                current.observed.appends.append((key, element))
            elif kind == "rmw" and key not in current.replaced and not _writes_to(current, key):
                items, count, _ = read(node, current, key, history)
                element += 1
                document = {"items": [*items, element], "n": count}
                current.writes.append(Write(Op.PUT, "m", key, orjson.dumps(document)))
                current.replaced.add(key)
                current.observed.appends.append((key, element))
            elif kind == "increment":
                current.writes.append(Write(Op.INCREMENT, "m", key, b'{"n": 1}'))
                current.increments[key] = current.increments.get(key, 0) + 1
        for key in KEYS:
            entry = node.keyvalue.get("m", key)
            document = {} if entry is None else orjson.loads(value_of(entry))
            history.final[key] = tuple(document.get("items", ()))
            history.final_counts[key] = document.get("n", 0)
    finally:
        node.close()
    return history


def _writes_to(current: Running, key: str) -> bool:
    return any(write.key == key for write in current.writes)


def read(node: Node, current: Running, key: str, history: History) -> tuple[list[int], int, int]:
    if key in current.seen:
        return current.seen[key]
    if not current.read_version:
        # The first read takes the transaction's read version.
        current.read_version = node.transactions.read_version()
        history.read_versions[current.observed.name] = current.read_version
        assert current.read_version > 0
    entry = node.keyvalue.get("m", key, read_version=current.read_version)
    document: dict[str, Any] = {} if entry is None else orjson.loads(value_of(entry))
    seen = (
        list(document.get("items", [])),
        document.get("n", 0),
        0 if entry is None else version_of(entry),
    )
    current.seen[key] = seen
    current.observed.reads.append((key, tuple(seen[0])))
    history.counts_read.append((current.observed.name, key, seen[1]))
    return seen


def read_many(node: Node, current: Running, keys: list[str], history: History) -> None:
    if not current.read_version:
        current.read_version = node.transactions.read_version()
        history.read_versions[current.observed.name] = current.read_version
    entries = node.keyvalue.get_many("m", keys, read_version=current.read_version)
    for key, entry in zip(keys, entries, strict=True):
        document: dict[str, Any] = {} if entry is None else orjson.loads(value_of(entry))
        items, count = list(document.get("items", [])), document.get("n", 0)
        current.seen[key] = (items, count, 0 if entry is None else version_of(entry))
        current.observed.reads.append((key, tuple(items)))
        history.counts_read.append((current.observed.name, key, count))


def commit(node: Node, current: Running, history: History) -> None:
    name = current.observed.name
    if not current.writes:
        # Read-only: nothing to send, nothing to validate.
        current.observed.committed = True
        return
    reads = [Read("m", key, version) for key, (_, _, version) in current.seen.items()]
    try:
        result = node.transactions.commit(name.encode() + b"-txn", reads, current.writes)
    except GridError:
        history.aborted += 1
        return
    current.observed.committed = True
    history.commit_versions[name] = max(result.versions)
    history.increments[name] = current.increments


@pytest.mark.parametrize("seed", SEEDS)
def test_random_histories_are_serializable(seed: int, tmp_path: Path) -> None:
    history = run_history(seed, tmp_path / "data")
    verdict = check(history.transactions, history.final)
    assert verdict.serializable, f"seed {seed}: {verdict.anomalies} cycle {verdict.cycle}"
    assert verdict.edges > 0
    writer = {
        (key, element): txn.name
        for txn in history.transactions
        if txn.committed
        for key, element in txn.appends
    }
    # One commit order on every partition: each key's list is in commit-version order.
    for key, elements in history.final.items():
        versions = [history.commit_versions[writer[(key, element)]] for element in elements]
        assert versions == sorted(versions), f"seed {seed}: {key} out of commit order"
    # Every read, committed or not, read-only or not, saw exactly the commits up to its
    # read version: a prefix of the commit order.
    for txn in history.transactions:
        version = history.read_versions.get(txn.name, 0)
        for key, seen in txn.reads:
            expected = tuple(
                element
                for element in history.final[key]
                if history.commit_versions[writer[(key, element)]] <= version
            )
            assert seen == expected, f"seed {seed}: {txn.name} at {version} read {key}={seen}"
    for name, key, count in history.counts_read:
        version = history.read_versions[name]
        expected_count = sum(
            increments.get(key, 0)
            for committer, increments in history.increments.items()
            if history.commit_versions[committer] <= version
        )
        assert count == expected_count, f"seed {seed}: {name} read n={count} of {key}"
    for key in KEYS:
        total = sum(increments.get(key, 0) for increments in history.increments.values())
        assert history.final_counts[key] == total, f"seed {seed}: increments of {key} lost"


def test_the_histories_have_conflicts_and_read_only_transactions(tmp_path: Path) -> None:
    """Without aborts and read-only transactions the property would prove little."""
    aborted = read_only = 0
    for seed in range(3):
        history = run_history(seed, tmp_path / f"data{seed}")
        aborted += history.aborted
        read_only += sum(
            1 for txn in history.transactions if txn.committed and not txn.appends and txn.reads
        )
    assert aborted > 0 and read_only > 0


def test_the_checker_finds_write_skew() -> None:
    # Each read the other's key empty, then appended to its own: rw both ways.
    history = [
        Observed("T1", True, reads=[("x", ()), ("y", ())], appends=[("x", 1)]),
        Observed("T2", True, reads=[("x", ()), ("y", ())], appends=[("y", 2)]),
    ]
    verdict = check(history, {"x": (1,), "y": (2,)})
    assert verdict.cycle is not None and set(verdict.cycle) == {"T1", "T2"}


def test_the_checker_finds_a_lost_update_and_an_aborted_read() -> None:
    lost = [
        Observed("T1", True, reads=[("x", ())], appends=[("x", 1)]),
        Observed("T2", True, reads=[("x", ())], appends=[("x", 2)]),
    ]
    assert check(lost, {"x": (1, 2)}).cycle is not None
    aborted = [
        Observed("T1", False, appends=[("x", 1)]),
        Observed("T2", True, reads=[("x", (1,))]),
    ]
    assert check(aborted, {"x": ()}).anomalies


def test_the_checker_finds_a_stale_read_after_an_acknowledged_commit() -> None:
    # T2 began after T1 was acknowledged, yet read x without T1's element: serializable
    # (T2 before T1), but not in real-time order.
    writer = Observed("T1", True, appends=[("x", 1)], started=0.0, ended=1.0)
    reader = Observed("T2", True, reads=[("x", ())], started=2.0, ended=3.0)
    assert check([writer, reader], {"x": (1,)}).cycle is not None
    overlapping = Observed("T2", True, reads=[("x", ())], started=0.5, ended=3.0)
    assert check([writer, overlapping], {"x": (1,)}).cycle is None


def test_real_time_edges_are_only_those_no_chain_implies() -> None:
    # Three transactions one after the other: T1 -> T2 -> T3, and no T1 -> T3.
    one, two, three = (
        Observed(name, True, appends=[(name, 1)], started=2.0 * index, ended=2.0 * index + 1)
        for index, name in enumerate(("T1", "T2", "T3"))
    )
    assert check([one, two, three], {"T1": (1,), "T2": (1,), "T3": (1,)}).edges == 2


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
