"""The catalog of a Redis namespace: one key holding the map definitions as JSON."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from grid.redis.layout import catalog_key


class RedisCatalogStore:
    """A ``grid.catalog.CatalogStore`` in Redis: every coordinator of the namespace loads the
    same catalog. Saving replaces it whole, as the file store does; the compare-and-set on a
    catalog version and the change notifications of the design (docs/ARCHITECTURE.md,
    "Catalog") come with the catalog's own contract for them."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._key = catalog_key(namespace)

    def load(self) -> list[dict[str, Any]]:
        raw = self._client.get(self._key)
        if raw is None:
            return []
        maps: list[dict[str, Any]] = orjson.loads(raw)["maps"]
        return maps

    def save(self, maps: list[dict[str, Any]]) -> None:
        self._client.set(self._key, orjson.dumps({"maps": maps}))
