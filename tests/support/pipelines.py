"""Helpers for pipeline tests: records as Kafka would deliver them, and an applier over a
node in the test process."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opentelemetry import trace

from coordinator.clock import SystemClock
from coordinator.config import load
from coordinator.node import Node
from coordinator.pipelines.applier import BatchApplier
from coordinator.pipelines.batching import Batch, Chunk
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.offsets import SYSTEM_MAPS
from coordinator.pipelines.registry import Pipeline, resolve
from shoal.pipelines import Definitions, PipelineSpec, collecting, pipeline


@dataclass(frozen=True)
class Record:
    """The attributes of aiokafka's ConsumerRecord that pipelines read."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: int = field(default_factory=lambda: int(time.time() * 1000))
    headers: Sequence[tuple[str, bytes]] = ()


def records(
    topic: str, partition: int, start: int, documents: Iterable[Any], **extra: Any
) -> list[Record]:
    """Records at consecutive offsets; a document that is bytes is sent as it is."""
    made = []
    for offset, document in enumerate(documents, start):
        value = document if isinstance(document, bytes) else json.dumps(document).encode()
        made.append(Record(topic, partition, offset, value, **extra))
    return made


def open_node(
    path: Path, *, partitions: int = 8, transaction_keys_max: int | None = None, **changes: Any
) -> Node:
    config = replace(
        load(environment={}), data_dir=path, partitions=partitions, fsync="off", **changes
    )
    if transaction_keys_max is not None:
        config = replace(
            config, limits=replace(config.limits, transaction_keys_max=transaction_keys_max)
        )
    node = Node(config)
    now_ms = node.clock.now_ms()
    for name in SYSTEM_MAPS:
        node.catalog.create_system(name, now_ms=now_ms)
    return node


def declare(
    function: Callable[[Any, Any], Any],
    schemas: dict[str, Any] | None = None,
    **settings: Any,
) -> Definitions:
    """The definitions a pipeline module declaring `function` with `settings` would make."""
    settings.setdefault("topic", "events")
    settings.setdefault("group", "events-to-grid")
    with collecting() as found:
        pipeline(**settings)(function)
    found.schemas.update(schemas or {})
    return found


def build_pipeline(node: Node, definitions: Definitions) -> Pipeline:
    (resolved,) = resolve(definitions, node.catalog)
    return resolved


def applier_for(
    node: Node,
    resolved: Pipeline,
    *,
    owner: str = "test",
    tracer: trace.Tracer | None = None,
    seed: int = 1,
) -> BatchApplier:
    return BatchApplier(
        resolved,
        node,
        owner=owner,
        metrics=PipelineMetrics(resolved.name),
        tracer=tracer or trace.get_tracer("tests"),
        clock=SystemClock(),
        rng=random.Random(seed),
    )


def batch_of(batch_id: int, *chunks: tuple[list[Record], int]) -> Batch:
    """A batch of (records of one partition, epoch) chunks."""
    made = Batch(batch_id)
    for items, epoch in chunks:
        made.chunks.append(Chunk(items[0].topic, items[0].partition, epoch, list(items)))
    return made


def spec_of(definitions: Definitions) -> PipelineSpec:
    (spec,) = definitions.pipelines
    return spec
