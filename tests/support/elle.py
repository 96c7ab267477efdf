"""A serializability checker in the manner of Elle (Kingsbury and Alvaro, VLDB 2020), for
list-append histories.

Every write appends a unique element to a key's list, and every read returns a key's
whole list, so the order of a key's versions is visible: each list read must be a
prefix of the key's final list. From that order the checker builds the dependency
graph of the committed transactions (Adya's): ww (T1 appended the element just before
T2's), wr (T2 read a list whose last element T1 appended) and rw (T1 read a list that
T2's element was the next to extend). A history is serializable exactly when that
graph has no cycle; the checker also reports reads of elements no committed
transaction wrote (aborted or invented reads) and reads that are no prefix. Transactions
that carry their client's times add real-time edges (T1 acknowledged before T2 began), so
a stale read after an acknowledged commit is a cycle too (strict serializability).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass
class Observed:
    """One transaction as the client saw it."""

    name: str
    committed: bool
    # (key, list read), in the order read.
    reads: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    # (key, element appended).
    appends: list[tuple[str, int]] = field(default_factory=list)
    # When the client began it and learned its outcome (time.monotonic()), for real-time
    # order; an outcome never learned ends at infinity.
    started: float | None = None
    ended: float = math.inf


@dataclass
class Verdict:
    anomalies: list[str]
    edges: int
    cycle: list[str] | None

    @property
    def serializable(self) -> bool:
        return not self.anomalies and self.cycle is None


def check(history: Iterable[Observed], final: Mapping[str, tuple[int, ...]]) -> Verdict:
    """Checks a history against each key's final list (read after everything ended)."""
    transactions = list(history)
    committed = [txn for txn in transactions if txn.committed]
    writer: dict[tuple[str, int], str] = {}
    for txn in committed:
        for key, element in txn.appends:
            writer[(key, element)] = txn.name
    anomalies: list[str] = []
    for key, elements in final.items():
        for element in elements:
            if (key, element) not in writer:
                anomalies.append(
                    f"{key}: element {element} is in the final list, no commit wrote it"
                )
    graph: dict[str, set[str]] = {txn.name: set() for txn in committed}

    def edge(source: str, target: str) -> None:
        if source != target:
            graph[source].add(target)

    for key, elements in final.items():
        for before, after in itertools.pairwise(elements):
            if (key, before) in writer and (key, after) in writer:
                edge(writer[(key, before)], writer[(key, after)])
    for txn in committed:
        for key, seen in txn.reads:
            order = final.get(key, ())
            if seen != order[: len(seen)]:
                anomalies.append(
                    f"{txn.name} read {key}={list(seen)}, not a prefix of {list(order)}"
                )
                continue
            if seen:
                source = writer.get((key, seen[-1]))
                if source is None:
                    anomalies.append(f"{txn.name} read {key} element {seen[-1]} no commit wrote")
                else:
                    edge(source, txn.name)
            if len(seen) < len(order):
                edge(txn.name, writer[(key, order[len(seen)])])
    realtime_edges(committed, edge)
    return Verdict(anomalies, sum(len(targets) for targets in graph.values()), find_cycle(graph))


def realtime_edges(committed: list[Observed], edge: Callable[[str, str], None]) -> None:
    """T1 -> T2 when T1's commit was acknowledged before T2 began (strict serializability:
    an acknowledged write is seen by every transaction begun after). Only the edges no
    chain of others implies: T1 -> T2 is implied when some T3 began after T1 ended and
    ended before T2 began, so T2's sources are those that ended at or after the latest
    start among the transactions ended before T2 began."""
    timed = sorted(
        (txn for txn in committed if txn.started is not None and txn.ended < math.inf),
        key=lambda txn: txn.ended,
    )
    ends = [txn.ended for txn in timed]
    latest_start: list[float] = list(
        itertools.accumulate((txn.started or 0.0 for txn in timed), max)
    )
    for later in committed:
        if later.started is None:
            continue
        before = bisect.bisect_left(ends, later.started)
        if before == 0:
            continue
        first = bisect.bisect_left(ends, latest_start[before - 1])
        for earlier in timed[first:before]:
            edge(earlier.name, later.name)


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of a directed graph (as the list of its nodes, first repeated), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for root in graph:
        if colour[root] != white:
            continue
        path = [root]
        colour[root] = grey
        stack = [iter(sorted(graph[root]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                stack.pop()
                colour[path.pop()] = black
                continue
            if colour.get(following, white) == grey:
                return [*path[path.index(following) :], following]
            if colour.get(following, white) == white:
                colour[following] = grey
                path.append(following)
                stack.append(iter(sorted(graph.get(following, ()))))
    return None
