"""`shoal sandbox`: operators' sandboxes, and diffs of a sandbox against production.

shoal sandbox create incident-42 --from-snapshot [--maps orders,revenue] --ttl 4h
shoal sandbox list | describe incident-42 | delete incident-42
shoal sandbox diff incident-42 [--map orders] [--sample 20]
shoal sandbox operation <id> [--follow]

Creating a seeded sandbox and a diff show a progress bar (tqdm, on a terminal only) and
exit non-zero when they fail. Every data command reaches a sandbox with `--sandbox NAME`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from shoal._errors import InvalidArgumentError

if TYPE_CHECKING:
    from shoal._client import Client
    from shoal._sandbox import Operation, SandboxInfo

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
SAMPLE_DEFAULT = 10


def duration_seconds(text: str) -> float:
    """`90`, `90s`, `15m`, `4h`, `2d`: a positive number of seconds (argparse type)."""
    match = DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 4h or 2d")
    seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return seconds


def _names(values: list[str] | None) -> list[str]:
    """`--maps a,b --maps c` as [a, b, c]."""
    names: list[str] = []
    for value in values or []:
        names.extend(item.strip() for item in value.split(",") if item.strip())
    return names


def add_parser(commands: Any) -> None:
    sandbox = commands.add_parser(
        "sandbox", help="operators' sandboxes: create, list, describe, delete, diff"
    )
    actions = sandbox.add_subparsers(dest="sandbox_action", required=True, metavar="action")

    create = actions.add_parser("create", help="create a sandbox, empty or from a snapshot")
    create.add_argument("name")
    create.add_argument(
        "--from-snapshot", action="store_true", help="seed it from a snapshot of production"
    )
    create.add_argument(
        "--maps",
        action="append",
        help="the maps to seed, comma-separated (every map when omitted)",
    )
    create.add_argument(
        "--ttl", type=duration_seconds, help="time to live, like 30m, 4h, 2d (default 4h)"
    )
    create.add_argument(
        "--no-wait", action="store_true", help="print the operation and return at once"
    )
    create.set_defaults(handler=command_create)

    for action, text in (("describe", "one sandbox in detail"), ("delete", "remove a sandbox")):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("name")
        parser.set_defaults(handler=command_describe if action == "describe" else command_delete)

    listing = actions.add_parser("list", help="every sandbox of this coordinator")
    listing.set_defaults(handler=command_list)

    diff = actions.add_parser("diff", help="compare a sandbox with production, map by map")
    diff.add_argument("name")
    diff.add_argument(
        "--map",
        "--maps",
        dest="maps",
        action="append",
        help="the maps to compare, comma-separated or repeated (every map when omitted)",
    )
    diff.add_argument(
        "--sample",
        type=int,
        default=SAMPLE_DEFAULT,
        help=f"keys shown per kind of difference (default {SAMPLE_DEFAULT})",
    )
    diff.set_defaults(handler=command_diff)

    operation = actions.add_parser("operation", help="the state of a long operation")
    operation.add_argument("id")
    operation.add_argument("--follow", action="store_true", help="until it has finished")
    operation.set_defaults(handler=command_operation)


# Progress --------------------------------------------------------------------------


class ProgressBar:
    """A tqdm bar per phase of an operation, on standard error when it is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._bar: Any = None
        self._phase = ""

    def __call__(self, operation: Operation) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if operation.phase != self._phase:
            self.close()
            self._phase = operation.phase
            self._bar = tqdm(
                total=operation.total or None,
                desc=f"{self.label}: {operation.phase}",
                unit=f" {operation.unit}" if operation.unit else " it",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        bar = self._bar
        if bar is None:
            return
        if operation.total and bar.total != operation.total:
            bar.total = operation.total
        bar.n = operation.done
        bar.refresh()
        if operation.finished:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# Commands --------------------------------------------------------------------------


def command_create(client: Client, arguments: argparse.Namespace) -> int:
    maps = _names(arguments.maps)
    if maps and not arguments.from_snapshot:
        raise InvalidArgumentError("--maps chooses what a snapshot seeds: add --from-snapshot")
    bar = ProgressBar(f"sandbox {arguments.name}")
    try:
        created = client.sandboxes.create(
            arguments.name,
            from_snapshot=arguments.from_snapshot,
            maps=maps,
            ttl_s=arguments.ttl,
            wait=not arguments.no_wait,
            on_progress=bar,
        )
    finally:
        bar.close()
    from shoal._sandbox import Operation

    if isinstance(created, Operation):
        _print(arguments, operation_json(created), lambda: operation_text(created))
        return 0
    _print(
        arguments,
        info_json(created),
        lambda: (
            f"sandbox '{created.name}' ready at {created.address}"
            + (
                f" (seeded {created.seeded_entries} entries of {', '.join(created.maps)} at "
                f"version {created.snapshot_version})"
                if created.from_snapshot
                else " (empty)"
            )
        ),
    )
    return 0


def command_list(client: Client, arguments: argparse.Namespace) -> int:
    sandboxes = client.sandboxes.list()
    _print(
        arguments,
        [info_json(item) for item in sandboxes],
        lambda: (
            _table(
                ["name", "state", "address", "age", "ttl left", "memory", "seeded", "replays"],
                [
                    [
                        item.name,
                        item.state,
                        item.address or "-",
                        _duration(item.age_ms),
                        _duration(max(item.expires_at_ms - item.created_at_ms - item.age_ms, 0)),
                        _bytes(item.memory_bytes),
                        str(item.seeded_entries) if item.from_snapshot else "empty",
                        str(len(item.replays)),
                    ]
                    for item in sandboxes
                ],
            )
            if sandboxes
            else "(no sandboxes)"
        ),
    )
    return 0


def command_describe(client: Client, arguments: argparse.Namespace) -> int:
    info = client.sandboxes.describe(arguments.name)
    _print(arguments, info_json(info), lambda: describe_text(info))
    return 0


def command_delete(client: Client, arguments: argparse.Namespace) -> int:
    deleted = client.sandboxes.delete(arguments.name)
    _print(arguments, {"deleted": deleted}, lambda: f"deleted sandbox '{arguments.name}'")
    return 0


def command_diff(client: Client, arguments: argparse.Namespace) -> int:
    bar = ProgressBar(f"diff {arguments.name}")
    try:
        report = client.sandboxes.diff(
            arguments.name, maps=_names(arguments.maps), sample=arguments.sample, on_progress=bar
        )
    finally:
        bar.close()
    assert isinstance(report, dict)
    _print(arguments, report, lambda: diff_text(report))
    return 0


def command_operation(client: Client, arguments: argparse.Namespace) -> int:
    if arguments.follow:
        bar = ProgressBar(arguments.id)
        try:
            operation = client.sandboxes.wait(arguments.id, on_progress=bar)
        finally:
            bar.close()
    else:
        operation = client.sandboxes.operation(arguments.id)
    _print(arguments, operation_json(operation), lambda: operation_text(operation))
    return 1 if operation.state == "failed" else 0


# Output ----------------------------------------------------------------------------


def _print(arguments: argparse.Namespace, value: Any, human: Any) -> None:
    if arguments.json:
        print(json.dumps(value, ensure_ascii=False))
    else:
        print(human())


def info_json(info: SandboxInfo) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(info)


def operation_json(operation: Operation) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(operation)


def operation_text(operation: Operation) -> str:
    progress = f" {operation.done}/{operation.total} {operation.unit}" if operation.total else ""
    line = f"{operation.id}: {operation.state} ({operation.phase}{progress})"
    if operation.error:
        line += f": {operation.error_code}: {operation.error}"
    return line


def describe_text(info: SandboxInfo) -> str:
    lines = [
        f"name          {info.name}",
        f"state         {info.state}" + (f" ({info.error})" if info.error else ""),
        f"address       {info.address or '-'}",
        f"age           {_duration(info.age_ms)}",
        f"ttl           {_duration(info.ttl_ms)} (expires {_when(info.expires_at_ms)})",
        f"memory        {_bytes(info.memory_bytes)} of {_bytes(info.memory_bytes_max)}",
        f"disk          {_bytes(info.disk_bytes)} in {info.data_dir}",
        f"process       pid {info.pid or '-'}, restarted {info.restarts} times",
    ]
    if info.from_snapshot:
        lines.append(
            f"snapshot      version {info.snapshot_version} taken {_when(info.snapshot_at_ms)}: "
            f"{info.seeded_entries} entries of {', '.join(info.maps) or '(no maps)'}"
        )
    else:
        lines.append("snapshot      none (created empty)")
    lines.append(f"replays       {', '.join(info.replays) or 'none'}")
    return "\n".join(lines)


def diff_text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, found in report["maps"].items():
        lines.append(
            f"{name}: {found['only_in_production']} only in production, "
            f"{found['only_in_sandbox']} only in the sandbox, {found['different']} different, "
            f"{found['same']} the same"
        )
        for kind in ("only_in_production", "only_in_sandbox", "different"):
            for entry in found["samples"].get(kind, []):
                sides = []
                if "production" in entry:
                    sides.append(f"production {json.dumps(entry['production'])}")
                if "sandbox" in entry:
                    sides.append(f"sandbox {json.dumps(entry['sandbox'])}")
                lines.append(f"  {kind.replace('_', ' ')}: {entry['key']}: {'; '.join(sides)}")
        for field, numbers in found.get("numeric", {}).items():
            lines.append(
                f"  {field}: total {numbers['production_total']} in production, "
                f"{numbers['sandbox_total']} in the sandbox ({numbers['difference']:+})"
            )
            for item in numbers["largest_differences"]:
                lines.append(
                    f"    {item['key']}: {item['production']} -> {item['sandbox']} "
                    f"({item['difference']:+})"
                )
    return "\n".join(lines) or "(no maps)"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return "\n".join(lines)


def _duration(milliseconds: int) -> str:
    seconds = milliseconds / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def _when(milliseconds: int) -> str:
    if not milliseconds:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(milliseconds / 1000))
