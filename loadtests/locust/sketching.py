"""Sketch ingestion tasks: batches of visitor ids into daily HyperLogLogs, and estimates."""

from __future__ import annotations

from loadtests.locust.dataset import sketch_key, visitor
from loadtests.locust.session import Session

ADD = "sketch.add"
ESTIMATE = "sketch.estimate"


def add(session: Session) -> None:
    day = sketch_key(session.days.index())
    items = [visitor(session.rng) for _ in range(session.settings.sketch_items)]
    session.client.named(ADD).sketches.add(session.maps.visitors, day, items)


def estimate(session: Session) -> None:
    day = sketch_key(session.days.index())
    session.client.named(ESTIMATE).sketches.estimate(session.maps.visitors, day)
