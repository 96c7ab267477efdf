"""The commit sequence in Hazelcast: one order of commits for every coordinator of a namespace.

The same operations as grid/redis/sequence.py (take, release, renew, the read version, the
numbers whose holders' leases passed), each one entry processor
(dev.shoal.hazelcast.SequenceProcessor) on the namespace's one sequence entry, so coordinators
never race on it; a lease is read from the clock of the member that owns the entry, never from
a coordinator's (docs/architecture/commit-order.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from grid.hazelcast.lost import unavailable_when_lost
from grid.hazelcast.processors import SequenceOperation

SEQUENCE_KEY = "sequence"


def sequence_map_name(namespace: str) -> str:
    return f"shoal.{namespace}.sequence"


class HazelcastCommitSequence:
    def __init__(self, client: Any, namespace: str, *, lease_ms: int = 10_000) -> None:
        self.lease_ms = lease_ms
        self._map = client.get_map(sequence_map_name(namespace)).blocking()

    def _run(self, operation: str, number: int = 0, owner: str = "") -> list[Any]:
        with unavailable_when_lost(f"the commit sequence ({operation})"):
            found: list[Any] = self._map.execute_on_key(
                SEQUENCE_KEY, SequenceOperation(operation, number, owner)
            )
        return found

    def take(self, owner: str) -> int:
        """The next number, held (in flight) by ``owner`` until released or its lease ends; the
        number ``owner`` holds already, when it holds one."""
        return self.take_with_deadline(owner)[0]

    def take_with_deadline(self, owner: str) -> tuple[int, int]:
        """``take``, with the end of the number's lease by the member's clock: a one-phase step
        carries it and refuses after it, since ``expired`` may then report the number."""
        number, deadline, _ = self.take_with_lower(owner)
        return number, deadline

    def take_with_lower(self, owner: str) -> tuple[int, int, list[int] | None]:
        """``take_with_deadline``, with the numbers below it still held when it was taken (None
        when more than the member lists, 256, or from a member whose jar predates the list):
        numbers only grow, so these are all the commits it must wait for, and the coordinator
        waits for its own without asking the member (coordinator/transactions/store_sequence.py)."""
        found = self._run("take", self.lease_ms, owner)
        number, deadline = int(found[0]), int(found[1])
        if len(found) < 3 or len(found) - 3 != int(found[2]):
            return number, deadline, None
        return number, deadline, [int(each) for each in found[3:]]

    def release(self, number: int) -> None:
        """The commit holding ``number`` is applied everywhere (or decided against)."""
        self._run("release", number)

    def renew(self, number: int) -> bool:
        """Extends the lease of a number still held; False when it is no longer held."""
        return bool(self._run("renew", number, str(self.lease_ms))[0])

    @contextmanager
    def commit(self, owner: str) -> Iterator[int]:
        """Holds the next number while the caller applies its commit with it."""
        number = self.take(owner)
        try:
            yield number
        finally:
            # A commit that failed leaves a gap: numbers need not be dense.
            self.release(number)

    def time_ms(self) -> int:
        """The clock of the member that owns the sequence: the one clock every coordinator's
        leases are read by."""
        return int(self._run("time")[0])

    def read_version(self) -> int:
        """The newest version whose commits are all applied: a consistent point to read at."""
        return int(self._run("read_version")[0])

    def expired(self, scan_max: int = 1000, margin_ms: int = 0) -> list[tuple[int, str]]:
        """Numbers (and owners) among the oldest ``scan_max`` held whose lease passed by the
        member's clock ``margin_ms`` ago: their coordinators are presumed gone."""
        found = self._run("expired", scan_max, str(margin_ms))
        return [(int(found[position]), found[position + 1]) for position in range(0, len(found), 2)]
