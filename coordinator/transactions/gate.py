"""The commit gate: makes the commit of a transaction on all its partitions one instant.

Commits hold the gate shared while they apply to their partitions; a snapshot holds
it exclusive for the moment it takes to capture every partition, so it sees each
transaction on all of its partitions or on none. A waiting snapshot goes before
new commits, so a stream of commits cannot starve it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Result = TypeVar("Result")
OPTIMISTIC_ATTEMPTS = 3


class CommitGate:
    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._sharers = 0
        self._exclusive_waiting = 0
        self._exclusive = False
        # Commits begun and ended, for readers that check rather than block.
        self._begun = 0
        self._ended = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            while self._exclusive or self._exclusive_waiting:
                self._condition.wait()
            self._sharers += 1
            self._begun += 1
        try:
            yield
        finally:
            with self._condition:
                self._sharers -= 1
                self._ended += 1
                if self._sharers == 0:
                    self._condition.notify_all()

    def read_consistent(self, read: Callable[[], Result]) -> Result:
        """Runs a read that must see no commit half-applied.

        First optimistically: the read counts when no commit was applying when it began
        and none began before it ended (a seqlock). Under a stream of commits it falls
        back to holding the gate exclusive.
        """
        for _ in range(OPTIMISTIC_ATTEMPTS):
            begun = self._begun
            if begun == self._ended:
                try:
                    result = read()
                except RuntimeError:
                    # A commit changed a dict while the read walked it: the read is void.
                    continue
                if self._begun == begun:
                    return result
        with self.exclusive():
            return read()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._exclusive_waiting += 1
            while self._exclusive or self._sharers:
                self._condition.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()
