"""Plain data the SDK returns: map descriptions, cluster information, versioned values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shoal.v1 import admin_pb2


@dataclass(frozen=True)
class Versioned:
    """A value with the version it was read at (versions increase on every change)."""

    value: Any
    version: int


@dataclass(frozen=True)
class MapInfo:
    name: str
    schema: dict[str, Any] | None
    schema_version: int
    entries: int
    memory_bytes: int
    sketch: dict[str, Any] | None = None

    @staticmethod
    def from_message(message: admin_pb2.MapInfo) -> MapInfo:
        return MapInfo(
            name=message.name,
            schema=json.loads(message.schema_json) if message.schema_json else None,
            schema_version=message.schema_version,
            entries=message.entries,
            memory_bytes=message.memory_bytes,
            sketch=json.loads(message.sketch_json) if message.sketch_json else None,
        )


@dataclass(frozen=True)
class ClusterInfo:
    version: str
    node_id: str
    backend: str
    partitions: int
    data_dir: str
    fsync: str
    uptime_ms: int
    maps: int
    entries: int
    limits: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_message(message: admin_pb2.ClusterInfoResponse) -> ClusterInfo:
        return ClusterInfo(
            version=message.version,
            node_id=message.node_id,
            backend=message.backend,
            partitions=message.partitions,
            data_dir=message.data_dir,
            fsync=message.fsync,
            uptime_ms=message.uptime_ms,
            maps=message.maps,
            entries=message.entries,
            limits=json.loads(message.limits_json) if message.limits_json else {},
        )
