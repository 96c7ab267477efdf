"""Plaintext only on loopback unless --insecure-listen; secrets never flags, never in
files any user may read."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from coordinator import config as config_module
from coordinator.config import ConfigError
from coordinator.security.setup import auth_enabled
from coordinator.security.transport import check_listening, is_loopback


def _config(**flags: object) -> config_module.ServerConfig:
    return config_module.load(flags, environment={})


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")


def test_plaintext_on_the_network_is_refused_without_insecure_listen() -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        check_listening(_config(host="0.0.0.0"))


def test_insecure_listen_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_listening(_config(host="0.0.0.0", insecure_listen=True))
    assert "without TLS" in caplog.text


def test_auth_auto_is_off_only_on_plaintext_loopback() -> None:
    assert not auth_enabled(_config())
    assert auth_enabled(_config(host="0.0.0.0", insecure_listen=True))
    assert auth_enabled(_config(tls_cert="c.pem", tls_key="k.pem"))
    assert auth_enabled(_config(auth="on"))
    assert not auth_enabled(_config(host="0.0.0.0", auth="off"))


def test_insecure_listen_is_a_flag_without_a_value() -> None:
    parser = argparse.ArgumentParser()
    config_module.add_arguments(parser)
    arguments = vars(parser.parse_args(["--insecure-listen"]))
    assert config_module.load(arguments, environment={}).insecure_listen is True


def test_a_secret_is_no_flag_and_stays_out_of_the_repr() -> None:
    parser = argparse.ArgumentParser()
    config_module.add_arguments(parser)
    assert "auth_bootstrap_token" not in {action.dest for action in parser._actions}
    loaded = config_module.load(
        {}, environment={"SHOAL_AUTH_BOOTSTRAP_TOKEN": "a-very-secret-bootstrap-value"}
    )
    assert loaded.auth_bootstrap_token == "a-very-secret-bootstrap-value"
    assert "a-very-secret-bootstrap-value" not in repr(loaded)


def test_a_world_readable_file_holding_a_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shoal.toml"
    path.write_text('auth_bootstrap_token = "a-very-secret-bootstrap-value"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="any user may read it"):
        config_module.load({}, environment={}, config_file=str(path))
    path.chmod(0o600)
    assert config_module.load({}, environment={}, config_file=str(path)).auth_bootstrap_token
