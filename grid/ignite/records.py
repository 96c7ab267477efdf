"""A partition's records in Ignite, read and written inside one pessimistic transaction.

Every record of partition n of a namespace lives in the cache ``shoal.records`` under a key
that starts with ``<namespace>|p<n>|``, except entries, which live in one cache per map
(``shoal.e.<map>``, key ``<namespace>|p<n>|<key>``, value the packed entry) so that a map's
entries can be scanned. The caches are shared by every namespace: creating a cache makes the
whole cluster exchange its partition maps (seconds), too slow for a grid per test or sandbox.
Keys never hold a NUL: pyignite cuts such keys short when it scans. The records are
grid/redis/steps.lua's:

* ``m`` meta: lsn, highest version, floor, each map's newest changed version and how many
  steps changed it (the SQL image cache's key), outcome and
  decision counters (a ring of 4,096 slots each, as the memory participant remembers);
* ``l`` lock table (``map`` NUL ``key`` -> {txn: mode}); ``s`` staged transactions (ids);
  ``x|<txn>`` a staged transaction; ``t|<txn>`` status records, ``tu`` and ``tq|<n>`` their
  sweep indexes (grid/ignite/statuses.py);
* ``r|<map>|<key>`` reference counts; ``h|<map>|<key>`` kept overwritten states
  ([end, begin, value hex]); ``hk|<map>`` keys with kept states; ``hx`` what to forget first;
* ``o|<request>`` answers, ``os|<slot>`` the ring; ``d|<txn>`` decisions, ``ds|<slot>``.

The meta record is read first by every step, and a pessimistic read locks it until the
transaction ends: the steps of one partition run one at a time, like a Lua script or an entry
processor, and the transaction makes each all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from grid.entry import pack

EMPTY_META: dict[str, Any] = {
    "lsn": 0,
    "version": 0,
    "floor": 0,
    "maps": {},
    "changes": {},
    "outcomes": 0,
    "decided": 0,
}


RECORDS_CACHE = "shoal.records"
# The commit numbers' leases (grid/ignite/sequence.py), read by one-phase steps.
LEASES_CACHE = "shoal.leases"
ENTRIES_CACHE_PREFIX = "shoal.e."
Caches = Callable[[str], Any]


def entries_cache_name(map_name: str) -> str:
    return ENTRIES_CACHE_PREFIX + map_name


def partition_prefix(namespace: str, index: int) -> str:
    return f"{namespace}|p{index}|"


class PartitionRecords:
    """Reads (locking, cached) and buffered writes of one partition's records."""

    def __init__(self, caches: Caches, scan_caches: Caches, namespace: str, index: int) -> None:
        self._caches = caches
        self.namespace = namespace
        # Scans run on a connection with no transaction open (see IgniteBackend.client).
        self._scan_caches = scan_caches
        self.index = index
        self.prefix = partition_prefix(namespace, index)
        self._records = caches(RECORDS_CACHE)
        self._read: dict[str, Any] = {}
        self._written: dict[str, Any] = {}
        self._entries_read: dict[tuple[str, str], bytes | None] = {}
        self._entries_written: dict[tuple[str, str], bytes | None] = {}
        self.meta: dict[str, Any] = self.get_json("m") or dict(EMPTY_META, maps={}, changes={})

    # Plain records ------------------------------------------------------------------

    def get(self, name: str) -> Any:
        if name in self._written:
            return self._written[name]
        if name not in self._read:
            self._read[name] = self._records.get(self.prefix + name)
        return self._read[name]

    def get_many(self, names: list[str]) -> None:
        """Reads (and locks) several records in one round trip."""
        wanted = [name for name in names if name not in self._read and name not in self._written]
        if wanted:
            found = self._records.get_all([self.prefix + name for name in wanted])
            for name in wanted:
                self._read[name] = found.get(self.prefix + name)

    def set(self, name: str, value: Any) -> None:
        self._written[name] = value

    def delete(self, name: str) -> None:
        self._written[name] = None

    def get_json(self, name: str) -> Any:
        raw = self.get(name)
        return None if raw is None else orjson.loads(raw)

    def set_json(self, name: str, value: Any) -> None:
        self.set(name, orjson.dumps(value).decode())

    # Entries ------------------------------------------------------------------------

    def entries_cache(self, map_name: str) -> Any:
        return self._caches(entries_cache_name(map_name))

    def entries(self, targets: list[tuple[str, str]]) -> dict[tuple[str, str], bytes | None]:
        """The packed entries of keys, read (and locked) one get_all per map."""
        by_map: dict[str, list[str]] = {}
        for map_name, key in targets:
            if (map_name, key) not in self._entries_read:
                by_map.setdefault(map_name, []).append(key)
        for map_name, keys in by_map.items():
            stored = self.entries_cache(map_name).get_all([self.prefix + k for k in keys])
            for key in keys:
                raw = stored.get(self.prefix + key)
                self._entries_read[(map_name, key)] = None if raw is None else bytes(raw)
        found: dict[tuple[str, str], bytes | None] = {}
        for target in targets:
            if target in self._entries_written:
                found[target] = self._entries_written[target]
            else:
                found[target] = self._entries_read[target]
        return found

    def set_entry(self, map_name: str, key: str, value: bytes | None, version: int) -> None:
        self._entries_written[(map_name, key)] = None if value is None else pack(value, version)

    def number_held(self, key: str) -> bool:
        """Whether a commit number's lease entry (grid/ignite/sequence.py) still exists; read
        (and locked) in this transaction, so the number cannot be released meanwhile."""
        return self._caches(LEASES_CACHE).get(key) is not None

    def drop_entries(self, map_name: str) -> None:
        """Removes this partition's entries and reference counts of a map (scans both caches:
        dropping a map is rare)."""
        mine = self.prefix
        with self._scan_caches(entries_cache_name(map_name)).scan(page_size=1000) as cursor:
            keys = [key for key, _ in cursor if isinstance(key, str) and key.startswith(mine)]
        for key in keys:
            self._entries_written[(map_name, key[len(mine) :])] = None
        references = f"{self.prefix}r|{map_name}|"
        with self._scan_caches(RECORDS_CACHE).scan(page_size=1000) as cursor:
            names = [
                key for key, _ in cursor if isinstance(key, str) and key.startswith(references)
            ]
        for name in names:
            self.delete(name[len(self.prefix) :])

    def flush(self) -> None:
        """Sends the buffered writes (still inside the transaction)."""
        puts = {
            self.prefix + name: value for name, value in self._written.items() if value is not None
        }
        removes = [self.prefix + name for name, value in self._written.items() if value is None]
        # Every step changes the meta record (its lsn at least).
        puts[self.prefix + "m"] = orjson.dumps(self.meta).decode()
        if puts:
            self._records.put_all(puts)
        if removes:
            self._records.remove_keys(removes)
        by_map: dict[str, tuple[dict[str, bytes], list[str]]] = {}
        for (map_name, key), value in self._entries_written.items():
            map_puts, map_removes = by_map.setdefault(map_name, ({}, []))
            if value is None:
                map_removes.append(self.prefix + key)
            else:
                map_puts[self.prefix + key] = value
        for map_name, (map_puts, map_removes) in by_map.items():
            cache = self.entries_cache(map_name)
            if map_puts:
                cache.put_all(map_puts)
            if map_removes:
                cache.remove_keys(map_removes)
