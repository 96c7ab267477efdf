"""Replays in the SDK: ``client.replays.start(...)``, ``status``, ``follow``, ``cancel``.

A replay runs in the coordinator of the grid it writes into (a sandbox, or any grid by
address); its id then carries that grid's name or address (``incident-42/r-0a1b2c3d4e``),
so ``status``, ``follow`` and ``cancel`` reach it again through this client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from shoal._errors import InvalidArgumentError, from_rpc_error
from shoal._operator_common import (
    offsets_map,
    origin,
    other_grid,
    pipeline_code,
    replays_stub,
    split_id,
    time_ms,
)
from shoal.v1 import replay_pb2

if TYPE_CHECKING:
    from shoal._client import Client

ENDED = ("done", "cancelled", "failed")


@dataclass(frozen=True)
class ReplayPartition:
    partition: int
    start_offset: int
    end_offset: int
    next_offset: int
    applied: int
    rejected: int
    duplicates: int


@dataclass(frozen=True)
class ReplayStatus:
    """A replay's progress: ``processed`` of ``total`` offsets, ``applied``, ``rejected``
    (sent to ``dead_letter_topic``), ``duplicates``, ``rate_per_s`` and ``eta_s``."""

    id: str
    state: str
    error: str
    pipeline: str
    topic: str
    total: int
    processed: int
    applied: int
    rejected: int
    duplicates: int
    rate_per_s: float
    eta_s: float
    rate_limit_per_s: float
    dead_letter_topic: str
    created_ms: int
    finished_ms: int
    from_ms: int
    to_ms: int
    partitions: tuple[ReplayPartition, ...]

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @staticmethod
    def from_message(message: replay_pb2.ReplayStatus, prefix: str = "") -> ReplayStatus:
        return ReplayStatus(
            id=f"{prefix}/{message.id}" if prefix else message.id,
            state=message.state,
            error=message.error,
            pipeline=message.pipeline,
            topic=message.topic,
            total=message.total,
            processed=message.processed,
            applied=message.applied,
            rejected=message.rejected,
            duplicates=message.duplicates,
            rate_per_s=message.rate_per_s,
            eta_s=message.eta_s,
            rate_limit_per_s=message.rate_limit_per_s,
            dead_letter_topic=message.dead_letter_topic,
            created_ms=message.created_ms,
            finished_ms=message.finished_ms,
            from_ms=message.from_ms,
            to_ms=message.to_ms,
            partitions=tuple(
                ReplayPartition(
                    item.partition,
                    item.start_offset,
                    item.end_offset,
                    item.next_offset,
                    item.applied,
                    item.rejected,
                    item.duplicates,
                )
                for item in message.partitions
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "error": self.error,
            "pipeline": self.pipeline,
            "topic": self.topic,
            "total": self.total,
            "processed": self.processed,
            "applied": self.applied,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rate_per_s": round(self.rate_per_s, 1),
            "eta_s": round(self.eta_s, 1),
            "rate_limit_per_s": self.rate_limit_per_s,
            "dead_letter_topic": self.dead_letter_topic,
            "created_ms": self.created_ms,
            "finished_ms": self.finished_ms,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "partitions": [vars(item) for item in self.partitions],
        }


class Replays:
    """``client.replays``: replays of a Kafka range through a pipeline into a grid."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _grid(self, where: str) -> tuple[Client, bool]:
        """The client an id's prefix is reached through, and whether it must be closed: a
        grid by address directly; a sandbox through this client's coordinator, which
        passes the call on."""
        if ":" in where:
            grid, _ = other_grid(self._client, sandbox=None, into=where)
            return grid, True
        return self._client, False

    def start(
        self,
        *,
        pipeline: str | Path,
        topic: str = "",
        from_time: datetime | str | int | None = None,
        to_time: datetime | str | int | None = None,
        from_offsets: Mapping[int, int] | None = None,
        to_offsets: Mapping[int, int] | None = None,
        rate_per_s: float = 0.0,
        sandbox: str | None = None,
        into: str | None = None,
        kafka: str = "",
        name: str = "",
    ) -> ReplayStatus:
        """Starts replaying ``topic`` from ``from_time`` to ``to_time`` (or the given offsets
        per partition) through ``pipeline`` (a .py file, or the name of a pipeline this
        client's coordinator runs) into a sandbox, a grid by address (``into``) or, with
        neither, the grid of this client."""
        code = pipeline_code(self._client, pipeline, name)
        if sandbox and into:
            raise InvalidArgumentError(
                "give a sandbox or an address (into), not both", field="sandbox"
            )
        # A sandbox is reached through this client's coordinator, which passes the call
        # on; a grid by address directly, with the Kafka address of this client's.
        grid, prefix = other_grid(self._client, sandbox=None, into=into)
        try:
            if not kafka and grid is not self._client:
                kafka = origin(self._client).kafka
            request = replay_pb2.StartReplayRequest(
                pipeline=code,
                topic=topic,
                from_offsets=offsets_map(from_offsets, "from_offsets"),
                to_offsets=offsets_map(to_offsets, "to_offsets"),
                rate_per_s=rate_per_s,
                kafka=kafka,
                sandbox=sandbox or "",
            )
            if from_time is not None:
                request.from_ms = time_ms(from_time, "from")
            if to_time is not None:
                request.to_ms = time_ms(to_time, "to")
            reply = grid._call(
                lambda stubs: replays_stub(stubs).Start,
                request,
                idempotent=False,
                timeout_s=max(grid.timeout_s, 60.0),
            )
            return ReplayStatus.from_message(reply, prefix)
        finally:
            if grid is not self._client:
                grid.close()

    def status(self, replay_id: str) -> ReplayStatus:
        where, local = split_id(replay_id)
        grid, owned = self._grid(where)
        try:
            reply = grid._call(
                lambda stubs: replays_stub(stubs).Get,
                replay_pb2.ReplayRequest(id=replay_id if grid is self._client else local),
                idempotent=True,
            )
            return ReplayStatus.from_message(reply, "" if grid is self._client else where)
        finally:
            if owned:
                grid.close()

    def cancel(self, replay_id: str) -> ReplayStatus:
        where, local = split_id(replay_id)
        grid, owned = self._grid(where)
        try:
            reply = grid._call(
                lambda stubs: replays_stub(stubs).Cancel,
                replay_pb2.ReplayRequest(id=replay_id if grid is self._client else local),
                idempotent=True,
                timeout_s=max(grid.timeout_s, 60.0),
            )
            return ReplayStatus.from_message(reply, "" if grid is self._client else where)
        finally:
            if owned:
                grid.close()

    def list(self, *, sandbox: str | None = None, into: str | None = None) -> list[ReplayStatus]:
        grid, prefix = other_grid(self._client, sandbox=None, into=into)
        try:
            reply = grid._call(
                lambda stubs: replays_stub(stubs).List,
                replay_pb2.ListReplaysRequest(sandbox=sandbox or ""),
                idempotent=True,
            )
            return [ReplayStatus.from_message(item, prefix) for item in reply.replays]
        finally:
            if grid is not self._client:
                grid.close()

    def follow(self, replay_id: str, *, interval_s: float = 0.5) -> Iterator[ReplayStatus]:
        """The replay's status now, then every ``interval_s`` until it ends (the last one
        says how)."""
        where, local = split_id(replay_id)
        grid, owned = self._grid(where)
        try:
            request = replay_pb2.FollowReplayRequest(
                id=replay_id if grid is self._client else local,
                interval_ms=max(100, int(interval_s * 1000)),
            )
            stream = replays_stub(grid._connection.current).Follow(
                request, timeout=None, metadata=grid._metadata
            )
            try:
                for message in stream:
                    yield ReplayStatus.from_message(message, "" if grid is self._client else where)
            except grpc.RpcError as error:
                raise from_rpc_error(error) from None
            finally:
                stream.cancel()
        finally:
            if owned:
                grid.close()
