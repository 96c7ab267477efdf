"""The knobs of the load test, read from ``SHOAL_LOAD_*`` environment variables.

Environment variables rather than Locust flags because Locust forwards only its own
options to workers: setting the same environment on the master and every worker is
the one way all processes agree. Each knob is documented in ``KNOBS`` (and the README).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_TARGET = "127.0.0.1:50051"

# name -> (default, meaning); the README's table is written from this.
KNOBS: dict[str, tuple[str, str]] = {
    "SHOAL_LOAD_KEYS": ("10000", "keys preloaded in the key-value map and read by kv tasks"),
    "SHOAL_LOAD_VALUE_BYTES": ("100", "size of the payload field of each key-value value"),
    "SHOAL_LOAD_DISTRIBUTION": (
        "uniform",
        "how keys, accounts, rows and sketches are chosen: uniform or zipf",
    ),
    "SHOAL_LOAD_ZIPF_S": ("1.1", "the Zipf exponent s (rank k is chosen with weight 1/k^s)"),
    "SHOAL_LOAD_WEIGHTS": ("", "task weight overrides, 'kv.get=90,kv.put=10'; 0 drops a task"),
    "SHOAL_LOAD_BATCH": ("20", "keys per get_many/put_many, accounts per audit"),
    "SHOAL_LOAD_ACCOUNTS": ("1000", "bank accounts of the transfer scenario"),
    "SHOAL_LOAD_ORDERS": ("10000", "rows of the orders table of the SQL scenario"),
    "SHOAL_LOAD_SKETCH_KEYS": ("30", "HyperLogLog sketches (one per day) of the sketch scenario"),
    "SHOAL_LOAD_SKETCH_ITEMS": ("500", "items per sketches.add call"),
    "SHOAL_LOAD_PROFILE": (
        "mixed",
        "the profiles the locustfile runs: comma-separated names (or user classes), or all",
    ),
    "SHOAL_LOAD_PREFIX": ("load", "prefix of the maps the load test creates"),
    "SHOAL_LOAD_PRELOAD": ("1", "0 skips preloading (the maps are already there)"),
    "SHOAL_LOAD_WAIT_MS": ("0", "think time: each user waits 0..N ms between tasks"),
    "SHOAL_LOAD_TIMEOUT_S": ("10", "deadline of every SDK call"),
    "SHOAL_LOAD_SEED": ("", "seed of the users' key choices (empty: random)"),
    "SHOAL_LOAD_STOP_AFTER": (
        "",
        "'txn.transfer=1000,kv.get=1': stop once each named request was made that often",
    ),
}

DISTRIBUTIONS = ("uniform", "zipf")


class SettingsError(ValueError):
    """A knob has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class LoadSettings:
    keys: int = 10_000
    value_bytes: int = 100
    distribution: str = "uniform"
    zipf_s: float = 1.1
    weights: Mapping[str, int] = field(default_factory=dict)
    batch: int = 20
    accounts: int = 1000
    orders: int = 10_000
    sketch_keys: int = 30
    sketch_items: int = 500
    profile: str = "mixed"
    prefix: str = "load"
    preload: bool = True
    wait_ms: int = 0
    timeout_s: float = 10.0
    seed: int | None = None
    stop_after: Mapping[str, int] = field(default_factory=dict)


def load_settings(environment: Mapping[str, str] | None = None) -> LoadSettings:
    """The settings from the environment (``os.environ`` by default); raises SettingsError."""
    source = os.environ if environment is None else environment

    def text(name: str) -> str:
        return source.get(name, KNOBS[name][0]).strip()

    def integer(name: str, minimum: int) -> int:
        raw = text(name)
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
        if value < minimum:
            raise SettingsError(f"{name}={value}: must be at least {minimum}")
        return value

    def number(name: str, minimum_exclusive: float) -> float:
        raw = text(name)
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected a number") from None
        if not value > minimum_exclusive:
            raise SettingsError(f"{name}={value}: must be above {minimum_exclusive}")
        return value

    distribution = text("SHOAL_LOAD_DISTRIBUTION").lower()
    if distribution not in DISTRIBUTIONS:
        raise SettingsError(
            f"SHOAL_LOAD_DISTRIBUTION={distribution!r}: expected one of {', '.join(DISTRIBUTIONS)}"
        )
    prefix = text("SHOAL_LOAD_PREFIX")
    if not prefix.replace("_", "").isalnum() or not prefix[0].isalpha():
        # Map names double as SQL table names, so keep them plain identifiers.
        raise SettingsError(f"SHOAL_LOAD_PREFIX={prefix!r}: use letters, digits and underscores")
    seed_text = text("SHOAL_LOAD_SEED")
    return LoadSettings(
        keys=integer("SHOAL_LOAD_KEYS", 1),
        value_bytes=integer("SHOAL_LOAD_VALUE_BYTES", 0),
        distribution=distribution,
        zipf_s=number("SHOAL_LOAD_ZIPF_S", 0.0),
        weights=parse_weights(text("SHOAL_LOAD_WEIGHTS")),
        batch=integer("SHOAL_LOAD_BATCH", 1),
        accounts=integer("SHOAL_LOAD_ACCOUNTS", 2),
        orders=integer("SHOAL_LOAD_ORDERS", 1),
        sketch_keys=integer("SHOAL_LOAD_SKETCH_KEYS", 1),
        sketch_items=integer("SHOAL_LOAD_SKETCH_ITEMS", 1),
        profile=text("SHOAL_LOAD_PROFILE"),
        prefix=prefix,
        preload=text("SHOAL_LOAD_PRELOAD") not in ("0", "false", "no", "off"),
        wait_ms=integer("SHOAL_LOAD_WAIT_MS", 0),
        timeout_s=number("SHOAL_LOAD_TIMEOUT_S", 0.0),
        seed=integer("SHOAL_LOAD_SEED", 0) if seed_text else None,
        stop_after=parse_weights(text("SHOAL_LOAD_STOP_AFTER"), "SHOAL_LOAD_STOP_AFTER"),
    )


def parse_weights(text: str, variable: str = "SHOAL_LOAD_WEIGHTS") -> dict[str, int]:
    """``"kv.get=90, kv.put=10"`` as a dict; task names are checked against the catalog later."""
    weights: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, separator, raw = item.partition("=")
        try:
            weight = int(raw)
        except ValueError:
            weight = -1
        if not separator or not name.strip() or weight < 0:
            raise SettingsError(
                f"{variable}: {item.strip()!r} is not task=weight with a whole number >= 0"
            )
        weights[name.strip()] = weight
    return weights


def target_from_host(host: str | None) -> str:
    """The SDK target for Locust's ``--host``: ``grpc://h:p`` (or a comma-separated list
    of them) without the scheme; the default coordinator when no host was given."""
    if not host or not host.strip():
        return DEFAULT_TARGET
    parts = []
    for item in host.split(","):
        address = item.strip()
        scheme, separator, rest = address.partition("://")
        if separator:
            if scheme != "grpc":
                raise SettingsError(f"--host {host!r}: use grpc://host:port (no TLS scheme yet)")
            address = rest
        parts.append(address.rstrip("/"))
    return ",".join(part for part in parts if part)
