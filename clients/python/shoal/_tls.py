"""TLS settings of a client: the CA to trust, and a certificate and key for mutual TLS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc


@dataclass(frozen=True)
class TLSConfig:
    """How a client speaks TLS to the coordinators.

    ``ca`` is the CA certificate to trust (a PEM file's path, or its bytes; None trusts
    the system's roots); ``cert`` and ``key`` are the client's own certificate and key,
    for servers that ask for one (mutual TLS); ``server_name`` checks the server's
    certificate against this name instead of the address's host.
    """

    ca: str | Path | bytes | None = None
    cert: str | Path | bytes | None = None
    key: str | Path | bytes | None = field(default=None, repr=False)
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLSConfig takes cert and key together (mutual TLS), or neither")

    def credentials(self) -> grpc.ChannelCredentials:
        import grpc

        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca, "ca"),
            private_key=_pem(self.key, "key"),
            certificate_chain=_pem(self.cert, "cert"),
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        if self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []


def _pem(value: str | Path | bytes | None, what: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    try:
        return Path(value).read_bytes()
    except OSError as error:
        raise ValueError(f"TLSConfig {what}: cannot read {value}: {error.strerror}") from None


def resolve(tls: bool | TLSConfig | None) -> TLSConfig | None:
    """``tls=True`` is TLS trusting the system's roots; False or None is plaintext."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return TLSConfig()
    if isinstance(tls, TLSConfig):
        return tls
    raise TypeError(f"tls must be True, False or a TLSConfig, got {type(tls).__name__}")


def with_token(
    metadata: Sequence[tuple[str, str]] | None, token: str | None
) -> list[tuple[str, str]] | None:
    """The call metadata with the bearer token added (``authorization: Bearer ...``)."""
    if token is None:
        return None if metadata is None else list(metadata)
    token = token.strip()
    if not token or not token.isprintable() or not token.isascii() or " " in token:
        raise ValueError("token must be one word of printable ASCII (as shoal auth prints it)")
    return [*(metadata or ()), ("authorization", f"Bearer {token}")]


# What gRPC says when the two ends disagree about TLS, and what it means to a person.
_PLAINTEXT_TO_TLS = ("Socket closed", "Connection reset", "WRONG_VERSION_NUMBER")
_HANDSHAKE = ("handshake", "CERTIFICATE_VERIFY_FAILED", "SSL_ERROR")


def explain_unavailable(message: str, tls: TLSConfig | None) -> str:
    """gRPC's connection failure in words that name the likely TLS mismatch."""
    if tls is None and any(sign in message for sign in _PLAINTEXT_TO_TLS):
        return (
            f"{message} (a plaintext connection was closed: if the coordinator serves TLS, "
            "connect with tls=True or a TLSConfig; shoal --tls)"
        )
    if tls is not None and any(sign in message for sign in _HANDSHAKE):
        return (
            f"{message} (the TLS handshake failed: the server's certificate is not trusted by "
            "the CA given, the server wants a client certificate, or it serves plaintext)"
        )
    return message
