"""Server configuration: command-line flags override ``SHOAL_*`` environment variables,
which override a TOML file, which overrides the defaults.

Every setting has one name used everywhere: ``port`` is ``--port``, ``SHOAL_PORT``
and ``port = 50051`` in the file (``--config`` or ``SHOAL_CONFIG`` names the file).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from coordinator.limits import Limits


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    # A secret (a token) is never a command-line flag (other users see a process's
    # arguments), and a configuration file holding one must not be world-readable.
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "address to listen on"),
    Setting("port", int, 50051, "gRPC port (0 picks a free one)"),
    Setting("data_dir", Path, Path("./data"), "data directory of the memory backend"),
    Setting(
        "backend",
        str,
        "memory",
        "grid backend: memory, redis://host:port[/namespace], "
        "redis+cluster://host:port,host:port[/namespace], "
        "hazelcast://host:port/cluster-name[/namespace] or ignite://host:port[/namespace]",
    ),
    Setting("partitions", int, 64, "number of partitions, fixed when the data directory is made"),
    Setting("fsync", str, "batch", "when the log reaches the disk", ("always", "batch", "off")),
    Setting("fsync_interval_ms", int, 20, "fsync period of the batch policy"),
    Setting("checkpoint_wal_bytes", int, 64 * 1024 * 1024, "log size that triggers a checkpoint"),
    Setting("workers", int, 16, "threads serving gRPC calls (and as many serving streams)"),
    Setting(
        "stream_stall_ms",
        int,
        30_000,
        "how long a result stream waits for its reader to take a message before it is ended",
    ),
    Setting("node_id", str, "", "name of this node in logs and cluster info"),
    Setting(
        "metrics_port",
        int,
        9464,
        "HTTP port of the Prometheus /metrics endpoint (0: none; the default is skipped "
        "with a warning when another process holds it)",
    ),
    Setting("metrics_host", str, "127.0.0.1", "address the /metrics endpoint listens on"),
    Setting(
        "metrics_otlp_interval_s",
        float,
        0.0,
        "push the metrics to otlp_endpoint over OTLP every this many seconds (0: no push)",
    ),
    Setting(
        "trace_exporter",
        str,
        "none",
        "where spans go: an OTLP (gRPC) collector, the console, or nowhere",
        ("none", "otlp", "console"),
    ),
    Setting(
        "trace_sample_ratio",
        float,
        0.1,
        "fraction of traces sampled when the caller sent no sampling decision",
    ),
    Setting(
        "otlp_endpoint", str, "127.0.0.1:4317", "OTLP gRPC collector of spans and pushed metrics"
    ),
    Setting(
        "memory_trim_growth_bytes",
        int,
        64 * 1024 * 1024,
        "growth of the resident size after which freed memory is handed back (0: never)",
    ),
    Setting("log_level", str, "INFO", "log level", ("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("log_format", str, "text", "log line format", ("text", "json")),
    Setting("grace_s", float, 10.0, "how long a shutdown waits for calls in flight"),
    Setting("txn_lease_ms", int, 10_000, "lease of a transaction before recovery may end it"),
    Setting("txn_sweep_interval_ms", int, 1000, "period of the recovery sweeper"),
    Setting(
        "txn_status_retention_ms", int, 600_000, "how long decided transactions answer retries"
    ),
    Setting(
        "mvcc_window_ms", int, 5000, "how long overwritten versions stay readable (read versions)"
    ),
    Setting(
        "mvcc_window_bytes_max",
        int,
        256 * 1024 * 1024,
        "most bytes of overwritten versions kept, over all partitions",
    ),
    Setting("sql_timeout_ms", int, 30_000, "time limit of one SQL statement"),
    Setting("sql_scan_rows_max", int, 50_000_000, "most rows one SQL statement may scan"),
    Setting("sql_result_bytes_max", int, 512 * 1024 * 1024, "largest SQL result"),
    Setting("sql_batch_rows", int, 8192, "rows per streamed SQL result batch"),
    Setting(
        "sql_memory_bytes_max",
        int,
        512 * 1024 * 1024,
        "memory one SQL statement may take (DuckDB's memory limit; 0 leaves DuckDB's own)",
    ),
    Setting(
        "sketch_accuracy_sample_rate",
        float,
        0.01,
        "fraction of sketch keys whose exact answers are kept to measure error (0 turns it off)",
    ),
    Setting("sketch_accuracy_keys_max", int, 100, "most sketch keys with exact answers kept"),
    Setting(
        "sketch_accuracy_items_per_key_max", int, 10_000, "most exact entries kept per sketch key"
    ),
    Setting(
        "pipelines",
        str,
        "",
        "Kafka pipeline modules: directories, .py files or module names, comma-separated",
    ),
    Setting("kafka", str, "", "Kafka bootstrap servers of the pipelines (host:port,...)"),
    Setting("kafka_session_timeout_ms", int, 10_000, "Kafka session timeout of pipeline consumers"),
    Setting(
        "procedures",
        str,
        "",
        "procedure modules: directories, .py files or module names, comma-separated",
    ),
    Setting(
        "procedure_timeout_ms",
        int,
        5000,
        "time limit of one procedure call, its retries included (0: none)",
    ),
    Setting(
        "procedure_workers",
        int,
        4,
        "threads running procedure calls (raise it under fsync=always, where calls wait)",
    ),
    Setting(
        "procedure_attempts_max",
        int,
        20,
        "attempts of a procedure call whose commit conflicts before it answers ABORTED",
    ),
    Setting("seed", int, 0, "seed of the server's randomness (reservoir samples); 0 draws one"),
    Setting("key_bytes_max", int, 1024, "largest key, in UTF-8 bytes"),
    Setting("value_bytes_max", int, 1024 * 1024, "largest value, in JSON bytes"),
    Setting("batch_entries_max", int, 10_000, "most keys in one batch call"),
    Setting("transaction_keys_max", int, 10_000, "most keys one transaction reads and writes"),
    Setting(
        "transaction_bytes_max",
        int,
        64 * 1024 * 1024,
        "most bytes of keys and values one transaction writes",
    ),
    Setting("message_bytes_max", int, 64 * 1024 * 1024, "largest gRPC message"),
    Setting("concurrent_calls_max", int, 1024, "calls in progress before RESOURCE_EXHAUSTED"),
    Setting("admin_calls_max", int, 64, "admin calls in progress, served apart from the others"),
    Setting("sketch_bytes_max", int, 16 * 1024 * 1024, "largest sketch a sketch map may hold"),
    Setting("schema_fields_max", int, 1000, "most fields one schema may have"),
    Setting("scan_chunk_entries_max", int, 10_000, "most entries in one streamed scan chunk"),
    # Security (coordinator/security/, README "Security").
    Setting("tls_cert", str, "", "PEM certificate chain of the gRPC port and metrics endpoint"),
    Setting("tls_key", str, "", "PEM private key of --tls-cert (refused when others may read it)"),
    Setting("tls_client_ca", str, "", "PEM CA that client certificates must chain to (mutual TLS)"),
    Setting(
        "insecure_listen",
        bool,
        False,
        "listen on a non-loopback address without TLS (a warning is logged)",
    ),
    Setting(
        "auth",
        str,
        "auto",
        "authentication and permissions; auto is off only on loopback without TLS",
        ("auto", "on", "off"),
    ),
    Setting(
        "auth_bootstrap_token_file",
        str,
        "",
        "file holding the first admin token (else SHOAL_AUTH_BOOTSTRAP_TOKEN, else one is printed)",
    ),
    Setting(
        "auth_bootstrap_token", str, "", "the first admin token (environment only)", secret=True
    ),
    Setting("audit_log", str, "", "audit log file (JSON lines; default DATA_DIR/audit.log)"),
    Setting("sandboxes_max", int, 4, "most operator sandboxes at once (0: none)"),
    Setting(
        "sandbox_memory_bytes_max",
        int,
        2 * 1024**3,
        "most memory one sandbox's process may use (its seed is checked before it is made)",
    ),
    Setting("sandbox_ttl_max_ms", int, 7 * 24 * 3_600_000, "longest time to live of a sandbox"),
)
LIMIT_NAMES = {item.name for item in fields(Limits)}


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = Path("./data")
    backend: str = "memory"
    partitions: int = 64
    fsync: str = "batch"
    fsync_interval_ms: int = 20
    checkpoint_wal_bytes: int = 64 * 1024 * 1024
    workers: int = 16
    stream_stall_ms: int = 30_000
    node_id: str = ""
    metrics_port: int = 9464
    metrics_host: str = "127.0.0.1"
    metrics_otlp_interval_s: float = 0.0
    trace_exporter: str = "none"
    trace_sample_ratio: float = 0.1
    otlp_endpoint: str = "127.0.0.1:4317"
    memory_trim_growth_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"
    grace_s: float = 10.0
    txn_lease_ms: int = 10_000
    txn_sweep_interval_ms: int = 1000
    txn_status_retention_ms: int = 600_000
    mvcc_window_ms: int = 5000
    mvcc_window_bytes_max: int = 256 * 1024 * 1024
    sql_timeout_ms: int = 30_000
    sql_scan_rows_max: int = 50_000_000
    sql_result_bytes_max: int = 512 * 1024 * 1024
    sql_batch_rows: int = 8192
    sql_memory_bytes_max: int = 512 * 1024 * 1024
    sketch_accuracy_sample_rate: float = 0.01
    sketch_accuracy_keys_max: int = 100
    sketch_accuracy_items_per_key_max: int = 10_000
    seed: int = 0
    pipelines: str = ""
    kafka: str = ""
    kafka_session_timeout_ms: int = 10_000
    procedures: str = ""
    procedure_timeout_ms: int = 5000
    procedure_attempts_max: int = 20
    procedure_workers: int = 4
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    insecure_listen: bool = False
    auth: str = "auto"
    auth_bootstrap_token_file: str = ""
    auth_bootstrap_token: str = field(default="", repr=False)
    audit_log: str = ""
    sandboxes_max: int = 4
    sandbox_memory_bytes_max: int = 2 * 1024**3
    sandbox_ttl_max_ms: int = 7 * 24 * 3_600_000
    limits: Limits = field(default_factory=Limits)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    try:
        if setting.kind is Path:
            value: Any = Path(str(raw))
        elif setting.kind is bool:
            value = _boolean(raw)
        elif setting.kind in (int, float) and isinstance(raw, bool):
            # TOML booleans are ints to Python; `port = true` is a mistake, not port 1.
            raise TypeError(raw)
        elif setting.kind is int and isinstance(raw, float):
            # int() would silently truncate `port = 1.5`.
            raise TypeError(raw)
        elif setting.kind is int and isinstance(raw, str):
            value = int(raw.replace("_", ""))
        elif setting.kind is float and isinstance(raw, str):
            value = float(raw)
        else:
            value = setting.kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{setting.name} from {source} must be {setting.kind.__name__}, got {raw!r}"
        ) from None
    if setting.choices is not None and value not in setting.choices:
        raise ConfigError(
            f"{setting.name} from {source} must be one of {', '.join(setting.choices)}, got {raw!r}"
        )
    if setting.name == "backend":
        # Imported here: coordinator.backends imports this module.
        from coordinator.backends import USAGE, check_backend, redacted

        try:
            check_backend(value)
        except ValueError as error:
            # What is wrong may quote the part holding a password.
            secret = str(raw).partition("://")[2].rpartition("@")[0]
            detail = str(error).replace(secret, "***") if secret else str(error)
            raise ConfigError(
                f"backend from {source} must be {USAGE} ({detail}), got {redacted(str(raw))!r}"
            ) from None
    if setting.kind in (int, float) and value < 0:
        raise ConfigError(f"{setting.name} from {source} must not be negative, got {raw!r}")
    return value


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (or SHOAL_CONFIG)")
    for setting in SETTINGS:
        if setting.secret:
            continue
        if setting.kind is bool:
            parser.add_argument(
                "--" + setting.name.replace("_", "-"),
                dest=setting.name,
                action="store_const",
                const=True,
                default=None,
                help=setting.help,
            )
            continue
        parser.add_argument(
            "--" + setting.name.replace("_", "-"),
            dest=setting.name,
            default=None,
            choices=setting.choices,
            help=f"{setting.help} (default {setting.default})",
        )


def load(
    flags: Mapping[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> ServerConfig:
    """Merges file, environment and flags; raises ConfigError naming a bad setting."""
    flags = flags or {}
    environment = os.environ if environment is None else environment
    values: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}
    known = {setting.name: setting for setting in SETTINGS}
    path = config_file or flags.get("config") or environment.get("SHOAL_CONFIG")
    if path:
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read the configuration file {path}: {error}") from None
        for name, raw in document.items():
            if name not in known:
                raise ConfigError(f"unknown setting '{name}' in {path}")
            # A backend URL may carry the store's password (redis://:secret@host).
            if known[name].secret or (name == "backend" and "@" in str(raw)):
                _refuse_if_readable_by_others(path, name)
            values[name] = _convert(known[name], raw, path)
    for setting in SETTINGS:
        raw_env = environment.get("SHOAL_" + setting.name.upper())
        if raw_env is not None and raw_env != "":
            values[setting.name] = _convert(setting, raw_env, "SHOAL_" + setting.name.upper())
    for setting in SETTINGS:
        raw_flag = flags.get(setting.name)
        if raw_flag is not None:
            values[setting.name] = _convert(
                setting, raw_flag, "--" + setting.name.replace("_", "-")
            )
    limits = Limits(**{name: values.pop(name) for name in list(values) if name in LIMIT_NAMES})
    config = ServerConfig(**values, limits=limits)
    if not 1 <= config.partitions <= 4096:
        raise ConfigError(f"partitions must be within 1..4096, got {config.partitions}")
    if config.workers < 1:
        raise ConfigError("workers must be at least 1")
    # A zero period would make the fsync flusher and the recovery sweeper spin.
    for name in ("fsync_interval_ms", "txn_sweep_interval_ms", "stream_stall_ms"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    if not 0.0 <= config.trace_sample_ratio <= 1.0:
        raise ConfigError(
            f"trace_sample_ratio must be within 0..1, got {config.trace_sample_ratio}"
        )
    if config.metrics_port and config.metrics_port == config.port:
        raise ConfigError(f"metrics_port and port are both {config.port}")
    if not 0.0 <= config.sketch_accuracy_sample_rate <= 1.0:
        raise ConfigError(
            "sketch_accuracy_sample_rate must be within 0..1, "
            f"got {config.sketch_accuracy_sample_rate}"
        )
    for name in ("sketch_accuracy_keys_max", "sketch_accuracy_items_per_key_max"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    return config


def _refuse_if_readable_by_others(path: str, name: str) -> None:
    """A file holding a secret must be readable by its owner (and group) only."""
    if os.stat(path).st_mode & 0o004:
        raise ConfigError(
            f"{path} holds the secret setting {name} but any user may read it; "
            f"chmod o-r {path} (or 600)"
        )


def with_overrides(config: ServerConfig, **changes: Any) -> ServerConfig:
    return replace(config, **changes)


def settings_table() -> Sequence[Setting]:
    return SETTINGS
