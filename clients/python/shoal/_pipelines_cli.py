"""`shoal pipelines`: the Kafka pipelines a coordinator runs.

shoal pipelines list                  settings, state and counters of every pipeline
shoal pipelines pause orders-to-grid  stop applying (the batches in flight finish first)
shoal pipelines resume orders-to-grid
shoal pipelines lag [orders-to-grid]  per partition: committed offset, end offset, lag
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from shoal._errors import InvalidArgumentError

if TYPE_CHECKING:
    from shoal._client import Client

ACTIONS = ["list", "pause", "resume", "lag"]
SHOWN_COUNTERS = ("received", "applied", "duplicates", "dead_lettered")


def add_parser(commands: Any) -> None:
    pipelines = commands.add_parser("pipelines", help="Kafka pipelines: list, pause, resume, lag")
    pipelines.add_argument("action", choices=ACTIONS)
    pipelines.add_argument("name", nargs="?", help="the pipeline (all of them for list and lag)")
    pipelines.set_defaults(handler=command_pipelines)


def _stub(stubs: Any) -> Any:
    from shoal.v1 import pipelines_pb2_grpc

    stub = stubs.extra.get("pipelines")
    if stub is None:
        stub = stubs.extra["pipelines"] = pipelines_pb2_grpc.PipelinesStub(stubs.channel)
    return stub


def info_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "topics": list(info.topics),
        "group": info.group,
        "mode": info.mode,
        "state": info.state,
        "error": info.error,
        "schema": info.schema,
        "dead_letter_topic": info.dead_letter_topic,
        "batch_max": info.batch_max,
        "batch_ms": info.batch_ms,
        "max_in_flight": info.max_in_flight,
        "on_error": info.on_error,
        "dedup_key": info.dedup_key,
        "dedup_window": info.dedup_window,
        "module": info.module,
        "assigned": list(info.assigned),
        "counters": dict(sorted(info.counters.items())),
        "apply_latency_p50_ms": info.apply_latency_p50_ms,
        "apply_latency_p99_ms": info.apply_latency_p99_ms,
        "in_flight_batches": info.in_flight_batches,
        "dead_letters_pending": info.dead_letters_pending,
    }


def lag_json(item: Any) -> dict[str, Any]:
    return {
        "pipeline": item.pipeline,
        "topic": item.topic,
        "partition": item.partition,
        "committed_offset": item.committed_offset,
        "end_offset": item.end_offset,
        "lag": item.lag,
        "assigned_here": item.assigned_here,
    }


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return "\n".join(lines)


def _describe(info: dict[str, Any]) -> str:
    counters = info["counters"]
    lines = [
        f"{info['name']}: {info['state']}" + (f" ({info['error']})" if info["error"] else ""),
        f"  topics      {', '.join(info['topics'])} (group {info['group']}, {info['mode']})",
        f"  schema      {info['schema'] or '-'}; dead letters to {info['dead_letter_topic']}",
        f"  batches     {info['batch_max']} events or {info['batch_ms']} ms, "
        f"{info['max_in_flight']} in flight; on error: {info['on_error']}",
        f"  assigned    {', '.join(info['assigned']) or '-'}",
        "  events      " + ", ".join(f"{name} {counters.get(name, 0)}" for name in SHOWN_COUNTERS),
        f"  latency     p50 {info['apply_latency_p50_ms']:.0f} ms, "
        f"p99 {info['apply_latency_p99_ms']:.0f} ms (producer to commit)",
    ]
    return "\n".join(lines)


def command_pipelines(client: Client, arguments: argparse.Namespace) -> int:
    from shoal.v1 import pipelines_pb2

    action = arguments.action
    if action in ("pause", "resume") and not arguments.name:
        raise InvalidArgumentError(f"shoal pipelines {action} needs a pipeline name", field="name")
    if action == "list":
        reply = client._call(
            lambda s: _stub(s).List, pipelines_pb2.ListPipelinesRequest(), idempotent=True
        )
        infos = [info_json(info) for info in reply.pipelines]
        if arguments.name:
            infos = [info for info in infos if info["name"] == arguments.name]
        if arguments.json:
            print(json.dumps(infos))
        else:
            print("\n".join(_describe(info) for info in infos) or "(no pipelines)")
        return 0
    if action in ("pause", "resume"):
        method = "Pause" if action == "pause" else "Resume"
        info = client._call(
            lambda s: getattr(_stub(s), method),
            pipelines_pb2.PipelineRequest(name=arguments.name),
            idempotent=True,
        )
        shown = info_json(info)
        if arguments.json:
            print(json.dumps(shown))
        else:
            print(f"{shown['name']}: {shown['state']}")
        return 0
    reply = client._call(
        lambda s: _stub(s).Lag, pipelines_pb2.LagRequest(name=arguments.name or ""), idempotent=True
    )
    rows = [lag_json(item) for item in reply.partitions]
    if arguments.json:
        print(json.dumps(rows))
    elif not rows:
        print("(no partitions)")
    else:
        print(
            _table(
                ["pipeline", "topic", "partition", "committed", "end", "lag", "here"],
                [
                    [
                        row["pipeline"],
                        row["topic"],
                        str(row["partition"]),
                        str(row["committed_offset"]),
                        str(row["end_offset"]),
                        str(row["lag"]),
                        "yes" if row["assigned_here"] else "no",
                    ]
                    for row in rows
                ],
            )
        )
    return 0
