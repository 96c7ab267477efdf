"""A serializability checker in the manner of Elle (Kingsbury and Alvaro, VLDB 2020), for
list-append histories.

Every write appends a unique element to a key's list, and every read returns a key's
whole list, so the order of a key's versions is visible: each list read must be a
prefix of the key's final list. From that order the checker builds the dependency
graph of the committed transactions (Adya's): ww (T1 appended the element just before
T2's), wr (T2 read a list whose last element T1 appended) and rw (T1 read a list that
T2's element was the next to extend). A history is serializable exactly when that
graph has no cycle; the checker also reports reads of elements no committed
transaction wrote (aborted or invented reads) and reads that are no prefix.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
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
    return Verdict(anomalies, sum(len(targets) for targets in graph.values()), find_cycle(graph))


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
