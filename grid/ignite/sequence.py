"""The commit sequence in Ignite: one order of commits for every coordinator of a namespace.

The same operations as grid/redis/sequence.py. The namespace's sequence record (the last number
and the numbers held, with their owners) is changed in pessimistic transactions, so
coordinators never race on it; each number held also has a lease entry in ``shoal.leases``
written with an expiry policy, so the cluster's clock, never a coordinator's, ends a lease: a
number whose lease entry is gone is one whose holder stopped renewing it
(docs/architecture/commit-order.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from pyignite.datatypes.transactions import TransactionConcurrency, TransactionIsolation

from grid.ignite.lost import guarded
from grid.ignite.records import LEASES_CACHE, RECORDS_CACHE

# A number's grace entry outlives its lease entry by this: one-phase steps refuse once the lease
# entry is gone, and the sweeper releases the number only once the grace entry is (the margin
# coordinator.transactions.store_sequence asks for, fixed when the number is taken).
GRACE_MS = 1000


def lease_key(namespace: str, number: int) -> str:
    """The entry that lives as long as the number's lease (by the cluster's clock)."""
    return f"{namespace}|{number}"


TX_TIMEOUT_MS = 10_000
# Lower numbers held that a take lists at most (more: the caller asks the store instead).
LOWER_LISTED_MAX = 256
# How often take_with_deadline measures the cluster's clock against this process's.
CLOCK_REFRESH_S = 1.0


def _below(flight: dict[str, Any], number: int) -> list[int]:
    return sorted(held for held in map(int, flight) if held < number)


class IgniteCommitSequence:
    def __init__(
        self,
        client_for_thread: Callable[[], Any],
        caches: Callable[[str], Any],
        namespace: str,
        *,
        lease_ms: int = 10_000,
    ) -> None:
        self.lease_ms = lease_ms
        self._client = client_for_thread
        self._caches = caches
        self._namespace = namespace
        self._key = f"{namespace}|sequence"
        self._local = threading.local()
        # (when measured, by time.monotonic; cluster clock minus this process's, in ms)
        self._offset: tuple[float, int] = (-CLOCK_REFRESH_S, 0)

    def _lease_key(self, number: int) -> str:
        return lease_key(self._namespace, number)

    def _grace_key(self, number: int) -> str:
        return f"{self._namespace}|{number}|grace"

    def _lease(self, number: int, holder: str) -> None:
        """Starts (or renews) the number's lease and grace entries."""
        lease, grace = self._expiring()
        lease.put(self._lease_key(number), holder)
        grace.put(self._grace_key(number), holder)

    def _expiring(self) -> tuple[Any, Any]:
        """This thread's leases cache with the lease's and with the grace's expiry, made once:
        pyignite asks the cluster for the partitions of every cache handle it has not seen,
        and a handle made per call cost two more round trips per commit."""
        handles: tuple[Any, Any] | None = getattr(self._local, "expiring", None)
        if handles is None:
            leases = self._caches(LEASES_CACHE)
            lease, grace = self.lease_ms, self.lease_ms + GRACE_MS
            handles = (
                leases.with_expire_policy(create=lease, update=lease),
                leases.with_expire_policy(create=grace, update=grace),
            )
            self._local.expiring = handles
        return handles

    def _change(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Runs ``change`` on the sequence record in a pessimistic transaction and saves it."""
        client = self._client()
        records = self._caches(RECORDS_CACHE)
        with client.tx_start(
            TransactionConcurrency.PESSIMISTIC,
            TransactionIsolation.REPEATABLE_READ,
            timeout=TX_TIMEOUT_MS,
        ) as transaction:
            raw = records.get(self._key)
            state: dict[str, Any] = orjson.loads(raw) if raw else {"last": 0, "flight": {}}
            result = change(state)
            records.put(self._key, orjson.dumps(state).decode())
            transaction.commit()
            return result

    def _state(self) -> dict[str, Any]:
        raw = self._caches(RECORDS_CACHE).get(self._key)
        state: dict[str, Any] = orjson.loads(raw) if raw else {"last": 0, "flight": {}}
        return state

    def take(self, owner: str) -> int:
        """The next number, held (in flight) by ``owner`` until released or its lease ends; the
        number ``owner`` holds already, when it holds one (a sweeper finishing a transaction
        commits it at the number it was given)."""
        return self.take_with_lower(owner)[0]

    def take_with_deadline(self, owner: str) -> tuple[int, int]:
        """``take``, with when its lease ends by the cluster's clock: a one-phase step carrying
        a deadline refuses once the number's lease entry has expired (grid/ignite/steps.py)."""
        number, deadline, _ = self.take_with_lower(owner)
        return number, deadline

    @guarded
    def take_with_lower(self, owner: str) -> tuple[int, int, list[int] | None]:
        """``take_with_deadline``, with the numbers below it still held when it was taken (None
        when more than LOWER_LISTED_MAX are), read in the same transaction: numbers only grow,
        so these are all the commits it must wait for, and the coordinator waits for its own
        without asking the store (coordinator/transactions/store_sequence.py).

        The steps test the lease entry, never the deadline's time, so the cluster's clock is
        read here through an offset measured at most every CLOCK_REFRESH_S: an SQL query per
        commit was the dearest of its round trips."""

        def take(state: dict[str, Any]) -> tuple[int, bool, list[int]]:
            flight = state["flight"]
            for number, holder in flight.items():
                if holder == owner:
                    return int(number), False, _below(flight, int(number))
            state["last"] += 1
            number = int(state["last"])
            lower = _below(flight, number)
            flight[str(number)] = owner
            return number, True, lower

        number, new, lower = self._change(take)
        if new:
            self._lease(number, owner)
        listed = lower if len(lower) <= LOWER_LISTED_MAX else None
        return int(number), self._clock_estimate_ms() + self.lease_ms, listed

    def _clock_estimate_ms(self) -> int:
        local_ms = time.time_ns() // 1_000_000
        measured_s, offset_ms = self._offset
        if time.monotonic() - measured_s >= CLOCK_REFRESH_S:
            before = time.time_ns() // 1_000_000
            cluster_ms = self.time_ms()
            local_ms = time.time_ns() // 1_000_000
            offset_ms = cluster_ms - (before + local_ms) // 2
            self._offset = (time.monotonic(), offset_ms)
        return local_ms + offset_ms

    @guarded
    def release(self, number: int) -> None:
        """The commit holding ``number`` is applied everywhere (or decided against)."""
        self._change(lambda state: state["flight"].pop(str(number), None))
        self._caches(LEASES_CACHE).remove_keys([self._lease_key(number), self._grace_key(number)])

    @guarded
    def renew(self, number: int) -> bool:
        """Extends the lease of a number still held; False when it is no longer held."""
        if str(number) not in self._state()["flight"]:
            return False
        self._lease(number, "renewed")
        return True

    @contextmanager
    def commit(self, owner: str) -> Iterator[int]:
        """Holds the next number while the caller applies its commit with it."""
        number = self.take(owner)
        try:
            yield number
        finally:
            # A commit that failed leaves a gap: numbers need not be dense.
            self.release(number)

    @guarded
    def time_ms(self) -> int:
        """The cluster's clock (the node that runs the query): the one clock every
        coordinator's leases are read by."""
        with self._client().sql("SELECT CURRENT_TIMESTAMP()") as cursor:
            ((stamp, _),) = next(iter(cursor))
        # pyignite builds the datetime with fromtimestamp: timestamp() gives the epoch back.
        return int(stamp.timestamp() * 1000)

    @guarded
    def read_version(self) -> int:
        """The newest version whose commits are all applied: a consistent point to read at."""
        state = self._state()
        if not state["flight"]:
            return int(state["last"])
        return min(int(number) for number in state["flight"]) - 1

    @guarded
    def expired(self, scan_max: int = 1000, margin_ms: int = 0) -> list[tuple[int, str]]:
        """Numbers (and owners) among the oldest ``scan_max`` held whose lease entry the
        cluster let expire (with ``margin_ms``, up to GRACE_MS: whose grace entry did): their
        coordinators are presumed gone."""
        flight = self._state()["flight"]
        oldest = sorted(int(number) for number in flight)[:scan_max]
        if not oldest:
            return []
        key = self._grace_key if margin_ms > 0 else self._lease_key
        alive = self._caches(LEASES_CACHE).get_all([key(number) for number in oldest])
        return [(number, flight[str(number)]) for number in oldest if key(number) not in alive]
