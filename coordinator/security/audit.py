"""The audit log: every administrative action and every refusal as one JSON line (who,
what, which map, from where, when, outcome) in its own file, and counted as a metric.

Lines never hold a secret: a token appears as its id, never itself.
"""

from __future__ import annotations

import collections
import datetime
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from coordinator.clock import Clock
from coordinator.metrics import Registry

TAIL_LINES_MAX = 10_000


class AuditLog:
    def __init__(self, path: Path, clock: Clock, metrics: Registry) -> None:
        self.path = path
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, as it names principals and addresses.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(descriptor, "ab", buffering=0)
        self._lock = threading.Lock()
        self._events = metrics.counter(
            "shoal_audit_events_total",
            "audited actions and refusals, by action and outcome",
            ("action", "outcome"),
        )

    def record(
        self,
        *,
        principal: str,
        action: str,
        outcome: str,
        peer: str,
        maps: Sequence[str] = (),
        credential: str = "",
        detail: str = "",
    ) -> None:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(
                self._clock.now_ms() / 1000, tz=datetime.UTC
            ).isoformat(timespec="milliseconds"),
            "principal": principal,
            "action": action,
            "maps": list(maps),
            "peer": peer,
            "outcome": outcome,
        }
        if credential:
            line["credential"] = credential
        if detail:
            line["detail"] = detail
        data = orjson.dumps(line) + b"\n"
        with self._lock:
            self._file.write(data)
        self._events.labels(action=action.rsplit("/", 1)[-1], outcome=outcome).inc()

    def tail(self, limit: int, *, principal: str = "", auth_only: bool = False) -> list[str]:
        """The newest `limit` lines (oldest first), filtered."""
        kept: collections.deque[str] = collections.deque(maxlen=min(limit, TAIL_LINES_MAX))
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                text = raw.rstrip("\n")
                if not text:
                    continue
                if principal or auth_only:
                    try:
                        line = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        continue
                    if principal and line.get("principal") != principal:
                        continue
                    if auth_only and not str(line.get("action", "")).startswith("/shoal.v1.Auth/"):
                        continue
                kept.append(text)
        return list(kept)

    def close(self) -> None:
        self._file.close()
