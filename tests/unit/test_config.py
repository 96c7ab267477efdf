"""Unit tests of coordinator.config: defaults < TOML file < SHOAL_* environment < flags."""

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from coordinator.backends import parse_backend, redacted
from coordinator.config import (
    SETTINGS,
    ConfigError,
    ServerConfig,
    add_arguments,
    load,
    settings_table,
    with_overrides,
)
from coordinator.limits import Limits


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "shoal.toml"
    path.write_text(text)
    return str(path)


def test_defaults():
    config = load(environment={})
    assert config == ServerConfig()
    assert config.port == 50051
    assert config.data_dir == Path("./data")
    assert config.fsync == "batch"
    assert config.limits == Limits()
    assert config.address == "127.0.0.1:50051"


def test_every_setting_default_matches_the_config_defaults():
    config = ServerConfig()
    limits = Limits()
    limit_names = {item.name for item in fields(Limits)}
    for setting in SETTINGS:
        owner = limits if setting.name in limit_names else config
        assert getattr(owner, setting.name) == setting.default, setting.name
    assert settings_table() == SETTINGS


def test_file_overrides_defaults(tmp_path):
    path = toml(
        tmp_path,
        'port = 1000\ndata_dir = "/srv/shoal"\ngrace_s = 2.5\nfsync = "always"\n'
        "key_bytes_max = 64\n",
    )
    config = load(environment={}, config_file=path)
    assert config.port == 1000
    assert config.data_dir == Path("/srv/shoal")
    assert config.grace_s == 2.5
    assert config.fsync == "always"
    assert config.limits.key_bytes_max == 64
    assert config.limits.value_bytes_max == Limits().value_bytes_max
    assert config.host == "127.0.0.1"


def test_environment_overrides_file_and_flags_override_environment(tmp_path):
    path = toml(tmp_path, "port = 1000\nworkers = 3\nhost = '0.0.0.0'\n")
    environment = {"SHOAL_PORT": "2000", "SHOAL_WORKERS": "4"}
    flags = {"port": "3000"}
    assert load(environment={}, config_file=path).port == 1000
    from_environment = load(environment=environment, config_file=path)
    assert (from_environment.port, from_environment.workers) == (2000, 4)
    assert from_environment.host == "0.0.0.0"
    from_flags = load(flags=flags, environment=environment, config_file=path)
    assert (from_flags.port, from_flags.workers, from_flags.host) == (3000, 4, "0.0.0.0")


def test_configuration_file_named_by_flag_or_environment(tmp_path):
    path = toml(tmp_path, "port = 1234\n")
    assert load(flags={"config": path}, environment={}).port == 1234
    assert load(environment={"SHOAL_CONFIG": path}).port == 1234
    other = tmp_path / "other.toml"
    other.write_text("port = 4321\n")
    assert load(flags={"config": str(other)}, environment={"SHOAL_CONFIG": path}).port == 4321


def test_process_environment_is_used_by_default(monkeypatch):
    monkeypatch.setenv("SHOAL_NODE_ID", "from-env")
    monkeypatch.setenv("SHOAL_PARTITIONS", "8")
    config = load()
    assert config.node_id == "from-env"
    assert config.partitions == 8


def test_empty_environment_values_are_ignored():
    assert load(environment={"SHOAL_PORT": ""}).port == 50051


def test_environment_conversions():
    config = load(
        environment={
            "SHOAL_CHECKPOINT_WAL_BYTES": "1_000_000",
            "SHOAL_GRACE_S": "0.5",
            "SHOAL_DATA_DIR": "/tmp/x",
            "SHOAL_LOG_LEVEL": "DEBUG",
            "SHOAL_VALUE_BYTES_MAX": "2048",
        }
    )
    assert config.checkpoint_wal_bytes == 1_000_000
    assert config.grace_s == 0.5
    assert config.data_dir == Path("/tmp/x")
    assert config.log_level == "DEBUG"
    assert config.limits.value_bytes_max == 2048


def test_flags_from_the_argument_parser():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    arguments = parser.parse_args(
        ["--port", "7", "--data-dir", "/d", "--fsync", "off", "--txn-lease-ms", "50"]
    )
    config = load(flags=vars(arguments), environment={"SHOAL_PORT": "8"})
    assert config.port == 7
    assert config.data_dir == Path("/d")
    assert config.fsync == "off"
    assert config.txn_lease_ms == 50
    assert config.workers == 16


def test_parser_refuses_bad_choices(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--fsync", "sometimes"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SHOAL_PORT": "http"}, "port from SHOAL_PORT must be int, got 'http'"),
        ({"SHOAL_GRACE_S": "soon"}, "grace_s from SHOAL_GRACE_S must be float"),
        ({"SHOAL_PORT": "-1"}, "port from SHOAL_PORT must not be negative"),
        ({"SHOAL_FSYNC": "sometimes"}, "fsync from SHOAL_FSYNC must be one of always, batch, off"),
        ({"SHOAL_BACKEND": "redis"}, "backend from SHOAL_BACKEND must be memory, redis://"),
        ({"SHOAL_LOG_LEVEL": "debug"}, "log_level from SHOAL_LOG_LEVEL must be one of DEBUG"),
        ({"SHOAL_PARTITIONS": "0"}, "partitions must be within 1..4096, got 0"),
        ({"SHOAL_PARTITIONS": "4097"}, "partitions must be within 1..4096"),
        ({"SHOAL_WORKERS": "0"}, "workers must be at least 1"),
        ({"SHOAL_KEY_BYTES_MAX": "lots"}, "key_bytes_max from SHOAL_KEY_BYTES_MAX must be int"),
    ],
)
def test_bad_environment_values_name_the_setting(environment, message):
    with pytest.raises(ConfigError) as caught:
        load(environment=environment)
    assert message in str(caught.value)


def test_bad_flag_values_name_the_flag():
    with pytest.raises(ConfigError, match="workers from --workers must be int"):
        load(flags={"workers": "many"}, environment={})
    with pytest.raises(ConfigError, match="txn_lease_ms from --txn-lease-ms must not be negative"):
        load(flags={"txn_lease_ms": "-5"}, environment={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'http'\n", "port from {path} must be int"),
        ("fsync = 'never'\n", "fsync from {path} must be one of"),
        ("colour = 'blue'\n", "unknown setting 'colour' in {path}"),
        ("[server]\nport = 1\n", "unknown setting 'server' in {path}"),
        ("port = \n", "cannot read the configuration file {path}"),
        ("port = 1.5\n", "port from {path} must be int"),
        ("port = true\n", "port from {path} must be int"),
        ("grace_s = true\n", "grace_s from {path} must be float"),
    ],
)
def test_bad_file_values_name_the_setting(tmp_path, text, message):
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(environment={}, config_file=path)
    assert message.format(path=path) in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path):
    missing = str(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load(environment={}, config_file=missing)


def test_bad_file_value_is_reported_even_when_overridden(tmp_path):
    path = toml(tmp_path, "port = 'http'\n")
    with pytest.raises(ConfigError, match="port from"):
        load(flags={"port": "1"}, environment={}, config_file=path)


@pytest.mark.parametrize("name", ["fsync_interval_ms", "txn_sweep_interval_ms"])
def test_zero_intervals_are_refused(name):
    with pytest.raises(ConfigError, match=f"{name} must be at least 1"):
        load(environment={f"SHOAL_{name.upper()}": "0"})


def test_negative_durations_are_refused():
    with pytest.raises(ConfigError, match="grace_s from SHOAL_GRACE_S must not be negative"):
        load(environment={"SHOAL_GRACE_S": "-1"})


def test_with_overrides_replaces_fields():
    config = load(environment={})
    changed = with_overrides(config, port=0, node_id="n1")
    assert (changed.port, changed.node_id) == (0, "n1")
    assert config.port == 50051
    assert changed.limits == config.limits


@pytest.mark.parametrize(
    ("url", "scheme", "addresses", "namespace"),
    [
        ("memory", "memory", (), ""),
        ("redis://127.0.0.1:6379", "redis", ("127.0.0.1:6379",), "shoal"),
        ("redis://127.0.0.1:6379/orders", "redis", ("127.0.0.1:6379",), "orders"),
        (
            "redis+cluster://h1:7000,h2:7001/grid-2",
            "redis+cluster",
            ("h1:7000", "h2:7001"),
            "grid-2",
        ),
        ("ignite://127.0.0.1:10800", "ignite", ("127.0.0.1:10800",), "shoal"),
        ("ignite://h1:10800,h2:10800/grid", "ignite", ("h1:10800", "h2:10800"), "grid"),
    ],
)
def test_backend_urls_are_parsed(url, scheme, addresses, namespace):
    parsed = parse_backend(url)
    assert (parsed.scheme, parsed.addresses, parsed.namespace) == (scheme, addresses, namespace)
    assert load(flags={"backend": url}).backend == url


@pytest.mark.parametrize(
    ("url", "addresses", "cluster", "namespace"),
    [
        ("hazelcast://127.0.0.1:5701/dev", ("127.0.0.1:5701",), "dev", "shoal"),
        ("hazelcast://h1:5701,h2:5701/prod/orders", ("h1:5701", "h2:5701"), "prod", "orders"),
    ],
)
def test_hazelcast_urls_name_the_cluster_then_the_namespace(url, addresses, cluster, namespace):
    parsed = parse_backend(url)
    assert (parsed.scheme, parsed.addresses, parsed.cluster, parsed.namespace) == (
        "hazelcast",
        addresses,
        cluster,
        namespace,
    )
    assert load(flags={"backend": url}).backend == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://", "no host:port given"),
        ("redis://localhost", "'localhost' is not host:port"),
        ("redis://h:99999", "'h:99999' is not host:port"),
        ("redis://a:1,b:2", "redis:// takes one host:port"),
        ("mongodb://h:1", "unknown backend scheme 'mongodb'"),
        ("redis://h:1/bad name", "namespace 'bad name' may hold"),
        ("hazelcast://h:5701", "hazelcast:// needs the cluster's name"),
        ("ignite://h", "'h' is not host:port"),
    ],
)
def test_a_bad_backend_url_is_refused_naming_the_flag(url, reason):
    with pytest.raises(ConfigError) as caught:
        load(flags={"backend": url}, environment={})
    assert "backend from --backend must be memory, redis://" in str(caught.value)
    assert reason in str(caught.value)


def test_a_backend_password_never_shows_in_what_is_logged_or_answered() -> None:
    assert redacted("redis://:s3cret@10.0.0.5:6379/prod") == "redis://***@10.0.0.5:6379/prod"
    assert redacted("redis://user:pa/ss,@h:1") == "redis://***@h:1"
    assert redacted("redis+cluster://:s3cret@a:1,:s3cret@b:2") == "redis+cluster://***@b:2"
    assert redacted("redis://10.0.0.5:6379") == "redis://10.0.0.5:6379"
    assert redacted("memory") == "memory"
    with pytest.raises(ConfigError) as caught:
        load(environment={"SHOAL_BACKEND": "redis://:s3cret@host:notaport"})
    assert "s3cret" not in str(caught.value)
    assert "backend" in str(caught.value)


def test_a_config_file_with_a_backend_password_is_refused_when_others_may_read_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shoal.toml"
    path.write_text('backend = "redis://:s3cret@127.0.0.1:6379"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="any user may read it") as caught:
        load(environment={}, config_file=str(path))
    assert "s3cret" not in str(caught.value)
    path.chmod(0o600)
    assert load(environment={}, config_file=str(path)).backend.endswith("@127.0.0.1:6379")
    # Without a password the file may be public.
    path.write_text('backend = "redis://127.0.0.1:6379"\n')
    path.chmod(0o644)
    assert load(environment={}, config_file=str(path)).backend == "redis://127.0.0.1:6379"
