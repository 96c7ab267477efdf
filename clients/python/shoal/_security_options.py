"""The command line's TLS and token options (each also an environment variable)."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shoal._cli_failure import no_coordinator
from shoal._tls import TLSConfig


class SecurityOptionError(ValueError):
    """An option names a file that cannot be used; the message says which and why."""


def add_options(parser: argparse.ArgumentParser, default: Callable[[Any], Any]) -> None:
    environment = os.environ
    parser.add_argument(
        "--tls",
        action="store_true",
        default=default(environment.get("SHOAL_TLS", "") not in ("", "0", "false", "no")),
        help="connect with TLS, trusting the system's roots or --tls-ca (or SHOAL_TLS=1)",
    )
    parser.add_argument(
        "--tls-ca",
        default=default(environment.get("SHOAL_TLS_CA") or None),
        help="PEM CA certificate to trust (implies --tls; or SHOAL_TLS_CA)",
    )
    parser.add_argument(
        "--tls-cert",
        default=default(environment.get("SHOAL_TLS_CERT") or None),
        help="PEM client certificate for mutual TLS (or SHOAL_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key",
        default=default(environment.get("SHOAL_TLS_KEY") or None),
        help="PEM key of --tls-cert (or SHOAL_TLS_KEY)",
    )
    parser.add_argument(
        "--token-file",
        default=default(environment.get("SHOAL_TOKEN_FILE") or None),
        help="file holding the bearer token (or SHOAL_TOKEN_FILE; SHOAL_TOKEN holds one "
        "directly). A token is never an option: other users see a process's arguments",
    )


def tls_of(arguments: argparse.Namespace) -> TLSConfig | None:
    ca, cert, key = arguments.tls_ca, arguments.tls_cert, arguments.tls_key
    if not (arguments.tls or ca or cert or key):
        return None
    if (cert is None) != (key is None):
        raise SecurityOptionError("--tls-cert and --tls-key go together (mutual TLS)")
    if key is not None:
        _refuse_if_readable_by_others(key, "--tls-key")
    return TLSConfig(ca=ca, cert=cert, key=key)


def token_of(
    arguments: argparse.Namespace, environment: Mapping[str, str] | None = None
) -> str | None:
    environment = os.environ if environment is None else environment
    path = arguments.token_file
    if path:
        _refuse_if_readable_by_others(path, "--token-file")
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip() or None
        except OSError as error:
            raise SecurityOptionError(
                f"cannot read --token-file {path}: {error.strerror}"
            ) from None
    return environment.get("SHOAL_TOKEN") or None


def _refuse_if_readable_by_others(path: str, what: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise SecurityOptionError(f"cannot read {what} {path}: {error.strerror}") from None
    if mode & 0o004:
        raise SecurityOptionError(
            f"{what} {path} may be read by any user; chmod o-r {path} (or 600)"
        )


def unreachable(targets: Sequence[str], tls: TLSConfig | None) -> str:
    """Why no coordinator took the connection: nothing listens, or the TLS settings of
    the two ends differ (a port that accepts TCP but not the channel)."""
    for target in targets:
        host, _, port = target.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
                pass
        except (OSError, ValueError):
            continue
        if tls is None:
            return (
                f"{target} accepts connections but not this plaintext one: "
                "if the coordinator serves TLS, add --tls (and --tls-ca)"
            )
        return (
            f"{target} accepts connections but the TLS handshake failed: check --tls-ca "
            "(the CA of the server's certificate), --tls-cert/--tls-key when the server wants "
            "a client certificate, and that the server serves TLS"
        )
    return no_coordinator(targets)
