"""The Backfills service: the rows of a file through a pipeline into this grid, once."""

from __future__ import annotations

import grpc

from coordinator.operators.backfills import BackfillManager, BackfillState
from coordinator.services.errors import unary
from shoal.v1 import replay_pb2, replay_pb2_grpc


def backfill_state(state: BackfillState) -> replay_pb2.BackfillState:
    record = state.record
    return replay_pb2.BackfillState(
        id=record.backfill_id,
        state=record.state,
        next_row=state.next_row,
        rows=record.rows,
        applied=state.applied,
        rejected=state.rejected,
        duplicates=state.duplicates,
        already_done=state.already_done,
        file_name=record.file_name,
        pipeline=record.pipeline,
        finished_ms=record.finished_ms,
    )


class BackfillsService(replay_pb2_grpc.BackfillsServicer):
    def __init__(self, backfills: BackfillManager) -> None:
        self.backfills = backfills

    @unary
    def Begin(
        self, request: replay_pb2.BeginBackfillRequest, context: grpc.ServicerContext
    ) -> replay_pb2.BackfillState:
        return backfill_state(
            self.backfills.begin(
                pipeline_name=request.pipeline.name,
                code_file=request.pipeline.file_name,
                source=request.pipeline.source,
                file_name=request.file_name,
                sha256=request.content_sha256,
                rows=request.rows,
            )
        )

    @unary
    def Apply(
        self, request: replay_pb2.ApplyBackfillRequest, context: grpc.ServicerContext
    ) -> replay_pb2.BackfillState:
        return backfill_state(self.backfills.apply(request.id, request.first_row, request.rows))

    @unary
    def Finish(
        self, request: replay_pb2.BackfillRequest, context: grpc.ServicerContext
    ) -> replay_pb2.BackfillSummary:
        state, letters = self.backfills.finish(request.id)
        return replay_pb2.BackfillSummary(
            state=backfill_state(state),
            rejects=[
                replay_pb2.BackfillReject(
                    row=letter.offset,
                    stage=letter.rejection.stage,
                    rule=letter.rejection.rule,
                    field=letter.rejection.field,
                    message=letter.rejection.message,
                    value=letter.value or b"",
                )
                for letter in letters
            ],
        )
