"""The catalog of a Redis namespace: one document with a version, changed by compare-and-set,
and every change announced to the coordinators that watch it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson

from grid.redis.layout import catalog_key
from grid.redis.replicas import ReplicaWait
from grid.redis.retrying import retried

# Swaps the document only when the version is still the one the writer read, bumps the version
# and announces it; 0 when another change won.
SAVE_IF = """
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[1] ~= '' and current ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], version)
return version
"""
LOAD = """
return {redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[1]) or ''}
"""
log = logging.getLogger(__name__)

# How often a watcher reads the version besides listening: a lost notification (pub/sub is
# fire-and-forget) is noticed within this, which keeps "seen within a second".
POLL_S = 0.5


class RedisCatalogStore:
    """A ``grid.catalog.CatalogStore`` in Redis that every coordinator of the namespace shares.

    ``load``/``save`` serve the catalog as it is used today (the whole catalog, replaced);
    ``load_versioned``/``save_if`` are the compare-and-set of the design (docs/architecture/
    catalog.md): two coordinators changing the catalog at once cannot both win, the loser reads
    again. ``watch`` calls back with the new version whenever another coordinator changes it.
    """

    def __init__(self, client: Any, namespace: str, replicas: ReplicaWait | None = None) -> None:
        self._client = client
        # A catalog change is on a replica before it is acknowledged.
        self._replicas = replicas or ReplicaWait(client, 0)
        tag = catalog_key(namespace)
        self._keys = [tag, f"{tag}:version"]
        self.channel = f"shoal:{namespace}:catalog"
        self._save_if = client.register_script(SAVE_IF)
        self._load = client.register_script(LOAD)

    @retried
    def load_versioned(self) -> tuple[int, list[dict[str, Any]]]:
        version, raw = self._load(keys=self._keys, args=[], client=self._client)
        maps: list[dict[str, Any]] = orjson.loads(raw)["maps"] if raw else []
        return int(version), maps

    @retried
    def save_if(self, expected_version: int | None, maps: list[dict[str, Any]]) -> int | None:
        """Saves when the catalog is still at ``expected_version`` (None: whatever it is);
        the new version, or None when another change came first."""
        document = orjson.dumps({"maps": maps})
        expected = "" if expected_version is None else str(expected_version)
        version = self._save_if(
            keys=self._keys, args=[expected, document, self.channel], client=self._client
        )
        if version:
            self._replicas.after_write(self._keys[0])
        return int(version) or None

    @retried
    def version(self) -> int:
        """The stored version alone: one GET, the check every data call makes
        (``grid.catalog.Catalog.confirm``); the script raised it before a change was answered."""
        return int(self._client.get(self._keys[1]) or 0)

    def load(self) -> list[dict[str, Any]]:
        return self.load_versioned()[1]

    def save(self, maps: list[dict[str, Any]]) -> None:
        self.save_if(None, maps)

    def watch(self, on_change: Callable[[int], None]) -> CatalogWatcher:
        return CatalogWatcher(self, on_change)

    def subscribe(self) -> Any:
        """A pub/sub connection listening to this catalog's change announcements."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        return pubsub


class CatalogWatcher:
    """A thread that calls ``on_change(version)`` once per new catalog version it learns of,
    from the change announcements or, when one is lost, from polling the version."""

    def __init__(self, store: RedisCatalogStore, on_change: Callable[[int], None]) -> None:
        self._store = store
        self._on_change = on_change
        self._seen = store.load_versioned()[0]
        self._stop = threading.Event()
        self._pubsub = store.subscribe()
        self._thread = threading.Thread(target=self._run, name="catalog-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._pubsub.get_message(timeout=POLL_S)
            except Exception:
                # A lost connection: pub/sub reconnects on the next call; until then the
                # version is polled.
                self._stop.wait(POLL_S)
            try:
                # Whatever woke us (a message or the poll interval), the version decides.
                version = self._store.load_versioned()[0]
            except Exception:
                log.warning("the catalog watcher cannot read the catalog; retrying")
                continue
            if version > self._seen:
                self._seen = version
                self._on_change(version)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
