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
    """Keeps the last transitions of the most recent transactions."""

    def __init__(self, clock: Clock, stories_max: int = STORIES_MAX) -> None:
        self._clock = clock
        self._stories: OrderedDict[str, deque[Transition]] = OrderedDict()
        self._stories_max = stories_max
        self._lock = threading.Lock()

    def record(self, txn_id: bytes, event: str, detail: str = "") -> None:
        key = txn_id.hex()
        transition = Transition(self._clock.now_ms(), event, detail)
        with self._lock:
            story = self._stories.get(key)
            if story is None:
                story = self._stories[key] = deque(maxlen=TRANSITIONS_PER_STORY_MAX)
                while len(self._stories) > self._stories_max:
                    self._stories.popitem(last=False)
            story.append(transition)

    def story(self, txn_id_hex: str) -> list[Transition]:
        with self._lock:
            return list(self._stories.get(txn_id_hex, ()))
