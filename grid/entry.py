"""The stored form of one key's value: the JSON document, then its version.

An entry is the value's bytes followed by the version as 8 little-endian bytes.
Every backend stores and returns entries in this form, so a read hands the client
the stored document without re-encoding it.
"""

from __future__ import annotations

VERSION_BYTES = 8


def pack(value: bytes, version: int) -> bytes:
    return value + version.to_bytes(VERSION_BYTES, "little")


def version_of(entry: bytes) -> int:
    return int.from_bytes(entry[-VERSION_BYTES:], "little")


def value_of(entry: bytes) -> bytes:
    return entry[:-VERSION_BYTES]
