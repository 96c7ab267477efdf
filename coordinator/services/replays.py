"""The Replays service: start, follow and cancel replays into this coordinator's grid."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from coordinator.operators.pipeline_code import module_source
from coordinator.operators.replay_forwarding import SandboxReplays
from coordinator.operators.replay_record import RUNNING
from coordinator.operators.replays import ReplayManager, ReplayRequest, ReplayStatus
from coordinator.pipelines.host import PipelineHost
from coordinator.services.errors import streaming, unary
from grid.errors import NotFound
from shoal.v1 import replay_pb2, replay_pb2_grpc

FOLLOW_INTERVAL_MS_DEFAULT = 500
FOLLOW_INTERVAL_MS_MIN = 100
# A step of the stream sleeps this long at most, so a reader that left frees its thread soon.
FOLLOW_INTERVAL_MS_MAX = 10_000


def replay_status(status: ReplayStatus) -> replay_pb2.ReplayStatus:
    record = status.record
    return replay_pb2.ReplayStatus(
        id=record.replay_id,
        state=record.state,
        error=status.error,
        pipeline=record.pipeline,
        topic=record.topic,
        total=record.total,
        processed=status.processed,
        applied=status.applied,
        rejected=status.rejected,
        duplicates=status.duplicates,
        rate_per_s=status.rate_per_s,
        eta_s=status.eta_s,
        rate_limit_per_s=record.rate_per_s,
        dead_letter_topic=record.dead_letter_topic,
        created_ms=record.created_ms,
        finished_ms=record.finished_ms,
        partitions=[
            replay_pb2.ReplayPartition(
                partition=item.partition,
                start_offset=item.start,
                end_offset=item.end,
                next_offset=item.next_offset,
                applied=item.applied,
                rejected=item.rejected,
                duplicates=item.duplicates,
            )
            for item in status.partitions
        ],
        from_ms=record.from_ms,
        to_ms=record.to_ms,
    )


class ReplaysService(replay_pb2_grpc.ReplaysServicer):
    def __init__(
        self,
        replays: ReplayManager,
        pipelines: PipelineHost | None,
        kafka: str,
        sandboxes: SandboxReplays | None = None,
    ) -> None:
        self.replays = replays
        self.pipelines = pipelines
        self.kafka = kafka
        self.sandboxes = sandboxes

    def _sandboxes(self) -> SandboxReplays:
        if self.sandboxes is None:
            raise NotFound("this coordinator has no sandboxes", field="sandbox")
        return self.sandboxes

    def _code(self, name: str) -> replay_pb2.PipelineCode:
        """The code of a pipeline this coordinator runs (the production module)."""
        if self.pipelines is None:
            raise NotFound(
                f"no pipeline named '{name}' (this coordinator runs no pipelines): "
                "send the pipeline's code",
                field="pipeline",
            )
        try:
            pipeline = self.pipelines.registry.get(name)
        except NotFound:
            raise NotFound(f"no pipeline named '{name}'", field="pipeline") from None
        file_name, source = module_source(pipeline)
        return replay_pb2.PipelineCode(name=pipeline.name, file_name=file_name, source=source)

    @unary
    def Start(
        self, request: replay_pb2.StartReplayRequest, context: grpc.ServicerContext
    ) -> replay_pb2.ReplayStatus:
        if not request.pipeline.source and request.pipeline.name:
            request.pipeline.CopyFrom(self._code(request.pipeline.name))
        if request.sandbox:
            if not request.kafka:
                request.kafka = self.kafka
            return self._sandboxes().start(request, context.invocation_metadata())
        code = request.pipeline
        return replay_status(
            self.replays.start_replay(
                ReplayRequest(
                    pipeline_name=code.name,
                    file_name=code.file_name,
                    source=code.source,
                    topic=request.topic,
                    from_ms=request.from_ms if request.HasField("from_ms") else None,
                    to_ms=request.to_ms if request.HasField("to_ms") else None,
                    from_offsets=dict(request.from_offsets),
                    to_offsets=dict(request.to_offsets),
                    rate_per_s=request.rate_per_s,
                    kafka=request.kafka,
                )
            )
        )

    @unary
    def Get(
        self, request: replay_pb2.ReplayRequest, context: grpc.ServicerContext
    ) -> replay_pb2.ReplayStatus:
        if "/" in request.id:
            return self._sandboxes().get(request.id, context.invocation_metadata())
        return replay_status(self.replays.status(request.id))

    @streaming
    def Follow(
        self, request: replay_pb2.FollowReplayRequest, context: grpc.ServicerContext
    ) -> Iterator[replay_pb2.ReplayStatus]:
        interval_ms = min(
            FOLLOW_INTERVAL_MS_MAX,
            max(FOLLOW_INTERVAL_MS_MIN, request.interval_ms or FOLLOW_INTERVAL_MS_DEFAULT),
        )
        if "/" in request.id:
            yield from self._sandboxes().follow(
                request.id, interval_ms, context.invocation_metadata()
            )
            return
        interval_s = interval_ms / 1000
        while True:
            status = self.replays.status(request.id)
            yield replay_status(status)
            if status.record.state != RUNNING:
                return
            time.sleep(interval_s)

    @unary
    def Cancel(
        self, request: replay_pb2.ReplayRequest, context: grpc.ServicerContext
    ) -> replay_pb2.ReplayStatus:
        if "/" in request.id:
            return self._sandboxes().cancel(request.id, context.invocation_metadata())
        return replay_status(self.replays.cancel(request.id))

    @unary
    def List(
        self, request: replay_pb2.ListReplaysRequest, context: grpc.ServicerContext
    ) -> replay_pb2.ListReplaysResponse:
        if request.sandbox:
            return replay_pb2.ListReplaysResponse(
                replays=self._sandboxes().list(request.sandbox, context.invocation_metadata())
            )
        return replay_pb2.ListReplaysResponse(
            replays=[replay_status(status) for status in self.replays.statuses()]
        )

    @unary
    def Origin(
        self, request: replay_pb2.OriginRequest, context: grpc.ServicerContext
    ) -> replay_pb2.OriginResponse:
        response = replay_pb2.OriginResponse(kafka=self.kafka)
        if request.pipeline:
            response.pipeline.CopyFrom(self._code(request.pipeline))
        return response
