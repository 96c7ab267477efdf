"""TLS of the gRPC port and the metrics endpoint, and the rule for plaintext listening.

Without TLS the coordinator listens on loopback only: anyone who reaches a plaintext
port reads every token sent to it. `--insecure-listen` lets an operator who knows
better (a private network, a sidecar terminating TLS) do it anyway, with a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass

import grpc

from coordinator.config import ConfigError, ServerConfig

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {item[4][0] for item in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@dataclass(frozen=True)
class TransportFiles:
    """The PEM bytes of the server's certificate chain, key and client CA."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None


def check_listening(config: ServerConfig) -> None:
    """Refuses plaintext on a non-loopback address unless --insecure-listen; warns then."""
    if config.tls_key and not config.tls_cert:
        raise ConfigError("tls_key is set without tls_cert")
    if config.tls_client_ca and not config.tls_cert:
        raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
    if config.tls:
        return
    hosts = [config.host]
    if config.metrics_port:
        hosts.append(config.metrics_host)
    for host in dict.fromkeys(hosts):
        if is_loopback(host):
            continue
        if not config.insecure_listen:
            raise ConfigError(
                f"refusing to listen on {host} without TLS: give --tls-cert and --tls-key, "
                "or --insecure-listen to accept plaintext from the network"
            )
        log.warning(
            "listening on %s without TLS (--insecure-listen): what crosses the network "
            "(calls, tokens, metrics) is plaintext",
            host,
        )


def read_private(path: str, what: str) -> bytes:
    """A secret file's bytes; refused when any user may read it."""
    try:
        mode = os.stat(path).st_mode
        if mode & 0o004:
            raise ConfigError(f"{what} {path} may be read by any user; chmod o-r {path} (or 600)")
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror or error}") from None


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror or error}") from None


def load_files(config: ServerConfig) -> TransportFiles | None:
    if not config.tls:
        return None
    if not config.tls_key:
        raise ConfigError("tls_cert is set without tls_key")
    files = TransportFiles(
        certificate_chain=_read(config.tls_cert, "tls_cert"),
        private_key=read_private(config.tls_key, "tls_key"),
        client_ca=_read(config.tls_client_ca, "tls_client_ca") if config.tls_client_ca else None,
    )
    # Checked here, where the message can name the files: grpcio only fails to bind.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_client_ca:
            context.load_verify_locations(config.tls_client_ca)
    except (ssl.SSLError, ValueError) as error:
        raise ConfigError(
            f"tls_cert {config.tls_cert} and tls_key do not make a usable certificate: {error}"
        ) from None
    return files


def server_credentials(files: TransportFiles) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(files.private_key, files.certificate_chain)],
        root_certificates=files.client_ca,
        require_client_auth=files.client_ca is not None,
    )


def metrics_ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The metrics endpoint's TLS: the gRPC port's certificate and client CA."""
    if not config.tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca:
        context.load_verify_locations(config.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
