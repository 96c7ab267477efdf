"""`shoal backfill`: a file's rows through a pipeline into a grid, exactly once per file.

shoal backfill --pipeline pipelines/orders.py --file orders-2026-11-24.parquet \\
      [--sandbox incident-42 | --into host:port] [--dead-letters rejects.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal._backfill import BackfillProgress, BackfillSummary
    from shoal._client import Client

REJECTS_SHOWN = 10


def add_parser(commands: Any) -> None:
    backfill = commands.add_parser(
        "backfill", help="apply a .jsonl, .csv or .parquet file through a pipeline, once"
    )
    backfill.add_argument(
        "--pipeline",
        required=True,
        help="a pipeline file (.py), or the name of a pipeline the coordinator runs",
    )
    backfill.add_argument("--name", default="", help="which pipeline of the file (when several)")
    backfill.add_argument("--file", required=True, help="the events: .jsonl, .csv or .parquet")
    backfill.add_argument("--sandbox", help="the sandbox to write into (default: this grid)")
    backfill.add_argument("--into", help="the address of a grid to write into")
    backfill.add_argument(
        "--dead-letters", help="where rejected rows go (default: <file>.rejects.jsonl)"
    )
    backfill.add_argument(
        "--rows-per-call",
        type=int,
        default=1000,
        help="rows sent (and committed as one transaction) per call (default 1000)",
    )
    backfill.set_defaults(handler=command_backfill)


def describe(summary: BackfillSummary) -> str:
    if summary.already_done:
        return (
            f"{summary.file} was applied before (backfill {summary.id} through "
            f"{summary.pipeline}: {summary.applied} applied, {summary.rejected} rejected): "
            "nothing done"
        )
    lines = [
        f"{summary.file}: {summary.rows} rows through {summary.pipeline}"
        + (f" (resumed at row {summary.resumed_from_row + 1})" if summary.resumed_from_row else "")
        + f": {summary.applied} applied, {summary.rejected} rejected, "
        f"{summary.duplicates} duplicates"
    ]
    for reject in summary.rejects[:REJECTS_SHOWN]:
        where = f", field {reject.field}" if reject.field else ""
        lines.append(f"  row {reject.row}: {reject.rule}{where}: {reject.message}")
    if len(summary.rejects) > REJECTS_SHOWN:
        lines.append(f"  ... {len(summary.rejects) - REJECTS_SHOWN} more")
    if summary.dead_letter_file:
        lines.append(f"rejected rows written to {summary.dead_letter_file}")
    return "\n".join(lines)


def command_backfill(client: Client, arguments: argparse.Namespace) -> int:
    bar: Any = None

    def progress(state: BackfillProgress) -> None:
        nonlocal bar
        if arguments.json:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(
                total=state.rows,
                initial=state.next_row,
                unit="row",
                unit_scale=True,
                dynamic_ncols=True,
                file=sys.stderr,
                desc="backfill",
                disable=None,
            )
        bar.update(max(0, state.next_row - bar.n))
        bar.set_postfix(applied=state.applied, rejected=state.rejected, refresh=False)

    try:
        summary = client.backfill(
            arguments.file,
            pipeline=arguments.pipeline,
            name=arguments.name,
            sandbox=arguments.sandbox,
            into=arguments.into,
            dead_letters=arguments.dead_letters,
            rows_per_call=arguments.rows_per_call,
            on_progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    if arguments.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(describe(summary))
    return 0
