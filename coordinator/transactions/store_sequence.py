"""The commit sequence of a shared store, as the transaction manager uses it.

Several coordinators on one store share one order of commits: the numbers come from the store
(grid/redis/sequence.py: a counter and the numbers in flight, with leases by the store's clock),
and the read version is the newest number below every number in flight, so a read at it sees
each commit on all of its partitions or on none, whichever coordinator made it. A commit
applies only once every lower number is released, so commits reach every partition in number
order whichever coordinator made them, as they do in one process; a one-phase step that still
finds a later-numbered commit on its keys refuses (grid.errors.StaleVersion) and the manager
applies it again with a new number. The horizon is this coordinator's own sample of the
read versions it saw: it starts at 0 (keep everything) and trails the read version by the
window, so a coordinator that just started forgets nothing another's readers may still use.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from coordinator.clock import Clock
from coordinator.transactions.sequence import Horizon
from grid.backend import PartitionStore
from grid.errors import Unavailable
from grid.participant import ApplyOnePhase, Reply

# How long after a number's lease ends the sweeper may release it: the steps that carry the
# number refuse after its end by their own node's clock (on a Redis Cluster, not the clock of
# the node holding the sequence), so this bounds the store's clock skew it tolerates.
RELEASE_MARGIN_MS = 1000
# How long a commit waits for the commits numbered before it: beyond a dead holder's lease
# and the sweeper's margin, the store is too slow to serve.
LOWER_NUMBERS_WAIT_S = 60.0


class StoreSequence(Protocol):
    """What a shared backend's commit sequence provides (grid.redis.sequence)."""

    def take(self, owner: str) -> int: ...

    def release(self, number: int) -> None: ...

    def read_version(self) -> int: ...

    def expired(self, scan_max: int = 1000) -> list[tuple[int, str]]: ...


class StoreCommitSequence:
    def __init__(self, store: StoreSequence, clock: Clock, *, window_ms: int = 5000) -> None:
        self.store = store
        self.window_ms = window_ms
        self._horizon = Horizon(0, clock, window_ms)
        self._deadlines: dict[int, int] = {}
        self._visible = 1
        self._visible_at = -1e9
        self._refresh_s = max(1, window_ms // 64) / 1000
        # Optional: a store whose numbers carry a deadline their one-phase steps enforce
        # (grid/redis/sequence.py) says so with take_with_deadline, and expired takes the
        # margin; without them a step has no deadline.
        self._take_with_deadline: Callable[[str], tuple[int, int]] | None = getattr(
            store, "take_with_deadline", None
        )
        self._expired_margin = "margin_ms" in inspect.signature(store.expired).parameters
        # Optional too: a store that lists, with a new number, the lower numbers still held
        # (grid/redis/sequence.py) lets a commit wait for this process's own holders here,
        # woken by their release, instead of asking the store until they are gone.
        self._take_with_lower: Callable[[str], tuple[int, int, list[int] | None]] | None = getattr(
            store, "take_with_lower", None
        )
        # The numbers this process's commits hold (a transaction may hold its number twice:
        # its driver and a recovery sweep), and a condition notified as each is given back.
        self._held: Counter[int] = Counter()
        # Numbers given back here but kept held in the store after a failure (commit()).
        self._kept: set[int] = set()
        self._given_back = threading.Condition()
        # Optional as well: a store whose release can ride on a partition's step, in the same
        # round trip after it (grid/redis/sequence.py, one Redis server), and the numbers
        # given back that way, which the end of their commit then does not release again.
        self._release_command: Callable[[int], list[Any] | None] | None = getattr(
            store, "release_command", None
        )
        self._released_with_step: set[int] = set()

    @contextmanager
    def commit(self, owner: bytes = b"", *, several_steps: bool = False) -> Iterator[int]:
        """Holds a number for `owner` (a transaction id) while the caller applies its commit.

        A transaction holding a number already gets the same one: a recovery sweeper finishing
        a transaction its coordinator left half-committed commits it at the number the
        partitions already committed were given.

        `several_steps`: the commit is applied by several steps (a transaction's commits on
        its partitions). When the store fails under them (Unavailable) some partitions may
        hold the commit and others not yet, and the number may be shared with another caller
        finishing the same transaction: releasing it would let later commits pass a commit
        still to land, on some partitions only. It stays held then, until the sweeper
        finishes the transaction at that number or, with nothing left to finish, releases it
        once its lease is over."""
        holder = (owner or os.urandom(16)).hex()
        lower: list[int] | None = None
        if self._take_with_lower is not None:
            number, deadline, lower = self._take_with_lower(holder)
        elif self._take_with_deadline is not None:
            number, deadline = self._take_with_deadline(holder)
        else:
            number, deadline = self.store.take(holder), 0
        self._deadlines[number] = deadline
        with self._given_back:
            self._held[number] += 1
        kept = False
        try:
            self._wait_for_lower_numbers(number, lower)
            yield number
        except Unavailable:
            kept = several_steps
            raise
        finally:
            # A commit that failed (a conflict) leaves a gap: numbers need not be dense.
            self._deadlines.pop(number, None)
            try:
                if number in self._released_with_step:
                    self._released_with_step.discard(number)
                elif not kept:
                    self.store.release(number)
            finally:
                # Given back here once its steps are done, released in the store or not: a
                # commit waiting for it only needs those steps to be over (a number whose
                # release failed stays held in the store until the sweeper releases it). A
                # kept number's steps may not be over: its waiters here ask the store.
                with self._given_back:
                    self._held[number] -= 1
                    if self._held[number] <= 0:
                        del self._held[number]
                    if kept:
                        self._kept.add(number)
                    self._given_back.notify_all()

    def apply_last(
        self, store: PartitionStore, event: ApplyOnePhase
    ) -> tuple[Reply, Callable[[], None]]:
        """Applies the last step of the commit holding `event.version`. Where the partition can
        send the number's release right behind the step, in the same round trip
        (`apply_then`: one Redis server, whose connection runs them in order, so the release
        runs only once the step is over), it does: a put then costs a round trip less."""
        apply_then = getattr(store, "apply_then", None)
        command = self._release_command(event.version) if self._release_command else None
        answered = None
        if apply_then is not None and command is not None:
            answered = apply_then(event, command)
        if answered is None:
            result: tuple[Reply, Callable[[], None]] = store.apply(event)
            return result
        reply, released = answered
        if released:
            self._released_with_step.add(event.version)
        return reply, _durable

    def _wait_for_lower_numbers(self, number: int, lower: list[int] | None = None) -> None:
        """Returns once every lower number is released, that is, once its commit is applied.

        Commits must reach the partitions in number order, as in one process (where the
        sequence is held while a commit applies): two transactions appending to the same lists
        on two partitions hold compatible locks, and committed through two coordinators they
        otherwise landed in one order on one partition and the other order on the other, a
        write cycle. A dead holder of a lower number keeps this waiting until the sweeper
        releases it (its lease and RELEASE_MARGIN_MS).

        `lower` lists the lower numbers still held when `number` was taken (None: unknown).
        No lower number is handed out later, so these are all there is to wait for: those
        held in this process are waited for here, woken as each is given back (its steps
        done); the store is asked only about the others, and only whether they are gone
        (every number up to the read version is released)."""
        give_up = time.monotonic() + LOWER_NUMBERS_WAIT_S
        target = number - 1
        if lower is not None:
            with self._given_back:
                mine = [each for each in lower if each in self._held]
                while any(each in self._held for each in mine):
                    left = give_up - time.monotonic()
                    if left <= 0:
                        raise self._too_slow(number)
                    self._given_back.wait(left)
            # A number given back here since the take is counted as another's: the store
            # answers for it at once. So is one kept after a failure (its steps may not be
            # over): the store answers once the sweeper finished it.
            others = [each for each in lower if each not in mine or each in self._kept]
            if not others:
                return
            target = max(others)
        pause_s = 0.0002
        while (visible := self.store.read_version()) < target:
            if time.monotonic() > give_up:
                raise self._too_slow(number)
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 0.005)
        if self._kept:
            with self._given_back:
                self._kept = {each for each in self._kept if each > visible}

    @staticmethod
    def _too_slow(number: int) -> Unavailable:
        return Unavailable(
            f"commit number {number} waited {LOWER_NUMBERS_WAIT_S:.0f} s for the "
            "commits numbered before it to apply"
        )

    def deadline(self, number: int) -> int:
        """When the lease of a number held here ends (store clock): a one-phase step carries
        it and refuses after it (grid.protocol.ApplyOnePhase.deadline_ms)."""
        return self._deadlines.get(number, 0)

    def read_version(self) -> int:
        # At least 1: a read version of 0 means "none" on the wire (the latest value).
        visible = max(self.store.read_version(), 1)
        self._visible, self._visible_at = visible, time.monotonic()
        self._horizon.note(visible)
        return visible

    def horizon(self) -> int:
        # Sampled from the read version last fetched, fetched again at most once per sample
        # interval: every commit asks for the horizon, and a round trip each would cost more
        # than the sample is worth (an older visible version only keeps states longer).
        if time.monotonic() - self._visible_at >= self._refresh_s:
            self.read_version()
        return self._horizon.note(self._visible)

    def expired(self) -> list[tuple[int, str]]:
        """Numbers held past their lease (by the store's clock), with their holders."""
        if self._expired_margin:
            expired: Callable[..., list[tuple[int, str]]] = self.store.expired
            return expired(margin_ms=RELEASE_MARGIN_MS)
        return self.store.expired()

    def release(self, number: int) -> None:
        self.store.release(number)


def _durable() -> None:
    """A step the store made as durable as its writes (Redis: appendfsync) before answering."""
