"""The catalog of an Ignite namespace: one document with a version, changed by compare-and-set
(``replace_if_equals``); the thin client has no listeners, so watchers poll the version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson

from grid.ignite.lost import guarded
from grid.ignite.records import RECORDS_CACHE

# How often a watcher reads the version (one small get): with no notification to wake it, a
# change waits up to this long, and must be seen everywhere within a second.
POLL_S = 0.2


class IgniteCatalogStore:
    """A ``grid.catalog.CatalogStore`` in Ignite that every coordinator of the namespace shares,
    with the compare-and-set and watching of grid/redis/catalog_store.py."""

    def __init__(self, caches: Callable[[str], Any], namespace: str) -> None:
        self._caches = caches
        self._key = f"{namespace}|catalog"
        # The version alone, raised after each swap of the document and before the change is
        # answered: what every data call reads to confirm its catalog without the document.
        self._version_key = f"{namespace}|catalog_version"

    def _cache(self) -> Any:
        return self._caches(RECORDS_CACHE)

    @staticmethod
    def _decode(raw: str | None) -> tuple[int, list[dict[str, Any]]]:
        if raw is None:
            return 0, []
        document = orjson.loads(raw)
        return int(document["version"]), list(document["maps"])

    @guarded
    def load_versioned(self) -> tuple[int, list[dict[str, Any]]]:
        return self._decode(self._cache().get(self._key))

    @guarded
    def save_if(self, expected_version: int | None, maps: list[dict[str, Any]]) -> int | None:
        """Saves when the catalog is still at ``expected_version`` (None: whatever it is);
        the new version, or None when another change came first."""
        cache = self._cache()
        while True:
            raw = cache.get(self._key)
            version = self._decode(raw)[0]
            if expected_version is not None and version != expected_version:
                return None
            document = orjson.dumps({"version": version + 1, "maps": maps}).decode()
            if raw is None:
                swapped = bool(cache.put_if_absent(self._key, document))
            else:
                swapped = bool(cache.replace_if_equals(self._key, raw, document))
            if swapped:
                self._raise_version(cache, version + 1)
                return version + 1
            if expected_version is not None:
                return None

    def _raise_version(self, cache: Any, version: int) -> None:
        """Sets the version entry to ``version`` unless a later change already raised it past:
        two changes finishing out of order leave the higher."""
        while True:
            current = cache.get(self._version_key)
            if current is None:
                if cache.put_if_absent(self._version_key, str(version)):
                    return
            elif int(current) >= version or cache.replace_if_equals(
                self._version_key, current, str(version)
            ):
                return

    @guarded
    def version(self) -> int:
        """The stored version alone (one small get): the check every data call makes."""
        cache = self._cache()
        current = cache.get(self._version_key)
        if current is None:
            # None yet, or a catalog saved before the version entry existed: write it once.
            version = self._decode(cache.get(self._key))[0]
            if version:
                self._raise_version(cache, version)
            return version
        return int(current)

    def load(self) -> list[dict[str, Any]]:
        return self.load_versioned()[1]

    def save(self, maps: list[dict[str, Any]]) -> None:
        self.save_if(None, maps)

    def watch(self, on_change: Callable[[int], None]) -> CatalogWatcher:
        return CatalogWatcher(self, on_change)


class CatalogWatcher:
    """A thread that calls ``on_change(version)`` once per new catalog version it polls."""

    def __init__(self, store: IgniteCatalogStore, on_change: Callable[[int], None]) -> None:
        self._store = store
        self._on_change = on_change
        self._seen = store.load_versioned()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catalog-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            version = self._store.load_versioned()[0]
            if version > self._seen:
                self._seen = version
                self._on_change(version)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
