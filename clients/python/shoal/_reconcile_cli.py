"""`shoal reconcile`: a pipeline's time window against what Kafka holds, and re-delivery.

shoal reconcile --pipeline orders-to-grid --from 2026-11-25T00:00Z --to 2026-11-25T01:00Z \\
      [--redeliver] [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal._client import Client
    from shoal._reconcile import Reconciliation

EXIT_DISCREPANCIES = 1


def add_parser(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile", help="a pipeline's window against Kafka: missing or twice-applied offsets"
    )
    reconcile.add_argument("--pipeline", required=True, help="a pipeline this coordinator runs")
    reconcile.add_argument("--from", dest="from_time", required=True, help="window start")
    reconcile.add_argument("--to", dest="to_time", required=True, help="window end (exclusive)")
    reconcile.add_argument(
        "--redeliver", action="store_true", help="re-apply the missing ranges, exactly once"
    )
    reconcile.set_defaults(handler=command_reconcile)


def _spans(spans: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{start}-{end - 1}" if end - start > 1 else str(start) for start, end in spans)


def table(report: Reconciliation) -> str:
    headers = [
        "partition",
        "offsets",
        "kafka",
        "applied",
        "rejected",
        "duplicates",
        "pending",
        "missing",
        "applied twice",
    ]
    rows = [
        [
            f"{item.topic}/{item.partition}",
            f"{item.start_offset}-{item.end_offset}",
            str(item.kafka_events),
            str(item.applied),
            str(item.rejected),
            str(item.duplicates),
            str(item.pending),
            _spans(item.missing) or "-",
            _spans(item.applied_twice) or "-",
        ]
        for item in report.partitions
    ]
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    redelivered = sum(item.redelivered for item in report.partitions)
    unverifiable = sum(item.unverifiable for item in report.partitions)
    if redelivered:
        lines.append(f"re-delivered {redelivered} events")
    if unverifiable:
        lines.append(f"{unverifiable} events are older than the bookkeeping keeps: not checked")
    lines.append(f"{report.discrepancies} discrepancies")
    return "\n".join(lines)


def command_reconcile(client: Client, arguments: argparse.Namespace) -> int:
    report = client.reconcile(
        arguments.pipeline, arguments.from_time, arguments.to_time, redeliver=arguments.redeliver
    )
    if arguments.json:
        print(json.dumps(report.to_dict()))
    else:
        print(table(report))
    return EXIT_DISCREPANCIES if report.discrepancies else 0
