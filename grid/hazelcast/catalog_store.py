"""The catalog of a Hazelcast namespace: one document with a version, changed by
compare-and-set (``replace_if_same``), and every change announced to the coordinators that
watch it by an entry listener, with polling for a notification that never came."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson

from grid.hazelcast.lost import unavailable_when_lost

CATALOG_KEY = "catalog"
# The version alone, raised after each swap of the document and before the change is answered:
# what every data call reads to confirm its catalog (``grid.catalog.Catalog.confirm``) without
# fetching and decoding the document.
VERSION_KEY = "catalog.version"
# How often a watcher reads the version besides listening: a notification lost (a reconnect
# drops listener events) is noticed within this, which keeps "seen within a second".
POLL_S = 0.5


def catalog_map_name(namespace: str) -> str:
    return f"shoal.{namespace}.catalog"


class HazelcastCatalogStore:
    """A ``grid.catalog.CatalogStore`` in Hazelcast that every coordinator of the namespace
    shares, with the compare-and-set and watching of grid/redis/catalog_store.py."""

    def __init__(self, client: Any, namespace: str) -> None:
        self._map = client.get_map(catalog_map_name(namespace))
        self._blocking = self._map.blocking()

    def _raw(self) -> bytes | None:
        with unavailable_when_lost("a read of the catalog"):
            raw = self._blocking.get(CATALOG_KEY)
        return None if raw is None else bytes(raw)

    @staticmethod
    def _decode(raw: bytes | None) -> tuple[int, list[dict[str, Any]]]:
        if raw is None:
            return 0, []
        document = orjson.loads(raw)
        return int(document["version"]), list(document["maps"])

    def load_versioned(self) -> tuple[int, list[dict[str, Any]]]:
        return self._decode(self._raw())

    def save_if(self, expected_version: int | None, maps: list[dict[str, Any]]) -> int | None:
        """Saves when the catalog is still at ``expected_version`` (None: whatever it is);
        the new version, or None when another change came first."""
        while True:
            raw = self._raw()
            version = self._decode(raw)[0]
            if expected_version is not None and version != expected_version:
                return None
            document = orjson.dumps({"version": version + 1, "maps": maps})
            with unavailable_when_lost("a change of the catalog"):
                if raw is None:
                    swapped = self._blocking.put_if_absent(CATALOG_KEY, document) is None
                else:
                    swapped = bool(self._blocking.replace_if_same(CATALOG_KEY, raw, document))
            if swapped:
                self._raise_version(version + 1)
                return version + 1
            if expected_version is not None:
                return None

    def _raise_version(self, version: int) -> None:
        """Sets the version entry to ``version`` unless a later change already raised it past:
        two changes finishing out of order leave the higher."""
        with unavailable_when_lost("a change of the catalog's version"):
            while True:
                current = self._blocking.get(VERSION_KEY)
                if current is None:
                    if self._blocking.put_if_absent(VERSION_KEY, version) is None:
                        return
                elif int(current) >= version or self._swap_version(current, version):
                    return

    def _swap_version(self, current: Any, version: int) -> bool:
        return bool(self._blocking.replace_if_same(VERSION_KEY, current, version))

    def version(self) -> int:
        """The stored version alone (one small get): the check every data call makes."""
        with unavailable_when_lost("a read of the catalog's version"):
            current = self._blocking.get(VERSION_KEY)
        if current is None:
            # None yet, or a catalog saved before the version entry existed: write it once.
            version = self.load_versioned()[0]
            if version:
                self._raise_version(version)
            return version
        return int(current)

    def load(self) -> list[dict[str, Any]]:
        return self.load_versioned()[1]

    def save(self, maps: list[dict[str, Any]]) -> None:
        self.save_if(None, maps)

    def watch(self, on_change: Callable[[int], None]) -> CatalogWatcher:
        return CatalogWatcher(self, on_change)

    def listen(self, on_event: Callable[[], None]) -> str:
        """Calls ``on_event`` whenever the catalog entry is written; the registration id."""

        def notified(event: Any) -> None:
            on_event()

        registration: str = self._map.add_entry_listener(
            key=CATALOG_KEY, added_func=notified, updated_func=notified
        ).result()
        return registration

    def stop_listening(self, registration: str) -> None:
        self._blocking.remove_entry_listener(registration)


class CatalogWatcher:
    """A thread that calls ``on_change(version)`` once per new catalog version it learns of,
    woken by the entry listener or, when a notification is lost, by the poll interval."""

    def __init__(self, store: HazelcastCatalogStore, on_change: Callable[[int], None]) -> None:
        self._store = store
        self._on_change = on_change
        self._seen = store.load_versioned()[0]
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.registration = store.listen(self._wake.set)
        self._thread = threading.Thread(target=self._run, name="catalog-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            # Whatever woke us (a notification or the poll interval), the stored version decides.
            version = self._store.load_versioned()[0]
            if version > self._seen:
                self._seen = version
                self._on_change(version)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._store.stop_listening(self.registration)
