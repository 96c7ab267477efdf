"""`shoal sketches`: create sketch maps, add items, read estimates and observed accuracy.

shoal sketches create visitors --kind hll -p lg_k=12
shoal sketches add visitors 2026-11-26 u1 u2 u3        (or --file items.txt, - for stdin)
shoal sketches estimate visitors 2026-11-26 [more keys: their union]
shoal sketches accuracy
shoal sketches list
shoal sketches export visitors 2026-11-26 --output day.hll
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from shoal._errors import InvalidArgumentError

if TYPE_CHECKING:
    from shoal._client import Client
    from shoal._sketch_results import Estimate

ACTIONS = ["list", "create", "add", "estimate", "accuracy", "export"]


def add_parser(commands: Any) -> None:
    sketches = commands.add_parser(
        "sketches", help="sketch maps: create, add items, estimate, accuracy"
    )
    sketches.add_argument("action", choices=ACTIONS)
    sketches.add_argument("map", nargs="?")
    sketches.add_argument("key", nargs="?")
    sketches.add_argument("items", nargs="*", help="add: items; estimate: more keys to merge")
    sketches.add_argument("--kind", help="create: hll, cms, bloom, reservoir, kll or topk")
    sketches.add_argument(
        "-p", "--param", action="append", default=[], help="create: a parameter, NAME=VALUE"
    )
    sketches.add_argument("--if-not-exists", action="store_true")
    sketches.add_argument("--file", help="add: read items from a file, one a line (- for stdin)")
    sketches.add_argument("--output", help="export: write the bytes to this file")
    sketches.set_defaults(handler=command_sketches)


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


def _emit(arguments: argparse.Namespace, document: Any, text: str) -> None:
    if arguments.json:
        print(json.dumps(document, ensure_ascii=False, default=str))
    else:
        print(text)


def _needs(arguments: argparse.Namespace, *names: str) -> None:
    for name in names:
        if not getattr(arguments, name):
            raise InvalidArgumentError(
                f"shoal sketches {arguments.action} needs a {name}", field=name
            )


def command_sketches(client: Client, arguments: argparse.Namespace) -> int:
    action = arguments.action
    if action == "list":
        maps = client.sketches.list()
        rows = [
            [item.name, item.kind, json.dumps(item.params), str(item.keys), str(item.memory_bytes)]
            for item in maps
        ]
        _emit(
            arguments,
            [dataclasses.asdict(item) for item in maps],
            _table(["name", "kind", "params", "keys", "bytes"], rows)
            if rows
            else "(no sketch maps)",
        )
    elif action == "create":
        _needs(arguments, "map", "kind")
        info = client.sketches.create(
            arguments.map,
            kind=arguments.kind,
            if_not_exists=arguments.if_not_exists,
            **_params(arguments.param),
        )
        _emit(
            arguments,
            dataclasses.asdict(info),
            f"created {info.kind} sketch map '{info.name}' {json.dumps(info.params)} "
            f"(at most {info.sketch_bytes_max} bytes a key)",
        )
    elif action == "add":
        _needs(arguments, "map", "key")
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
            f"added {len(items)} items (version {version})",
        )
    elif action == "estimate":
        _needs(arguments, "map", "key")
        keys = [arguments.key, *arguments.items]
        answer = (
            client.sketches.estimate(arguments.map, keys[0])
            if len(keys) == 1
            else client.sketches.merge_estimate(arguments.map, keys)
        )
        _emit(arguments, estimate_document(answer), describe(answer))
    elif action == "accuracy":
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
        table = (
            _table(["kind", "keys", "samples", "mean err", "max err", "bound", "outside"], rows)
            if rows
            else "(no monitored sketch keys yet)"
        )
        _emit(arguments, dataclasses.asdict(report), f"{header}\n{table}")
    else:
        _needs(arguments, "map", "key")
        data = client.sketches.export(arguments.map, arguments.key)
        if data is None:
            raise InvalidArgumentError(
                f"no sketch at key '{arguments.key}' in '{arguments.map}'", field="key"
            )
        if arguments.output:
            with open(arguments.output, "wb") as handle:
                handle.write(data)
            _emit(arguments, {"bytes": len(data)}, f"wrote {len(data)} bytes to {arguments.output}")
        else:
            _emit(arguments, {"hex": data.hex()}, data.hex())
    return 0


def estimate_document(answer: Estimate) -> dict[str, Any]:
    """An estimate as JSON-ready data."""
    from shoal._sketch_results import DistinctCount

    if isinstance(answer, DistinctCount):
        return {
            "kind": "hll",
            "value": answer.value,
            "intervals": {
                str(deviations): list(bounds) for deviations, bounds in answer.intervals.items()
            },
            "relative_standard_error": answer.relative_standard_error,
            "keys_found": answer.keys_found,
            "memory_bytes": answer.memory_bytes,
        }
    return dataclasses.asdict(answer)


def describe(answer: Estimate) -> str:
    """An estimate for people: the figure, then its error bound."""
    from shoal._sketch_results import (
        BloomSummary,
        CountMinSummary,
        DistinctCount,
        QuantileSummary,
        ReservoirSample,
        TopItems,
    )

    if isinstance(answer, DistinctCount):
        lower, upper = answer.interval(2)
        return (
            f"{answer.value:,.0f} distinct (95%: {lower:,.0f} to {upper:,.0f}; "
            f"relative standard error {answer.relative_standard_error:.2%})"
        )
    if isinstance(answer, CountMinSummary):
        return (
            f"{answer.total_weight:,.0f} items; every frequency overestimates by at most "
            f"{answer.error_bound:,.1f} (epsilon {answer.epsilon:.3g}) with probability "
            f"{answer.confidence:.3f}"
        )
    if isinstance(answer, BloomSummary):
        return (
            f"{answer.items_added:,} items added; {answer.bits_set:,} of {answer.bits:,} bits set; "
            f"expected false-positive rate {answer.expected_false_positive_rate:.3g} "
            f"(configured {answer.error_rate:g} at {answer.capacity_items:,} items)"
        )
    if isinstance(answer, ReservoirSample):
        lines = [json.dumps(item, ensure_ascii=False) for item in answer.items]
        return "\n".join([*lines, f"({len(answer.items)} of {answer.items_seen:,} items seen)"])
    if isinstance(answer, QuantileSummary):
        rows = [
            [f"{item.rank:g}", f"{item.value:g}", f"{item.lower_value:g} to {item.upper_value:g}"]
            for item in answer.quantiles
        ]
        return (
            _table(["rank", "value", "99% range"], rows)
            + f"\n({answer.items_seen:,} items; rank error {answer.normalized_rank_error:.3%})"
        )
    assert isinstance(answer, TopItems)
    rows = [
        [item.item, str(item.estimate), f"{item.lower_bound} to {item.upper_bound}"]
        for item in answer.items
    ]
    return (
        _table(["item", "estimate", "bounds"], rows) if rows else "(empty)"
    ) + f"\n(total weight {answer.total_weight:,}; maximum error {answer.maximum_error:,})"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join(lines)
