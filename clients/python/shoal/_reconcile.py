"""``client.reconcile(pipeline, from_time, to_time)``: a pipeline's window against Kafka.

Per Kafka partition: the events Kafka holds in the window, how many the grid applied,
rejected and skipped as duplicates, and the offset ranges missing or applied twice;
``redeliver=True`` re-applies the missing ranges, exactly once, and reports afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shoal._operator_common import time_ms
from shoal.v1 import replay_pb2, replay_pb2_grpc

if TYPE_CHECKING:
    from shoal._client import Client


@dataclass(frozen=True)
class PartitionReconciliation:
    topic: str
    partition: int
    start_offset: int
    end_offset: int
    kafka_events: int
    applied: int
    rejected: int
    duplicates: int
    missing: tuple[tuple[int, int], ...]
    applied_twice: tuple[tuple[int, int], ...]
    # Events the pipeline has not reached yet (lag), and those past the bookkeeping's
    # retention (below bookkeeping_floor), which cannot be checked.
    pending: int
    bookkeeping_floor: int
    unverifiable: int
    redelivered: int


@dataclass(frozen=True)
class Reconciliation:
    pipeline: str
    from_ms: int
    to_ms: int
    partitions: tuple[PartitionReconciliation, ...]
    discrepancies: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "discrepancies": self.discrepancies,
            "partitions": [
                {
                    **vars(item),
                    "missing": [list(span) for span in item.missing],
                    "applied_twice": [list(span) for span in item.applied_twice],
                }
                for item in self.partitions
            ],
        }


def _stub(stubs: Any) -> Any:
    stub = stubs.extra.get("reconciliation")
    if stub is None:
        stub = stubs.extra["reconciliation"] = replay_pb2_grpc.ReconciliationStub(stubs.channel)
    return stub


def run_reconcile(
    client: Client,
    pipeline: str,
    from_time: datetime | str | int,
    to_time: datetime | str | int,
    *,
    redeliver: bool = False,
) -> Reconciliation:
    request = replay_pb2.ReconcileRequest(
        pipeline=pipeline,
        from_ms=time_ms(from_time, "from"),
        to_ms=time_ms(to_time, "to"),
        redeliver=redeliver,
    )
    reply = client._call(
        lambda stubs: _stub(stubs).Reconcile,
        request,
        idempotent=not redeliver,
        timeout_s=max(client.timeout_s, 300.0),
    )
    return Reconciliation(
        pipeline=reply.pipeline,
        from_ms=reply.from_ms,
        to_ms=reply.to_ms,
        discrepancies=reply.discrepancies,
        partitions=tuple(
            PartitionReconciliation(
                topic=item.topic,
                partition=item.partition,
                start_offset=item.start_offset,
                end_offset=item.end_offset,
                kafka_events=item.kafka_events,
                applied=item.applied,
                rejected=item.rejected,
                duplicates=item.duplicates,
                missing=tuple((span.start, span.end) for span in item.missing),
                applied_twice=tuple((span.start, span.end) for span in item.applied_twice),
                pending=item.pending,
                bookkeeping_floor=item.bookkeeping_floor,
                unverifiable=item.unverifiable,
                redelivered=item.redelivered,
            )
            for item in reply.partitions
        ),
    )
