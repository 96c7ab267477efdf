"""``client.backfill(file, pipeline=...)``: a file's rows through a pipeline, exactly once.

The file's content hash names the backfill in the grid: a file applied before is a
no-op (the summary says ``already_done``), and a run that was interrupted goes on from
the row the grid committed last. Rejected rows come back with their row number (1 is
the file's first record; CSV's header is not a record), stage, rule and field, and are
written to a dead-letter file next to the input unless told otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal._backfill_files import read_rows
from shoal._errors import InvalidArgumentError
from shoal._operator_common import other_grid, pipeline_code
from shoal.v1 import replay_pb2, replay_pb2_grpc

if TYPE_CHECKING:
    from shoal._client import Client

ROWS_PER_CALL = 1000
# The server's limit on rows in one call (coordinator/operators/backfills.py).
ROWS_PER_CALL_MAX = 10_000


@dataclass(frozen=True)
class BackfillReject:
    row: int
    stage: str
    rule: str
    field: str
    message: str
    value: str


@dataclass(frozen=True)
class BackfillProgress:
    id: str
    rows: int
    next_row: int
    applied: int
    rejected: int
    duplicates: int


@dataclass(frozen=True)
class BackfillSummary:
    id: str
    file: str
    pipeline: str
    rows: int
    applied: int
    rejected: int
    duplicates: int
    # True when the file had been applied before: this run changed nothing.
    already_done: bool
    # The row this run started from (0 unless it resumed an interrupted backfill).
    resumed_from_row: int
    rejects: list[BackfillReject] = field(default_factory=list)
    dead_letter_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "pipeline": self.pipeline,
            "rows": self.rows,
            "applied": self.applied,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "already_done": self.already_done,
            "resumed_from_row": self.resumed_from_row,
            "dead_letter_file": self.dead_letter_file,
            "rejects": [vars(item) for item in self.rejects],
        }


def _stub(stubs: Any) -> Any:
    stub = stubs.extra.get("backfills")
    if stub is None:
        stub = stubs.extra["backfills"] = replay_pb2_grpc.BackfillsStub(stubs.channel)
    return stub


def _progress(state: replay_pb2.BackfillState) -> BackfillProgress:
    return BackfillProgress(
        state.id, state.rows, state.next_row, state.applied, state.rejected, state.duplicates
    )


def run_backfill(
    client: Client,
    file: str | Path,
    *,
    pipeline: str | Path,
    name: str = "",
    sandbox: str | None = None,
    into: str | None = None,
    dead_letters: str | Path | None = None,
    rows_per_call: int = ROWS_PER_CALL,
    on_progress: Callable[[BackfillProgress], None] | None = None,
) -> BackfillSummary:
    path = Path(file)
    if isinstance(rows_per_call, bool) or not 1 <= rows_per_call <= ROWS_PER_CALL_MAX:
        raise InvalidArgumentError(
            f"rows_per_call must be from 1 to {ROWS_PER_CALL_MAX}, got {rows_per_call!r}",
            field="rows_per_call",
        )
    digest, rows = read_rows(path)
    target = Path(dead_letters) if dead_letters else path.with_name(f"{path.name}.rejects.jsonl")
    # Checked before anything is applied: once the file is done, a re-run is a no-op and
    # its rejected rows would have nowhere to go.
    if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
        raise InvalidArgumentError(
            f"rejected rows cannot be written to {target}: {target.parent} is not a writable "
            "directory",
            field="dead_letters",
        )
    code = pipeline_code(client, pipeline, name)
    grid, _ = other_grid(client, sandbox=sandbox, into=into)
    try:
        begun = grid._call(
            lambda stubs: _stub(stubs).Begin,
            replay_pb2.BeginBackfillRequest(
                pipeline=code, file_name=path.name, content_sha256=digest, rows=len(rows)
            ),
            idempotent=True,
        )
        backfill_id = begun.id
        resumed_from = begun.next_row
        state = begun
        if on_progress is not None:
            on_progress(_progress(state))
        if not begun.already_done:
            position = begun.next_row
            while position < len(rows):
                chunk = rows[position : position + rows_per_call]
                state = grid._call(
                    lambda stubs: _stub(stubs).Apply,
                    replay_pb2.ApplyBackfillRequest(id=backfill_id, first_row=position, rows=chunk),
                    idempotent=True,
                    timeout_s=max(grid.timeout_s, 60.0),
                )
                position = state.next_row
                if on_progress is not None:
                    on_progress(_progress(state))
        summary = grid._call(
            lambda stubs: _stub(stubs).Finish,
            replay_pb2.BackfillRequest(id=backfill_id),
            idempotent=True,
        )
    finally:
        if grid is not client:
            grid.close()
    rejects = [
        BackfillReject(
            row=item.row + 1,
            stage=item.stage,
            rule=item.rule,
            field=item.field,
            message=item.message,
            value=item.value.decode("utf-8", errors="replace"),
        )
        for item in sorted(summary.rejects, key=lambda item: item.row)
    ]
    written: str | None = None
    if rejects and not begun.already_done:
        with target.open("w") as output:
            for reject in rejects:
                output.write(json.dumps({"file": path.name, **vars(reject)}) + "\n")
        written = str(target)
    final = summary.state
    return BackfillSummary(
        id=final.id,
        file=path.name,
        pipeline=final.pipeline,
        rows=final.rows,
        applied=final.applied,
        rejected=final.rejected,
        duplicates=final.duplicates,
        already_done=begun.already_done,
        resumed_from_row=0 if begun.already_done else resumed_from,
        rejects=rejects,
        dead_letter_file=written,
    )
