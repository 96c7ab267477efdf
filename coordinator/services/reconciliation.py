"""The Reconciliation service: a pipeline's window against Kafka, and re-delivery."""

from __future__ import annotations

import grpc

from coordinator.operators.reconcile import Reconciler
from coordinator.services.errors import unary
from shoal.v1 import replay_pb2, replay_pb2_grpc


class ReconciliationService(replay_pb2_grpc.ReconciliationServicer):
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    @unary
    def Reconcile(
        self, request: replay_pb2.ReconcileRequest, context: grpc.ServicerContext
    ) -> replay_pb2.ReconcileReport:
        report = self.reconciler.reconcile(
            request.pipeline, request.from_ms, request.to_ms, redeliver=request.redeliver
        )
        return replay_pb2.ReconcileReport(
            pipeline=report.pipeline,
            from_ms=report.from_ms,
            to_ms=report.to_ms,
            discrepancies=report.discrepancies,
            partitions=[
                replay_pb2.ReconcilePartition(
                    topic=item.topic,
                    partition=item.partition,
                    start_offset=item.start_offset,
                    end_offset=item.end_offset,
                    kafka_events=item.kafka_events,
                    applied=item.applied,
                    rejected=item.rejected,
                    duplicates=item.duplicates,
                    missing=[replay_pb2.OffsetRange(start=a, end=b) for a, b in item.missing],
                    applied_twice=[
                        replay_pb2.OffsetRange(start=a, end=b) for a, b in item.applied_twice
                    ],
                    pending=item.pending,
                    bookkeeping_floor=item.bookkeeping_floor,
                    unverifiable=item.unverifiable,
                    redelivered=item.redelivered,
                )
                for item in report.partitions
            ],
        )
