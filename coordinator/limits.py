"""Bounds on the size of what callers send and ask for; every one is configurable."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    key_bytes_max: int = 1024
    value_bytes_max: int = 1024 * 1024
    batch_entries_max: int = 10_000
    transaction_keys_max: int = 10_000
    # Bytes of keys and values one transaction (or batch, or SQL statement) may write.
    transaction_bytes_max: int = 64 * 1024 * 1024
    message_bytes_max: int = 64 * 1024 * 1024
    scan_chunk_entries_max: int = 10_000
    # Calls in progress (running or waiting for a thread); more get RESOURCE_EXHAUSTED.
    concurrent_calls_max: int = 1024
    # Admin calls in progress, counted apart: they are served while the others are full.
    admin_calls_max: int = 64
    # The most bytes one sketch of a sketch map may take (checked against its spec).
    sketch_bytes_max: int = 16 * 1024 * 1024
    # The most fields one schema (of a map or a SQL table) may have.
    schema_fields_max: int = 1000

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
