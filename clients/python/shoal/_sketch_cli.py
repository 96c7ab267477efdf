"""`shoal sketches`: one subcommand for each sketch call of the SDK, each with its --help.

shoal sketches create visitors --kind hll -p lg_k=12
shoal sketches add visitors 2026-11-26 u1 u2 u3        (or --file items.txt, - for stdin)
shoal sketches estimate visitors 2026-11-26 [more keys: their union]
shoal sketches frequency words day-1 apple pear         (cms, topk)
shoal sketches contains seen day-1 u1 u9                (bloom)
shoal sketches quantiles latency day-1 [0.5 0.99]       (kll; also ranks)
shoal sketches top words day-1 -k 5                     (topk)
shoal sketches sample picks day-1                       (reservoir)
shoal sketches accuracy | list | export visitors 2026-11-26 --output day.hll

The queries take one key and, with --merge KEY (repeated), more keys whose sketches the
server merges (a union) before answering.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shoal._argument_parser import subcommands
from shoal._completion import completes, sketch_map_names
from shoal._errors import InvalidArgumentError

if TYPE_CHECKING:
    from shoal._client import Client

Handler = Callable[["Client", argparse.Namespace], None]

KINDS = ["hll", "cms", "bloom", "reservoir", "kll", "topk"]


def add_parser(commands: Any) -> None:
    sketches = commands.add_parser(
        "sketches",
        help="sketch maps: create, add, estimate, frequency, contains, quantiles, top, ...",
        description="Sketch maps: one probabilistic sketch per key. "
        "Each subcommand has its own --help.",
    )
    actions = subcommands(sketches, dest="action", required=True, metavar="subcommand")

    def subcommand(name: str, handler: Handler, summary: str, example: str) -> Any:
        parser = actions.add_parser(
            name,
            help=summary.replace("%", "%%"),
            description=summary,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=_run(handler))
        return parser

    subcommand(
        "list",
        command_list,
        "list the sketch maps: kind, parameters, keys, bytes",
        "shoal sketches list",
    )

    create = subcommand(
        "create",
        command_create,
        "create a sketch map of one kind",
        "shoal sketches create visitors --kind hll -p lg_k=12",
    )
    create.add_argument("map")  # a new name: nothing to complete
    create.add_argument("--kind", required=True, choices=KINDS)
    create.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the kind (lg_k, width, depth, epsilon, delta, capacity_items, "
        "error_rate, k, lg_max_k); see the README's table",
    )
    create.add_argument("--if-not-exists", action="store_true")

    add = subcommand(
        "add",
        command_add,
        "add items to the sketch at a key (one atomic write)",
        "shoal sketches add visitors 2026-11-26 u1 u2 u3",
    )
    completes(add.add_argument("map"), sketch_map_names)
    add.add_argument("key")
    add.add_argument("items", nargs="*", help="the items (numbers for kll)")
    add.add_argument("--file", help="also read items from this file, one a line (- for stdin)")

    estimate = subcommand(
        "estimate",
        command_estimate,
        "the kind's main answer, with its error bound",
        "shoal sketches estimate visitors 2026-11-25 2026-11-26",
    )
    completes(estimate.add_argument("map"), sketch_map_names)
    estimate.add_argument("key")
    estimate.add_argument("keys", nargs="*", help="more keys: the answer is for their union")

    frequency = subcommand(
        "frequency",
        command_frequency,
        "cms, topk: how often each item occurred, with bounds",
        "shoal sketches frequency words day-1 apple pear",
    )
    _target(frequency)
    frequency.add_argument("items", nargs="+", metavar="item")

    contains = subcommand(
        "contains",
        command_contains,
        "bloom: was each item added? (never a false 'never added')",
        "shoal sketches contains seen day-1 u1 u9",
    )
    _target(contains)
    contains.add_argument("items", nargs="+", metavar="item")

    quantiles = subcommand(
        "quantiles",
        command_quantiles,
        "kll: the values at normalized ranks (0 to 1), with 99% ranges",
        "shoal sketches quantiles latency day-1 0.5 0.9 0.99",
    )
    _target(quantiles)
    quantiles.add_argument(
        "ranks", nargs="*", type=float, metavar="rank", help="default: a summary set of ranks"
    )

    ranks = subcommand(
        "ranks",
        command_ranks,
        "kll: the fraction of items at or below each value",
        "shoal sketches ranks latency day-1 100 250",
    )
    _target(ranks)
    ranks.add_argument("values", nargs="+", type=float, metavar="value")

    top = subcommand(
        "top",
        command_top,
        "topk: the heaviest items, with certain bounds",
        "shoal sketches top words day-1 -k 5",
    )
    _target(top)
    top.add_argument("-k", type=int, default=0, help="how many (default: the map's k)")

    sample = subcommand(
        "sample",
        command_sample,
        "reservoir: the uniform sample of the items added",
        "shoal sketches sample picks day-1",
    )
    _target(sample)

    subcommand(
        "accuracy",
        command_accuracy,
        "the observed error of each kind on the monitored keys, next to its bound",
        "shoal sketches accuracy",
    )

    export = subcommand(
        "export",
        command_export,
        "the portable bytes of a key's sketch (DataSketches' format where it has one)",
        "shoal sketches export visitors 2026-11-26 --output day.hll",
    )
    completes(export.add_argument("map"), sketch_map_names)
    export.add_argument("key")
    export.add_argument("--output", help="write the bytes to this file (default: print hex)")


def _target(parser: argparse.ArgumentParser) -> None:
    completes(parser.add_argument("map"), sketch_map_names)
    parser.add_argument("key")
    parser.add_argument(
        "--merge",
        action="append",
        default=[],
        metavar="KEY",
        help="also this key's sketch: the answer is for the union (repeatable)",
    )


def _keys(arguments: argparse.Namespace) -> list[str]:
    return [arguments.key, *arguments.merge]


def _run(handler: Handler) -> Callable[[Client, argparse.Namespace], int]:
    def run(client: Client, arguments: argparse.Namespace) -> int:
        handler(client, arguments)
        return 0

    return run


def _emit(arguments: argparse.Namespace, document: Any, text: Callable[[], str]) -> None:
    if arguments.json:
        print(json.dumps(document, ensure_ascii=False, default=str))
    else:
        print(text())


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _params(pairs: list[str]) -> dict[str, int | float]:
    params: dict[str, int | float] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise InvalidArgumentError(f"--param {pair!r} must be NAME=VALUE", field="param")
        try:
            params[name] = _number(value)
        except ValueError:
            raise InvalidArgumentError(
                f"--param {name}: {value!r} is not a number", field=name
            ) from None
    return params


# Subcommands ----------------------------------------------------------------------


def command_list(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import table

    maps = client.sketches.list()
    rows = [
        [item.name, item.kind, json.dumps(item.params), str(item.keys), str(item.memory_bytes)]
        for item in maps
    ]
    _emit(
        arguments,
        [dataclasses.asdict(item) for item in maps],
        lambda: (
            table(["name", "kind", "params", "keys", "bytes"], rows) if rows else "(no sketch maps)"
        ),
    )


def command_create(client: Client, arguments: argparse.Namespace) -> None:
    info = client.sketches.create(
        arguments.map,
        kind=arguments.kind,
        if_not_exists=arguments.if_not_exists,
        **_params(arguments.param),
    )
    _emit(
        arguments,
        dataclasses.asdict(info),
        lambda: (
            f"created {info.kind} sketch map '{info.name}' {json.dumps(info.params)} "
            f"(at most {info.sketch_bytes_max} bytes a key)"
        ),
    )


def command_add(client: Client, arguments: argparse.Namespace) -> None:
    items: list[Any] = list(arguments.items)
    if arguments.file == "-":
        items.extend(line.rstrip("\n") for line in sys.stdin if line.strip())
    elif arguments.file:
        with open(arguments.file, encoding="utf-8") as handle:
            items.extend(line.rstrip("\n") for line in handle if line.strip())
    if not items:
        raise InvalidArgumentError("shoal sketches add needs items (or --file)", field="items")
    described = client.describe_map(arguments.map).sketch or {}
    if described.get("kind") == "kll":
        # Items come in as text; a kll sketch takes numbers.
        try:
            items = [_number(item) for item in items]
        except ValueError as error:
            raise InvalidArgumentError(f"kll takes numbers: {error}", field="items") from None
    version = client.sketches.add(arguments.map, arguments.key, items)
    _emit(
        arguments,
        {"items": len(items), "version": version},
        lambda: f"added {len(items)} items (version {version})",
    )


def command_estimate(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe, estimate_document

    keys = [arguments.key, *arguments.keys]
    answer = (
        client.sketches.estimate(arguments.map, keys[0])
        if len(keys) == 1
        else client.sketches.merge_estimate(arguments.map, keys)
    )
    _emit(arguments, estimate_document(answer), lambda: describe(answer))


def command_frequency(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe_frequencies

    answers = client.sketches.frequencies(arguments.map, _keys(arguments), arguments.items)
    _emit(
        arguments,
        [dataclasses.asdict(item) for item in answers],
        lambda: describe_frequencies(answers),
    )


def command_contains(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe_membership

    present = client.sketches.contains_many(arguments.map, _keys(arguments), arguments.items)
    _emit(
        arguments,
        [
            {"item": item, "present": found}
            for item, found in zip(arguments.items, present, strict=True)
        ],
        lambda: describe_membership(arguments.items, present),
    )


def command_quantiles(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe

    answer = client.sketches.quantiles(arguments.map, _keys(arguments), arguments.ranks or None)
    _emit(arguments, dataclasses.asdict(answer), lambda: describe(answer))


def command_ranks(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe_ranks

    answers = client.sketches.ranks(arguments.map, _keys(arguments), arguments.values)
    _emit(
        arguments, [dataclasses.asdict(item) for item in answers], lambda: describe_ranks(answers)
    )


def command_top(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe

    answer = client.sketches.top(arguments.map, _keys(arguments), arguments.k or None)
    _emit(arguments, dataclasses.asdict(answer), lambda: describe(answer))


def command_sample(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import describe

    answer = client.sketches.sample(arguments.map, _keys(arguments))
    _emit(arguments, dataclasses.asdict(answer), lambda: describe(answer))


def command_accuracy(client: Client, arguments: argparse.Namespace) -> None:
    from shoal._sketch_text import table

    report = client.sketches.accuracy()
    rows = [
        [
            kind,
            str(item.keys),
            str(item.samples),
            f"{item.mean_relative_error:.4g}",
            f"{item.max_relative_error:.4g}",
            f"{item.error_bound:.4g}",
            str(item.outside_bound),
        ]
        for kind, item in sorted(report.kinds.items())
    ]
    header = (
        f"sample rate {report.sample_rate:g}, {report.tracked_keys} keys tracked "
        f"({report.overflowed_keys} overflowed, {report.untrusted_keys} untrusted)"
    )
    _emit(
        arguments,
        dataclasses.asdict(report),
        lambda: (
            header
            + "\n"
            + (
                table(["kind", "keys", "samples", "mean err", "max err", "bound", "outside"], rows)
                if rows
                else "(no monitored sketch keys yet)"
            )
        ),
    )


def command_export(client: Client, arguments: argparse.Namespace) -> None:
    data = client.sketches.export(arguments.map, arguments.key)
    if data is None:
        raise InvalidArgumentError(
            f"no sketch at key '{arguments.key}' in '{arguments.map}'", field="key"
        )
    if arguments.output:
        with open(arguments.output, "wb") as handle:
            handle.write(data)
        _emit(
            arguments,
            {"bytes": len(data)},
            lambda: f"wrote {len(data)} bytes to {arguments.output}",
        )
    else:
        _emit(arguments, {"hex": data.hex()}, data.hex)
