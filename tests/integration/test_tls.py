"""TLS and mutual TLS with certificates made in the test: the gRPC port and /metrics,
plaintext against TLS failing in words that say so, a wrong CA refused, client
certificates mapped to principals, and the CLI's TLS options."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import (
    AsyncClient,
    Client,
    RetryPolicy,
    TLSConfig,
    UnauthenticatedError,
    UnavailableError,
)
from tests.support.certificates import Authority, Issued
from tests.support.secured import BOOTSTRAP_TOKEN, secured_server
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

SHORT_TIMEOUT_S = 5.0


class Certificates:
    def __init__(self, folder: Path) -> None:
        self.authority = Authority(folder / "ca")
        self.server = self.authority.issue("shoal-server", server=True)
        self.client = self.authority.issue("svc-reporting", server=False)
        self.stranger = self.authority.issue("stranger", server=False)
        self.other_authority = Authority(folder / "other", name="other-ca")
        self.forged = self.other_authority.issue("svc-reporting-forged", server=False)

    def tls(self, client: Issued | None = None, *, ca: Path | None = None) -> TLSConfig:
        return TLSConfig(
            ca=str(ca or self.authority.cert),
            cert=None if client is None else str(client.cert),
            key=None if client is None else str(client.key),
        )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(Path(tmp_path_factory.mktemp("certificates")))


@pytest.fixture(scope="module")
def tls_server(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """TLS without client certificates; auth on (as TLS makes it by default)."""
    server = ServerProcess(
        Path(tmp_path_factory.mktemp("tls")) / "data",
        extra_args=[
            "--tls-cert",
            str(certificates.server.cert),
            "--tls-key",
            str(certificates.server.key),
        ],
        environment={"SHOAL_AUTH_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
    ).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def mutual_server(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    metrics_port = _free_port()
    server = secured_server(
        Path(tmp_path_factory.mktemp("mtls")) / "data",
        "--tls-cert",
        str(certificates.server.cert),
        "--tls-key",
        str(certificates.server.key),
        "--tls-client-ca",
        str(certificates.authority.cert),
        "--metrics-port",
        str(metrics_port),
    )
    server.metrics_port = metrics_port  # type: ignore[attr-defined]
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_tls_serves_a_client_that_trusts_its_ca_and_auth_is_on_by_default(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    with Client(tls_server.target, tls=certificates.tls(), token=BOOTSTRAP_TOKEN) as admin:
        admin.create_map("tls-map")
        admin.put("tls-map", "k", {"v": 1})
        assert admin.get("tls-map", "k") == {"v": 1}
    with (
        Client(tls_server.target, tls=certificates.tls(), timeout_s=SHORT_TIMEOUT_S) as anonymous,
        pytest.raises(UnauthenticatedError),
    ):
        anonymous.get("tls-map", "k")


def test_the_async_client_speaks_tls_with_a_token(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    async def run() -> object:
        client = AsyncClient(tls_server.target, tls=certificates.tls(), token=BOOTSTRAP_TOKEN)
        try:
            await client.put("tls-map", "async", {"v": 2})
            return await client.get("tls-map", "async")
        finally:
            await client.close()

    with Client(tls_server.target, tls=certificates.tls(), token=BOOTSTRAP_TOKEN) as admin:
        admin.create_map("tls-map", if_not_exists=True)
    assert asyncio.run(run()) == {"v": 2}


def test_plaintext_against_tls_fails_saying_so(tls_server: ServerProcess) -> None:
    retry = RetryPolicy(attempts=1)
    with (
        Client(tls_server.target, timeout_s=SHORT_TIMEOUT_S, retry=retry) as plain,
        pytest.raises(UnavailableError) as failed,
    ):
        plain.list_maps()
    assert "if the coordinator serves TLS, connect with tls=True" in failed.value.message


def test_a_server_certificate_from_another_ca_is_refused(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    retry = RetryPolicy(attempts=1)
    wrong = certificates.tls(ca=certificates.other_authority.cert)
    with (
        Client(tls_server.target, tls=wrong, timeout_s=SHORT_TIMEOUT_S, retry=retry) as client,
        pytest.raises(UnavailableError) as failed,
    ):
        client.list_maps()
    assert "the TLS handshake failed" in failed.value.message


def test_mutual_tls_needs_a_client_certificate_from_the_ca(
    mutual_server: ServerProcess, certificates: Certificates
) -> None:
    retry = RetryPolicy(attempts=1)
    for refused in (None, certificates.forged):
        with (
            Client(
                mutual_server.target,
                tls=certificates.tls(refused),
                token=BOOTSTRAP_TOKEN,
                timeout_s=SHORT_TIMEOUT_S,
                retry=retry,
            ) as client,
            pytest.raises(UnavailableError),
        ):
            client.list_maps()
    with Client(
        mutual_server.target, tls=certificates.tls(certificates.client), token=BOOTSTRAP_TOKEN
    ) as admin:
        assert admin.auth.whoami()["principal"] == "admin"


def test_a_mapped_certificate_is_a_principal_without_a_token(
    mutual_server: ServerProcess, certificates: Certificates
) -> None:
    with Client(
        mutual_server.target, tls=certificates.tls(certificates.client), token=BOOTSTRAP_TOKEN
    ) as admin:
        admin.create_map("reports")
        admin.put("reports", "r1", {"n": 1})
        admin.auth.grant(["reader:reports"], principal="svc-reporting")
        admin.auth.map_certificate("svc-reporting", "svc-reporting")
    with Client(mutual_server.target, tls=certificates.tls(certificates.client)) as service:
        assert service.get("reports", "r1") == {"n": 1}
        assert service.auth.whoami()["principal"] == "svc-reporting"
    # A valid certificate of the CA that maps to nobody authenticates nobody.
    with (
        Client(mutual_server.target, tls=certificates.tls(certificates.stranger)) as stranger,
        pytest.raises(UnauthenticatedError),
    ):
        stranger.get("reports", "r1")


def test_metrics_are_served_over_the_same_tls(
    mutual_server: ServerProcess, certificates: Certificates
) -> None:
    url = f"https://127.0.0.1:{mutual_server.metrics_port}/metrics"  # type: ignore[attr-defined]
    context = ssl.create_default_context(cafile=str(certificates.authority.cert))
    context.load_cert_chain(str(certificates.client.cert), str(certificates.client.key))
    with urllib.request.urlopen(url, context=context, timeout=30) as answer:
        body = answer.read().decode()
    assert "shoal_audit_events_total" in body
    assert BOOTSTRAP_TOKEN not in body
    without_certificate = ssl.create_default_context(cafile=str(certificates.authority.cert))
    with pytest.raises((ssl.SSLError, OSError)):
        urllib.request.urlopen(url, context=without_certificate, timeout=30).read()
    with pytest.raises(OSError):
        urllib.request.urlopen(url.replace("https", "http"), timeout=30).read()


def test_the_cli_speaks_tls_from_its_options_and_environment(
    mutual_server: ServerProcess, certificates: Certificates, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(BOOTSTRAP_TOKEN)
    token_file.chmod(0o600)
    environment = {
        **os.environ,
        "SHOAL_TARGET": mutual_server.target,
        "SHOAL_TLS_CA": str(certificates.authority.cert),
        "SHOAL_TLS_CERT": str(certificates.client.cert),
        "SHOAL_TLS_KEY": str(certificates.client.key),
        "SHOAL_TOKEN_FILE": str(token_file),
    }
    shoal = [sys.executable, "-m", "shoal.cli"]
    whoami = subprocess.run(
        [*shoal, "auth", "whoami", "--json"],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
    )
    assert whoami.returncode == 0, whoami.stderr
    assert '"principal": "admin"' in whoami.stdout
    plain = {key: value for key, value in environment.items() if not key.startswith("SHOAL_TLS")}
    refused = subprocess.run(
        [*shoal, "maps", "list"], env=plain, check=False, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert "add --tls" in refused.stderr
    token_file.chmod(0o644)
    readable = subprocess.run(
        [*shoal, "maps", "list"], env=environment, check=False, capture_output=True, text=True
    )
    assert readable.returncode == 2
    assert "may be read by any user" in readable.stderr


def test_a_world_readable_key_and_plaintext_on_the_network_are_refused(
    certificates: Certificates, tmp_path: Path
) -> None:
    readable_key = tmp_path / "readable.key"
    readable_key.write_bytes(certificates.server.key.read_bytes())
    readable_key.chmod(0o644)
    for arguments, expected in (
        (
            ["--tls-cert", str(certificates.server.cert), "--tls-key", str(readable_key)],
            "may be read by any user",
        ),
        (["--host", "0.0.0.0"], "without TLS"),
    ):
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "coordinator.server",
                "--port",
                "0",
                "--metrics-port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
                *arguments,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 2, ran.stderr
        assert expected in ran.stderr
