"""Bloom filter membership, written here: DataSketches' Python binding has no Bloom filter.

Sizing: for capacity n and error rate p the filter has m = ceil(-n ln p / (ln 2)^2)
bits (at least 8) and k = max(1, round(m / n * ln 2)) hashes.

Hashing: an item's canonical text (see ``_items``) is encoded as UTF-8 and hashed
with BLAKE2b with a 16-byte digest (no key, salt or personalization). The digest's
first 8 bytes read as a little-endian unsigned integer are h1, the next 8 are h2.
Hash i (i = 0 .. k-1) sets bit ((h1 + i * h2) mod 2^64) mod m: double hashing, as
Kirsch and Mitzenmacher showed two hashes give the false-positive rate of k.

Byte format, version 1 (all integers little-endian):

====== ===== ===================================================================
offset bytes field
====== ===== ===================================================================
0      4     magic ``b"SHBF"``
4      1     format version, 1
5      1     hash scheme, 1 (BLAKE2b-128 double hashing, as above)
6      2     k, the number of hashes (u16)
8      8     m, the number of bits (u64)
16     8     capacity_items (u64)
24     8     error_rate (IEEE 754 double)
32     8     items added, duplicates included (u64)
40     m/8   the bits, ceil(m / 8) bytes: bit j is (byte[j // 8] >> (j % 8)) & 1
====== ===== ===================================================================
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchFormatError
from grid.sketches._items import item_bytes
from grid.sketches._results import BloomFill
from grid.sketches._spec import SketchKind, SketchSpec, bloom_shape

MAGIC = b"SHBF"
FORMAT_VERSION = 1
HASH_SCHEME = 1
_HEADER = struct.Struct("<4sBBHQQdQ")
# Positions are computed for this many items at a time, so a huge batch does not
# allocate k positions for every item at once.
_CHUNK_ITEMS = 1 << 16


class BloomFilter(Sketch):
    """The bloom kind: answers "was this item added?" with no false negatives."""

    kind = SketchKind.BLOOM

    def __init__(self, spec: SketchSpec) -> None:
        super().__init__(spec)
        self._capacity_items = int(spec.params["capacity_items"])
        self._error_rate = float(spec.params["error_rate"])
        self._bits, self._hashes = bloom_shape(self._capacity_items, self._error_rate)
        self._array: npt.NDArray[np.uint8] = np.zeros((self._bits + 7) // 8, dtype=np.uint8)
        self._items_added = 0
        self._hash_steps = np.arange(self._hashes, dtype=np.uint64)

    @classmethod
    def deserialize(cls, spec: SketchSpec, data: bytes) -> BloomFilter:
        """Read bytes written by serialize (format version 1) as a filter of this spec."""
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise SketchFormatError(f"a bloom filter needs {_HEADER.size} header bytes")
        magic, version, scheme, hashes, bits, capacity_items, error_rate, items_added = (
            _HEADER.unpack_from(data)
        )
        if magic != MAGIC:
            raise SketchFormatError(f"not a bloom filter: magic {magic!r}")
        if version != FORMAT_VERSION or scheme != HASH_SCHEME:
            raise SketchFormatError(f"unknown bloom format {version} or hash scheme {scheme}")
        bloom = cls(spec)
        found = (capacity_items, error_rate, bits, hashes)
        wanted = (bloom._capacity_items, bloom._error_rate, bloom._bits, bloom._hashes)
        if found != wanted:
            raise SketchFormatError(
                "the bytes hold (capacity_items, error_rate, bits, hashes)="
                f"{found}, the spec wants {wanted}"
            )
        if len(data) != _HEADER.size + len(bloom._array):
            raise SketchFormatError(
                f"a bloom filter of {bits} bits takes {_HEADER.size + len(bloom._array)} bytes, "
                f"not {len(data)}"
            )
        bloom._array = np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size).copy()
        bloom._items_added = items_added
        return bloom

    def _positions(self, encoded: Sequence[bytes]) -> npt.NDArray[np.uint64]:
        """Return the k bit positions of each item, one row per item."""
        blake2b = hashlib.blake2b
        digests = b"".join([blake2b(data, digest_size=16).digest() for data in encoded])
        halves = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
        first, second = halves[:, :1], halves[:, 1:]
        # Unsigned array arithmetic wraps modulo 2^64, which is the scheme's definition.
        combined: npt.NDArray[np.uint64] = first + self._hash_steps * second
        return combined % np.uint64(self._bits)

    def update_many(self, items: Items) -> None:
        encoded = item_bytes(items, self.kind.value)
        for start in range(0, len(encoded), _CHUNK_ITEMS):
            positions = self._positions(encoded[start : start + _CHUNK_ITEMS]).ravel()
            masks = np.left_shift(np.uint8(1), (positions & np.uint64(7)).astype(np.uint8))
            np.bitwise_or.at(self._array, positions >> np.uint64(3), masks)
        self._items_added += len(encoded)

    def might_contain(self, item: Any) -> bool:
        return self.might_contain_many([item])[0]

    def might_contain_many(self, items: Items) -> list[bool]:
        encoded = item_bytes(items, self.kind.value)
        answers: list[bool] = []
        for start in range(0, len(encoded), _CHUNK_ITEMS):
            positions = self._positions(encoded[start : start + _CHUNK_ITEMS])
            bytes_at = self._array[positions >> np.uint64(3)]
            bits_at = (bytes_at >> (positions & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
            answers.extend(bits_at.all(axis=1).tolist())
        return answers

    def merge(self, other: Sketch) -> None:
        source = self._mergeable(other)
        np.bitwise_or(self._array, source._array, out=self._array)
        self._items_added += source._items_added

    def serialize(self) -> bytes:
        header = _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            HASH_SCHEME,
            self._hashes,
            self._bits,
            self._capacity_items,
            self._error_rate,
            self._items_added,
        )
        return header + self._array.tobytes()

    def memory_bytes(self) -> int:
        return _HEADER.size + int(self._array.nbytes)

    def items_seen(self) -> int | None:
        return self._items_added

    def is_empty(self) -> bool:
        return self._items_added == 0

    def empty_like(self) -> BloomFilter:
        return BloomFilter(self.spec)

    def fill(self) -> BloomFill:
        bits_set = int(np.bitwise_count(self._array).sum())
        # A query hits k set bits by chance with probability (set / m)^k.
        expected_rate = (bits_set / self._bits) ** self._hashes
        return BloomFill(
            bits=self._bits,
            hashes=self._hashes,
            bits_set=bits_set,
            items_added=self._items_added,
            capacity_items=self._capacity_items,
            error_rate=self._error_rate,
            expected_false_positive_rate=expected_rate,
        )
