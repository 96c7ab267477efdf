"""The entries of one map within one partition of the memory backend.

Each entry is one ``bytes`` object (see grid.entry). One object per key keeps a million 100-byte
values at 256 bytes a key (measured by `make bench`: 1.39x Redis; a Python dict of dicts
would cost several times that),
lets a read return the stored document without re-encoding it, and lets a
checkpoint or an Arrow image take the values as they are.
"""

from __future__ import annotations

import itertools

# Tells segments apart for caches outside them (a map dropped and made again is a new one).
_serials = itertools.count(1)


class Segment:
    """One map's entries in one partition, with a change counter for cached images."""

    __slots__ = ("entries", "generation", "history", "map", "memo", "serial", "version")

    def __init__(self, map_name: str) -> None:
        self.map = map_name
        self.serial = next(_serials)
        self.entries: dict[str, bytes] = {}
        # Overwritten states of recently changed keys only (see grid.versions), so a
        # key that does not change costs nothing more.
        self.history: dict[str, list[tuple[int, bytes]]] = {}
        # The version of the last commit that changed the segment: a reader at a later
        # version may take `entries` as they are.
        self.version = 0
        # Bumped on every change, so a derived structure (an Arrow image for SQL)
        # knows when it is stale without a scan.
        self.generation = 0
        # Derived structures keyed by their purpose (for example the SQL image).
        self.memo: dict[str, object] = {}

    def put(self, key: str, entry: bytes) -> None:
        self.entries[key] = entry
        self.generation += 1

    def delete(self, key: str) -> bool:
        existed = self.entries.pop(key, None) is not None
        if existed:
            self.generation += 1
        return existed

    def memory_bytes(self) -> int:
        """An estimate of the bytes held: the entries, keys and table slots."""
        # 49 bytes of str header, 33 of bytes header, and about 42 bytes of
        # dict slot per entry in CPython 3.11 on 64-bit platforms.
        total = 0
        for key, entry in self.entries.items():
            total += 124 + len(key) + len(entry)
        return total
