"""The command line's argument parser: a command's options and arguments in any order.

argparse alone fills a list argument (``keys`` of ``shoal sketches estimate MAP KEY
[KEY ...]``) with what comes before the first option, and then refuses the rest:
``shoal sketches estimate visitors d1 --json d2`` would be an error. Each command's
parser here reads its options first and its arguments from what is left (argparse's
intermixed parsing), the way people type commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


class ArgumentParser(argparse.ArgumentParser):
    _parsing_intermixed = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # A parser with subcommands hands its arguments on to them: it parses as usual.
        # Intermixed parsing calls this method again for its two passes; those run as usual.
        if self._subparsers is not None or self._parsing_intermixed:
            return super().parse_known_args(args, namespace)
        self._parsing_intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing_intermixed = False


def subcommands(parser: argparse.ArgumentParser, **options: Any) -> Any:
    """``parser.add_subparsers(...)`` whose commands parse intermixed."""
    return parser.add_subparsers(parser_class=ArgumentParser, **options)
