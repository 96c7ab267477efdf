"""Named fault-injection points at the boundaries of the commit protocol.

Tests arm a point with ``SHOAL_FAULT_POINTS=name:n`` (the n-th time the point is
reached, the process kills itself with SIGKILL, as ``kill -9`` would). Arming
requires ``SHOAL_TESTING=1`` as well, so a production server never carries one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping

log = logging.getLogger(__name__)

POINTS = (
    "after_status_created",
    "after_some_prepares",
    "after_votes",
    "after_status_pre_committed",
    "after_some_pre_commits",
    "after_status_committed",
    "after_some_commits",
    "after_commits",
    "after_one_phase",
)


class FaultPoints:
    """Counts arrivals at each point and kills the process at an armed one."""

    def __init__(self, armed: Mapping[str, int] | None = None) -> None:
        self.armed = dict(armed or {})
        unknown = sorted(set(self.armed) - set(POINTS))
        if unknown:
            raise ValueError(f"unknown fault point '{unknown[0]}'; known: {', '.join(POINTS)}")
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def from_environment(environment: Mapping[str, str] = os.environ) -> FaultPoints:
        spec = environment.get("SHOAL_FAULT_POINTS", "")
        if not spec:
            return FaultPoints()
        if environment.get("SHOAL_TESTING") != "1":
            raise ValueError("SHOAL_FAULT_POINTS is honoured only with SHOAL_TESTING=1")
        armed = {}
        for item in spec.split(","):
            name, _, count = item.partition(":")
            armed[name.strip()] = int(count or "1")
        return FaultPoints(armed)

    def reached(self, name: str) -> None:
        if not self.armed:
            return
        with self._lock:
            count = self._counts.get(name, 0) + 1
            self._counts[name] = count
        if self.armed.get(name) == count:
            log.critical("fault point %s reached (arrival %d): killing the process", name, count)
            os.kill(os.getpid(), signal.SIGKILL)
