"""`shoal procedures`: the procedures a coordinator serves, and calling one.

shoal procedures list                               name, parameters, module, calls by outcome
shoal procedures call transfer '"alice"' '"bob"' 10  each argument is JSON; prints the result
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from shoal._errors import InvalidArgumentError

if TYPE_CHECKING:
    from shoal._client import Client

ACTIONS = ["list", "call"]
SHOWN_COUNTERS = ("committed", "failed", "conflicted", "timed_out", "retries")


def add_parser(commands: Any) -> None:
    procedures = commands.add_parser("procedures", help="procedures: list them, call one")
    procedures.add_argument("action", choices=ACTIONS)
    procedures.add_argument("name", nargs="?", help="the procedure (call)")
    procedures.add_argument(
        "arguments", nargs="*", help="the call's arguments, each a JSON value (call)"
    )
    procedures.set_defaults(handler=command_procedures)


def _describe(info: dict[str, Any]) -> str:
    counters = info["counters"]
    lines = [f"{info['name']}({info['parameters']})"]
    if info["description"]:
        lines.append(f"  {info['description']}")
    lines.append(f"  module      {info['module']}")
    lines.append(
        "  calls       " + ", ".join(f"{name} {counters.get(name, 0)}" for name in SHOWN_COUNTERS)
    )
    return "\n".join(lines)


def command_procedures(client: Client, arguments: argparse.Namespace) -> int:
    if arguments.action == "list":
        infos = client.procedures()
        if arguments.name:
            infos = [info for info in infos if info["name"] == arguments.name]
        if arguments.json:
            print(json.dumps(infos))
        else:
            print("\n".join(_describe(info) for info in infos) or "(no procedures)")
        return 0
    if not arguments.name:
        raise InvalidArgumentError("shoal procedures call needs a procedure name", field="name")
    values = []
    for position, text in enumerate(arguments.arguments):
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as error:
            raise InvalidArgumentError(
                f"argument {position + 1} is not JSON ({error}); quote text: '\"alice\"'",
                field="arguments",
            ) from None
    result = client.call(arguments.name, *values)
    print(json.dumps(result, ensure_ascii=False))
    return 0
