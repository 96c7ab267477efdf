"""Shell completion of the `shoal` command: commands, options, and map names.

argcomplete does the work: the shell runs `shoal` with _ARGCOMPLETE set, and the parser
answers with the completions instead of running a command. `shoal completion bash`
prints the shell code to load once (`eval "$(shoal completion bash)"` in ~/.bashrc).
Map names are asked from the coordinator, briefly, and are simply not offered when it
does not answer.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

SHELLS = ["bash", "zsh", "fish", "tcsh", "powershell"]
# How long a completion may wait for the coordinator's map names (a person is waiting
# on the Tab key); SHOAL_COMPLETION_TIMEOUT_S changes it.
ASK_TIMEOUT_S = 1.0

Completer = Callable[..., list[str]]


def add_parser(commands: Any) -> None:
    completion = commands.add_parser(
        "completion",
        help='print the shell code that completes shoal: eval "$(shoal completion bash)"',
        description="Print the code that makes your shell complete shoal's commands, "
        "options and map names. Load it from your shell's start-up file.",
        epilog='bash, in ~/.bashrc:  eval "$(shoal completion bash)"\n'
        'zsh, in ~/.zshrc:    eval "$(shoal completion zsh)"\n'
        "fish:                shoal completion fish | source",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", nargs="?", choices=SHELLS, default="bash")
    completion.set_defaults(offline_handler=command_completion)


def command_completion(arguments: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    print(shellcode(["shoal"], shell=arguments.shell))
    return 0


def complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """When the shell asks for completions, print them and exit; otherwise do nothing
    (and import nothing: a normal command does not pay for completion)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    # Options are offered once a "-" is typed; before that, commands and names.
    argcomplete.autocomplete(parser, always_complete_options=False)


def completes(action: argparse.Action, completer: Completer) -> None:
    """Offer ``completer``'s answers for this argument."""
    action.completer = completer  # type: ignore[attr-defined]


def _names(parsed_args: argparse.Namespace, listing: Callable[[Any], list[str]]) -> list[str]:
    from shoal._client import Client

    try:
        timeout_s = float(os.environ.get("SHOAL_COMPLETION_TIMEOUT_S", ASK_TIMEOUT_S))
        with Client(getattr(parsed_args, "target", ""), timeout_s=timeout_s) as client:
            if not client._connection.connect(timeout_s):
                return []
            return listing(client)
    except Exception:
        # Whatever goes wrong (no server, a bad --target), a completion prints nothing
        # rather than a traceback into the person's command line.
        return []


def map_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    names = _names(parsed_args, lambda client: [item.name for item in client.list_maps()])
    return [name for name in names if name.startswith(prefix)]


def sketch_map_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    names = _names(parsed_args, lambda client: [item.name for item in client.sketches.list()])
    return [name for name in names if name.startswith(prefix)]
