"""The Pipelines service: list, pause and resume the node's Kafka pipelines, and their lag."""

from __future__ import annotations

import grpc

from coordinator.pipelines.consumer import PipelineStatus
from coordinator.pipelines.host import PipelineHost
from coordinator.security.permissions import Permission
from coordinator.security.setup import Security
from coordinator.services.errors import unary
from grid.errors import NotFound
from shoal.v1 import pipelines_pb2, pipelines_pb2_grpc


def pipeline_info(status: PipelineStatus) -> pipelines_pb2.PipelineInfo:
    spec = status.pipeline.spec
    return pipelines_pb2.PipelineInfo(
        name=spec.name,
        topics=list(spec.topics),
        group=spec.group,
        mode=spec.mode,
        state=status.state,
        error=status.error,
        schema=status.pipeline.schema_name,
        dead_letter_topic=spec.dead_letter_topic,
        batch_max=spec.batch_max,
        batch_ms=spec.batch_ms,
        max_in_flight=spec.max_in_flight,
        on_error=spec.on_error,
        dedup_key=spec.dedup_key or "",
        dedup_window=spec.dedup_window,
        module=spec.module,
        assigned=[f"{topic}/{partition}" for topic, partition in status.assigned],
        counters=status.counters,
        apply_latency_p50_ms=status.latency_p50_ms,
        apply_latency_p99_ms=status.latency_p99_ms,
        apply_latency_p999_ms=status.latency_p999_ms,
        in_flight_batches=status.in_flight,
        dead_letters_pending=status.dead_letters_pending,
    )


class PipelinesService(pipelines_pb2_grpc.PipelinesServicer):
    def __init__(self, host: PipelineHost | None, security: Security | None = None) -> None:
        self.host = host
        self.security = security

    def _host(self, name: str) -> PipelineHost:
        if self.host is None:
            raise NotFound(
                f"no pipeline named '{name}' (this coordinator runs no pipelines)", field="name"
            )
        return self.host

    @unary
    def List(
        self, request: pipelines_pb2.ListPipelinesRequest, context: grpc.ServicerContext
    ) -> pipelines_pb2.ListPipelinesResponse:
        statuses = [] if self.host is None else self.host.statuses()
        shown = (
            None
            if self.security is None
            else self.security.visible(getattr(context, "identity", None), Permission.PIPELINES)
        )
        return pipelines_pb2.ListPipelinesResponse(
            pipelines=[
                pipeline_info(status)
                for status in statuses
                if shown is None or shown(status.pipeline.spec.name)
            ]
        )

    @unary
    def Pause(
        self, request: pipelines_pb2.PipelineRequest, context: grpc.ServicerContext
    ) -> pipelines_pb2.PipelineInfo:
        return pipeline_info(self._host(request.name).pause(request.name))

    @unary
    def Resume(
        self, request: pipelines_pb2.PipelineRequest, context: grpc.ServicerContext
    ) -> pipelines_pb2.PipelineInfo:
        return pipeline_info(self._host(request.name).resume(request.name))

    @unary
    def Lag(
        self, request: pipelines_pb2.LagRequest, context: grpc.ServicerContext
    ) -> pipelines_pb2.LagResponse:
        if self.host is None:
            if request.name:
                self._host(request.name)
            return pipelines_pb2.LagResponse()
        return pipelines_pb2.LagResponse(
            partitions=[
                pipelines_pb2.PartitionLag(
                    pipeline=item.pipeline,
                    topic=item.topic,
                    partition=item.partition,
                    committed_offset=item.committed_offset,
                    end_offset=item.end_offset,
                    lag=item.lag,
                    assigned_here=item.assigned_here,
                )
                for item in self.host.lag(request.name)
            ]
        )
