"""Encoding of the records a partition writes to its log and snapshots.

A record is ``u8 kind | u64 lsn | u32 meta_bytes | meta (JSON) | entries``, where
each entry is ``u8 op | u16 map_bytes | u32 key_bytes | u32 value_bytes | map | key
| value``. Entries carry keys and values as raw bytes so a value is never re-encoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import orjson

RECORD_HEADER = struct.Struct("<BQI")
ENTRY_HEADER = struct.Struct("<BHII")


class RecordKind(IntEnum):
    # Writes applied at once: a one-phase commit or a plain put/delete.
    APPLIED = 1
    # A transaction's writes staged and its locks taken; the participant voted yes.
    PREPARED = 2
    PRE_COMMITTED = 3
    COMMITTED = 4
    ABORTED = 5
    # A change of a transaction's status record (kept by one partition per transaction).
    STATUS = 6
    # A map was dropped: its entries in this partition are gone.
    MAP_DROPPED = 7


class Op(IntEnum):
    PUT = 1
    DELETE = 2
    INCREMENT = 3
    APPEND = 4
    SKETCH_ADD = 5
    # Changes the count of values that reference a key (value: signed decimal delta).
    # A positive change requires the key to exist; a key with references cannot be deleted.
    REFERENCE = 6


@dataclass(frozen=True, slots=True)
class Entry:
    op: Op
    map: str
    key: str
    value: bytes = b""


@dataclass
class Record:
    kind: RecordKind
    lsn: int
    meta: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)


def encode_entries(entries: list[Entry]) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    pack = ENTRY_HEADER.pack
    # A record's entries name few maps: each name is encoded once.
    maps: dict[str, bytes] = {}
    for entry in entries:
        map_bytes = maps.get(entry.map)
        if map_bytes is None:
            map_bytes = maps[entry.map] = entry.map.encode()
        key_bytes = entry.key.encode()
        value = entry.value
        append(pack(entry.op, len(map_bytes), len(key_bytes), len(value)))
        append(map_bytes)
        append(key_bytes)
        append(value)
    return b"".join(parts)


def decode_entries(data: bytes, offset: int = 0) -> list[Entry]:
    entries: list[Entry] = []
    unpack = ENTRY_HEADER.unpack_from
    header_size = ENTRY_HEADER.size
    size = len(data)
    while offset < size:
        op, map_size, key_size, value_size = unpack(data, offset)
        offset += header_size
        map_name = data[offset : offset + map_size].decode()
        offset += map_size
        key = data[offset : offset + key_size].decode()
        offset += key_size
        value = data[offset : offset + value_size]
        offset += value_size
        entries.append(Entry(Op(op), map_name, key, value))
    return entries


def encode_record(record: Record) -> bytes:
    meta = orjson.dumps(record.meta) if record.meta else b""
    return (
        RECORD_HEADER.pack(record.kind, record.lsn, len(meta))
        + meta
        + encode_entries(record.entries)
    )


def decode_record(payload: bytes) -> Record:
    kind, lsn, meta_size = RECORD_HEADER.unpack_from(payload, 0)
    offset = RECORD_HEADER.size
    meta = orjson.loads(payload[offset : offset + meta_size]) if meta_size else {}
    entries = decode_entries(payload, offset + meta_size)
    return Record(kind=RecordKind(kind), lsn=lsn, meta=meta, entries=entries)
