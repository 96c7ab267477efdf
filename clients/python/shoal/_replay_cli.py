"""`shoal replay`: replays of a Kafka range through a pipeline into a sandbox or another grid.

shoal replay start --pipeline pipelines/orders_v2.py --topic orders \\
      --from 2026-11-25T00:00Z --to 2026-11-25T06:00Z [--rate 20000/s] \\
      (--sandbox incident-42 | --into host:port) [--follow]
shoal replay start ... --from-offsets 0:1200,1:900 [--to-offsets 0:5000,1:4000]
shoal replay status <id> [--follow]     a progress bar: processed / total, rate, ETA, rejects
shoal replay cancel <id>
shoal replay list [--sandbox NAME | --into host:port]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from shoal._errors import InvalidArgumentError

if TYPE_CHECKING:
    from shoal._client import Client
    from shoal._replays import ReplayStatus

EXIT_FAILED = 1


def add_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay", help="replay a Kafka range through a pipeline into a sandbox or grid"
    )
    actions = replay.add_subparsers(dest="replay_action", required=True, metavar="ACTION")

    start = actions.add_parser("start", help="start a replay")
    start.add_argument(
        "--pipeline",
        required=True,
        help="a pipeline file (.py), or the name of a pipeline the coordinator runs",
    )
    start.add_argument("--name", default="", help="which pipeline of the file (when several)")
    start.add_argument("--topic", default="", help="the topic (default: the pipeline's)")
    start.add_argument("--from", dest="from_time", help="window start, ISO 8601 (UTC if no zone)")
    start.add_argument("--to", dest="to_time", help="window end (exclusive)")
    start.add_argument("--from-offsets", help="partition:offset,... (inclusive)")
    start.add_argument("--to-offsets", help="partition:offset,... (exclusive; default: the end)")
    start.add_argument("--rate", help="events per second at most, as 20000/s or 20000")
    start.add_argument("--sandbox", help="the sandbox to replay into")
    start.add_argument("--into", help="the address of a grid to replay into")
    start.add_argument("--kafka", default="", help="Kafka bootstrap servers (default: the grid's)")
    start.add_argument("--follow", action="store_true", help="draw progress until it ends")
    start.set_defaults(handler=command_start)

    status = actions.add_parser("status", help="a replay's progress")
    status.add_argument("id")
    status.add_argument("--follow", action="store_true", help="draw progress until it ends")
    status.set_defaults(handler=command_status)

    cancel = actions.add_parser("cancel", help="stop a replay (what it applied stays)")
    cancel.add_argument("id")
    cancel.set_defaults(handler=command_cancel)

    listing = actions.add_parser("list", help="the replays of a grid")
    listing.add_argument("--sandbox")
    listing.add_argument("--into")
    listing.set_defaults(handler=command_list)


def parse_offsets(text: str | None, option: str) -> dict[int, int]:
    """``0:1200,1:900`` -> {0: 1200, 1: 900}."""
    if not text:
        return {}
    found: dict[int, int] = {}
    for item in text.split(","):
        partition, separator, offset = item.strip().partition(":")
        try:
            if not separator:
                raise ValueError
            number, position = int(partition), int(offset)
            # A partition travels as uint32 and an offset as int64: out of those ranges
            # protobuf would raise a bare ValueError later.
            if not (0 <= number < 2**32 and -(2**63) <= position < 2**63):
                raise ValueError
            found[number] = position
        except ValueError:
            raise InvalidArgumentError(
                f"{option} takes partition:offset pairs separated by commas, got {item!r}",
                field=option.lstrip("-").replace("-", "_"),
            ) from None
    return found


def parse_rate(text: str | None) -> float:
    if not text:
        return 0.0
    number = text.strip().removesuffix("/s")
    try:
        rate = float(number)
    except ValueError:
        raise InvalidArgumentError(
            f"--rate takes events per second, as 20000/s, got {text!r}", field="rate_per_s"
        ) from None
    if not 0 < rate < float("inf"):
        raise InvalidArgumentError(f"--rate must be positive, got {text!r}", field="rate_per_s")
    return rate


def _line(status: ReplayStatus) -> str:
    eta = f"{status.eta_s:.0f} s" if status.eta_s >= 0 else "?"
    text = (
        f"{status.id}: {status.state}, {status.processed}/{status.total} offsets, "
        f"applied {status.applied}, rejected {status.rejected}, duplicates {status.duplicates}"
    )
    if status.state == "running":
        text += f", {status.rate_per_s:.0f}/s, ETA {eta}"
    if status.rejected:
        text += f"; rejected events in {status.dead_letter_topic}"
    if status.error:
        text += f" ({status.error})"
    return text


def _print(status: ReplayStatus, arguments: argparse.Namespace) -> None:
    if arguments.json:
        print(json.dumps(status.to_dict()))
    else:
        print(_line(status))


def _exit_code(status: ReplayStatus) -> int:
    return EXIT_FAILED if status.state in ("failed", "cancelled") else 0


def follow(client: Client, replay_id: str, arguments: argparse.Namespace) -> int:
    """Follows a replay to its end: a progress bar on a terminal, one JSON status a line
    with --json, and the last status."""
    last: ReplayStatus | None = None
    if arguments.json:
        for status in client.replays.follow(replay_id):
            print(json.dumps(status.to_dict()), flush=True)
            last = status
    else:
        from tqdm import tqdm

        bar: Any = None
        try:
            for status in client.replays.follow(replay_id):
                if bar is None:
                    bar = tqdm(
                        total=status.total,
                        initial=status.processed,
                        unit="ev",
                        unit_scale=True,
                        dynamic_ncols=True,
                        file=sys.stderr,
                        desc=status.id.rpartition("/")[2],
                        disable=None,
                    )
                bar.update(max(0, status.processed - bar.n))
                bar.set_postfix(applied=status.applied, rejected=status.rejected, refresh=False)
                last = status
        finally:
            if bar is not None:
                bar.close()
        if last is not None:
            print(_line(last))
    return 0 if last is None else _exit_code(last)


def command_start(client: Client, arguments: argparse.Namespace) -> int:
    status = client.replays.start(
        pipeline=arguments.pipeline,
        name=arguments.name,
        topic=arguments.topic,
        from_time=arguments.from_time,
        to_time=arguments.to_time,
        from_offsets=parse_offsets(arguments.from_offsets, "--from-offsets"),
        to_offsets=parse_offsets(arguments.to_offsets, "--to-offsets"),
        rate_per_s=parse_rate(arguments.rate),
        sandbox=arguments.sandbox,
        into=arguments.into,
        kafka=arguments.kafka,
    )
    if arguments.follow:
        if not arguments.json:
            print(f"replay {status.id} started", file=sys.stderr)
        return follow(client, status.id, arguments)
    _print(status, arguments)
    return _exit_code(status)


def command_status(client: Client, arguments: argparse.Namespace) -> int:
    if arguments.follow:
        return follow(client, arguments.id, arguments)
    status = client.replays.status(arguments.id)
    _print(status, arguments)
    return _exit_code(status)


def command_cancel(client: Client, arguments: argparse.Namespace) -> int:
    status = client.replays.cancel(arguments.id)
    _print(status, arguments)
    return 0


def command_list(client: Client, arguments: argparse.Namespace) -> int:
    statuses = client.replays.list(sandbox=arguments.sandbox, into=arguments.into)
    if arguments.json:
        print(json.dumps([status.to_dict() for status in statuses]))
    else:
        print("\n".join(_line(status) for status in statuses) or "(no replays)")
    return 0
