"""Maps a key to its partition with a stable, documented hash.

The partition of a key is ``crc32(utf8(tag)) mod partitions`` where ``tag`` is the
key itself, or, when the key holds a non-empty ``{...}`` section, the text between
the first ``{`` and the next ``}`` (Redis Cluster's hash tags). Keys that share a
tag live in one partition, so a transaction over them commits in one phase.
CRC-32 is the IEEE polynomial of zlib; it never depends on the process, unlike
Python's salted ``hash``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

PARTITIONS_DEFAULT = 64
PARTITIONS_MAX = 4096


def hash_tag(key: str) -> str:
    """The part of the key that is hashed."""
    start = key.find("{")
    if start < 0:
        return key
    end = key.find("}", start + 1)
    if end <= start + 1:
        return key
    return key[start + 1 : end]


class Partitioner:
    """Assigns keys to a fixed number of partitions."""

    def __init__(self, partitions: int = PARTITIONS_DEFAULT) -> None:
        if not 1 <= partitions <= PARTITIONS_MAX:
            raise ValueError(f"partitions must be within 1..{PARTITIONS_MAX}, got {partitions}")
        self.partitions = partitions

    def partition_of(self, key: str) -> int:
        if "{" in key:
            key = hash_tag(key)
        return zlib.crc32(key.encode()) % self.partitions

    def partitions_of(self, keys: Sequence[str]) -> list[int]:
        count = self.partitions
        if "{" in "".join(keys):
            return [zlib.crc32(hash_tag(key).encode()) % count for key in keys]
        # map() keeps the per-key work in C; this runs for every key of a batch.
        checksums = map(zlib.crc32, map(str.encode, keys))
        if count & (count - 1) == 0:
            return list(map((count - 1).__and__, checksums))
        return list(map(count.__rmod__, checksums))

    def partitions_of_packed(self, packed: bytes) -> list[int]:
        """Partitions of NUL-separated UTF-8 keys, hashed without decoding them one by one."""
        if b"{" in packed:
            return self.partitions_of(packed.decode().split("\x00"))
        count = self.partitions
        checksums = map(zlib.crc32, packed.split(b"\x00"))
        if count & (count - 1) == 0:
            return list(map((count - 1).__and__, checksums))
        return list(map(count.__rmod__, checksums))

    def group(self, keys: Iterable[str]) -> dict[int, list[int]]:
        """Positions of the keys grouped by partition, in input order."""
        groups: dict[int, list[int]] = {}
        key_list = list(keys)
        for position, partition in enumerate(self.partitions_of(key_list)):
            groups.setdefault(partition, []).append(position)
        return groups
