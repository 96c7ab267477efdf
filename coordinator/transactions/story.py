"""A bounded log of each transaction's transitions, to tell the story of one of them."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from coordinator.clock import Clock

STORIES_MAX = 10_000
TRANSITIONS_PER_STORY_MAX = 64


@dataclass(frozen=True)
class Transition:
    at_ms: int
    event: str
    detail: str = ""


class Stories:
    """Keeps the last transitions of the most recent transactions.

    Recording is on the commit path, so it stores plain tuples and takes the lock only
    to start a new story; a deque's append is atomic on its own.
    """

    def __init__(self, clock: Clock, stories_max: int = STORIES_MAX) -> None:
        self._clock = clock
        self._stories: OrderedDict[bytes, deque[tuple[int, str, str]]] = OrderedDict()
        self._stories_max = stories_max
        self._lock = threading.Lock()

    def record(self, txn_id: bytes, event: str, detail: str = "") -> None:
        story = self._stories.get(txn_id)
        if story is None:
            with self._lock:
                story = self._stories.get(txn_id)
                if story is None:
                    story = self._stories[txn_id] = deque(maxlen=TRANSITIONS_PER_STORY_MAX)
                    while len(self._stories) > self._stories_max:
                        self._stories.popitem(last=False)
        story.append((self._clock.now_ms(), event, detail))

    def story(self, txn_id_hex: str) -> list[Transition]:
        try:
            key = bytes.fromhex(txn_id_hex)
        except ValueError:
            return []
        with self._lock:
            entries = list(self._stories.get(key, ()))
        return [Transition(at_ms, event, detail) for at_ms, event, detail in entries]
