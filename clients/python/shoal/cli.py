"""The ``shoal`` command line: serve, read and write keys, manage maps, inspect the grid.

Output is for people by default and JSON with ``--json``. A failure prints one line,
``shoal: CODE: message``, to standard error and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from shoal import (
    _auth_cli,
    _backfill_cli,
    _completion,
    _pipelines_cli,
    _procedures_cli,
    _reconcile_cli,
    _replay_cli,
    _sandbox_cli,
    _security_options,
    _sketch_cli,
    _sql_shell,
    _top_cli,
)
from shoal._argument_parser import subcommands
from shoal._cli_failure import describe, shown
from shoal._completion import completes, map_names
from shoal._errors import ShoalError

if TYPE_CHECKING:
    from shoal._client import Client

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C
DEFAULT_TARGET = "127.0.0.1:50051"
CONNECT_TIMEOUT_S = 1.0
CALL_TIMEOUT_S = 10.0


def _print(arguments: argparse.Namespace, value: Any, human: Callable[[], str]) -> None:
    if arguments.json:
        print(json.dumps(value, default=_json_default, ensure_ascii=False))
    else:
        print(human())


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return {"$bytes": base64.b64encode(value).decode()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _parse_json(text: str, what: str) -> Any:
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{what} is not valid JSON: {error}") from None


class UsageError(Exception):
    pass


def _show(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, indent=2)


# Commands -------------------------------------------------------------------------


def command_get(client: Client, arguments: argparse.Namespace) -> int:
    found = client.get_versioned(arguments.map, arguments.key)
    if found is None:
        _print(
            arguments,
            None,
            lambda: f"(no key '{shown(arguments.key)}' in '{shown(arguments.map)}')",
        )
        return EXIT_FAILURE if arguments.strict else 0
    _print(
        arguments,
        {"value": found.value, "version": found.version},
        lambda: f"{_show(found.value)}\n(version {found.version})",
    )
    return 0


def command_put(client: Client, arguments: argparse.Namespace) -> int:
    value = _parse_json(arguments.value, "value")
    version = client.put(
        arguments.map,
        arguments.key,
        value,
        if_version=arguments.if_version,
        if_absent=arguments.if_absent,
        if_exists=arguments.if_exists,
    )
    _print(arguments, {"version": version}, lambda: f"ok (version {version})")
    return 0


def command_delete(client: Client, arguments: argparse.Namespace) -> int:
    existed = client.delete(arguments.map, arguments.key, if_version=arguments.if_version)
    _print(
        arguments,
        {"existed": existed},
        lambda: (
            "deleted"
            if existed
            else f"(no key '{shown(arguments.key)}' in '{shown(arguments.map)}')"
        ),
    )
    return 0


def command_scan(client: Client, arguments: argparse.Namespace) -> int:
    for key, value in client.scan(arguments.map, prefix=arguments.prefix, limit=arguments.limit):
        if arguments.json:
            print(json.dumps({"key": key, "value": value}, default=_json_default))
        else:
            print(f"{key}\t{json.dumps(value, default=_json_default, ensure_ascii=False)}")
    return 0


def command_maps(client: Client, arguments: argparse.Namespace) -> int:
    action = arguments.action
    if action == "list":
        maps = client.list_maps()
        _print(
            arguments,
            [asdict(item) for item in maps],
            lambda: (
                _table(
                    ["name", "entries", "memory", "schema"],
                    [
                        [
                            item.name,
                            str(item.entries),
                            _bytes(item.memory_bytes),
                            f"v{item.schema_version}" if item.schema else "-",
                        ]
                        for item in maps
                    ],
                )
                if maps
                else "(no maps)"
            ),
        )
        return 0
    if not arguments.name:
        raise UsageError(f"shoal maps {action} needs a map name")
    if action == "create":
        schema = _parse_json(arguments.schema, "schema") if arguments.schema else None
        info = client.create_map(arguments.name, schema, if_not_exists=arguments.if_not_exists)
        _print(arguments, asdict(info), lambda: f"created map '{info.name}'")
    elif action == "describe":
        info = client.describe_map(arguments.name)
        _print(arguments, asdict(info), lambda: _show(asdict(info)))
    elif action == "drop":
        dropped = client.drop_map(arguments.name, if_exists=arguments.if_exists)
        _print(arguments, {"dropped": dropped}, lambda: "dropped" if dropped else "(no such map)")
    elif action == "alter":
        if not arguments.schema:
            raise UsageError("shoal maps alter needs --schema")
        info = client.alter_schema(arguments.name, _parse_json(arguments.schema, "schema"))
        _print(
            arguments, asdict(info), lambda: f"schema of '{info.name}' is v{info.schema_version}"
        )
    return 0


def command_status(client: Client, arguments: argparse.Namespace) -> int:
    info = client.cluster_info()
    _print(
        arguments,
        asdict(info),
        lambda: "\n".join(
            [
                f"node        {info.node_id} (shoal {info.version})",
                f"backend     {info.backend}, {info.partitions} partitions, fsync {info.fsync}",
                f"data dir    {info.data_dir}",
                f"maps        {info.maps}, {info.entries} entries",
                f"uptime      {info.uptime_ms / 1000:.1f} s",
            ]
        ),
    )
    return 0


def command_txn(client: Client, arguments: argparse.Namespace) -> int:
    from shoal.v1 import transactions_pb2

    if arguments.action == "list":
        reply = client._call(
            lambda s: s.transactions.ListTransactions,
            transactions_pb2.ListTransactionsRequest(),
            idempotent=True,
        )
        rows = [
            {
                "txn_id": item.txn_id,
                "state": item.state,
                "partitions": list(item.partitions),
                "lease_expires_at_ms": item.lease_expires_at_ms,
            }
            for item in reply.transactions
        ]
        _print(
            arguments,
            rows,
            lambda: (
                _table(
                    ["txn_id", "state", "partitions"],
                    [
                        [row["txn_id"], row["state"], ",".join(map(str, row["partitions"]))]
                        for row in rows
                    ],
                )
                if rows
                else "(no transactions in flight or in doubt)"
            ),
        )
        return 0
    if not arguments.txn_id:
        raise UsageError("shoal txn story needs a transaction id")
    story = client._call(
        lambda s: s.transactions.TransactionStory,
        transactions_pb2.TransactionStoryRequest(txn_id=arguments.txn_id),
        idempotent=True,
    )
    rows = [
        {"at_ms": item.at_ms, "event": item.event, "detail": item.detail}
        for item in story.transitions
    ]
    _print(
        arguments,
        rows,
        lambda: "\n".join(f"{row['at_ms']}  {row['event']:<28} {row['detail']}" for row in rows),
    )
    return 0


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join(lines)


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


# Parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description="The Shoal data grid.")
    _add_common_options(parser, defaults=True)
    commands = subcommands(parser, dest="command", required=True, metavar="command")

    commands.add_parser("serve", help="run a coordinator (see shoal serve --help)", add_help=False)

    get = commands.add_parser("get", help="print the value of a key")
    completes(get.add_argument("map"), map_names)
    get.add_argument("key")
    get.add_argument("--strict", action="store_true", help="exit 1 when the key is missing")
    get.set_defaults(handler=command_get)

    put = commands.add_parser("put", help="store a JSON value (or @file)")
    completes(put.add_argument("map"), map_names)
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--if-version", type=int)
    put.add_argument("--if-absent", action="store_true")
    put.add_argument("--if-exists", action="store_true")
    put.set_defaults(handler=command_put)

    delete = commands.add_parser("delete", help="delete a key")
    completes(delete.add_argument("map"), map_names)
    delete.add_argument("key")
    delete.add_argument("--if-version", type=int)
    delete.set_defaults(handler=command_delete)

    scan = commands.add_parser("scan", help="print a map's entries")
    completes(scan.add_argument("map"), map_names)
    scan.add_argument("--prefix", default="")
    scan.add_argument("--limit", type=int, default=0)
    scan.set_defaults(handler=command_scan)

    maps = commands.add_parser("maps", help="list, create, describe, alter or drop maps")
    maps.add_argument("action", choices=["list", "create", "describe", "drop", "alter"])
    completes(maps.add_argument("name", nargs="?"), map_names)
    maps.add_argument("--schema", help="schema as JSON, or @file")
    maps.add_argument("--if-not-exists", action="store_true")
    maps.add_argument("--if-exists", action="store_true")
    maps.set_defaults(handler=command_maps)

    _sql_shell.add_parser(commands)
    _sketch_cli.add_parser(commands)
    _pipelines_cli.add_parser(commands)
    _replay_cli.add_parser(commands)
    _procedures_cli.add_parser(commands)
    _backfill_cli.add_parser(commands)
    _reconcile_cli.add_parser(commands)
    _auth_cli.add_parser(commands)
    _sandbox_cli.add_parser(commands)
    _top_cli.add_parser(commands)

    status = commands.add_parser("status", help="show the node and the grid")
    status.set_defaults(handler=command_status)

    txn = commands.add_parser("txn", help="transactions in flight, and their stories")
    txn.add_argument("action", choices=["list", "story"])
    txn.add_argument("txn_id", nargs="?")
    txn.set_defaults(handler=command_txn)

    _completion.add_parser(commands)
    for name, command in commands.choices.items():
        if name not in ("serve", "completion"):
            _accept_common_options(command, sandbox=name != "sandbox")
    return parser


def _add_common_options(
    parser: argparse.ArgumentParser, *, defaults: bool, sandbox: bool = True
) -> None:
    """The options every command takes, before or after the command's name.

    The top-level parser holds the defaults; a subcommand's copy is SUPPRESSed so that
    it sets a value only when given after the command, and never resets one given
    before it (`shoal --json get m k` and `shoal get m k --json` mean the same).
    """

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--target",
        default=default(os.environ.get("SHOAL_TARGET", DEFAULT_TARGET)),
        help="coordinator address(es), comma-separated (or SHOAL_TARGET)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print JSON for scripts"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=default(None),
        help=f"deadline of each call (s; default {CALL_TIMEOUT_S:g}; for sql, the server's "
        "time limit of a statement)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=default(CONNECT_TIMEOUT_S),
        help="give up when no coordinator accepts a connection within this time (s)",
    )
    _security_options.add_options(parser, default)
    # A command with a --sandbox of its own (a replay's target) keeps it; the common one
    # sends the command itself to the sandbox.
    if sandbox and "--sandbox" not in parser._option_string_actions:
        parser.add_argument(
            "--sandbox",
            dest="data_sandbox",
            metavar="NAME",
            default=default(None),
            help="run the command against this sandbox of the coordinator",
        )


def _seconds(text: str) -> float:
    """A duration option: a positive, finite number of seconds (argparse names the option)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _accept_common_options(parser: argparse.ArgumentParser, *, sandbox: bool = True) -> None:
    """Adds the common options to a command and to each of its own subcommands."""
    _add_common_options(parser, defaults=False, sandbox=sandbox)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subcommand in action.choices.values():
                _accept_common_options(subcommand, sandbox=sandbox)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # The reader went away (`shoal scan m | head`): stop quietly, as Unix tools do.
        # Python would complain again flushing stdout at exit, so point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        # Ctrl-C before a command runs (while it starts): no traceback either.
        return EXIT_INTERRUPTED


def _main(arguments_list: list[str]) -> int:
    if arguments_list[:1] == ["serve"]:
        try:
            from coordinator.server import main as serve_main
        except ImportError:
            print(
                "shoal: serve needs the server distribution: pip install . (from the repo)",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        return serve_main(arguments_list[1:])
    parser = build_parser()
    _completion.complete_if_asked(parser)
    arguments = parser.parse_args(arguments_list)
    offline_handler: Callable[[argparse.Namespace], int] | None = getattr(
        arguments, "offline_handler", None
    )
    if offline_handler is not None:
        return offline_handler(arguments)
    from shoal._client import Client

    call_timeout_s = arguments.timeout or CALL_TIMEOUT_S
    try:
        tls = _security_options.tls_of(arguments)
        token = _security_options.token_of(arguments)
    except _security_options.SecurityOptionError as error:
        print(f"shoal: {error}", file=sys.stderr)
        return EXIT_USAGE
    client = Client(arguments.target, timeout_s=call_timeout_s, tls=tls, token=token)
    try:
        # Connect before the command: without a coordinator, this fails at once with a
        # line a person understands, not after the call's deadline and retries with
        # gRPC's text.
        if not client._connection.connect(min(arguments.connect_timeout, call_timeout_s)):
            print(
                f"shoal: UNAVAILABLE: {_security_options.unreachable(client.targets, tls)}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        handler: Callable[[Client, argparse.Namespace], int] = arguments.handler
        sandbox_name = getattr(arguments, "data_sandbox", None)
        if sandbox_name and arguments.command != "sandbox":
            production = client
            client = production.sandbox(sandbox_name)
            production.close()
        return handler(client, arguments)
    except UsageError as error:
        print(f"shoal: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ShoalError as error:
        print(f"shoal: {describe(error, client)}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        raise
    except OSError as error:
        print(f"shoal: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        # Ctrl-C: the call in flight is cancelled when the client closes below.
        print("shoal: CANCELLED: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
