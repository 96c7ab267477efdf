"""The catalog of maps: names, schemas (versioned), sketch specifications.

The catalog is small and changes rarely, so each change rewrites it whole through a
`CatalogStore` (for the memory backend, one JSON file replaced atomically; on a shared store,
a versioned record changed by compare-and-set, see `VersionedCatalogStore`).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from grid.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from grid.schema import Schema, Validator, check_compatible, parse_schema

MAP_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
# Maps whose names start with this belong to the coordinator itself (for example the
# pipelines' `__offsets`): clients may read them but not create, write or drop them.
SYSTEM_MAP_PREFIX = "__"


T = TypeVar("T")


def is_system_map(name: str) -> bool:
    return name.startswith(SYSTEM_MAP_PREFIX)


@dataclass(frozen=True)
class MapDefinition:
    name: str
    schema: Schema | None
    created_ms: int
    # The sketch specification of a sketch map (kind and parameters), JSON.
    sketch: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schema": None if self.schema is None else self.schema.to_json(),
            "created_ms": self.created_ms,
            "sketch": self.sketch,
        }

    @staticmethod
    def from_json(described: dict[str, Any]) -> MapDefinition:
        schema = described.get("schema")
        return MapDefinition(
            name=described["name"],
            schema=None if schema is None else parse_schema(schema),
            created_ms=described.get("created_ms", 0),
            sketch=described.get("sketch"),
        )


class CatalogStore(Protocol):
    def load(self) -> list[dict[str, Any]]: ...

    def save(self, maps: list[dict[str, Any]]) -> None: ...


class VersionedCatalogStore(CatalogStore, Protocol):
    """A catalog shared by several coordinators (grid/redis/catalog_store.py): versioned, and
    changed by compare-and-set on the version, so two changes racing cannot both win."""

    def load_versioned(self) -> tuple[int, list[dict[str, Any]]]: ...

    def save_if(self, expected_version: int | None, maps: list[dict[str, Any]]) -> int | None: ...

    def version(self) -> int:
        """The stored version alone (one small read, no document): at least the version of
        every change acknowledged so far, since a change raises it before it is answered."""
        ...


class FileCatalogStore:
    """The catalog as one JSON file, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        loaded: list[dict[str, Any]] = orjson.loads(self.path.read_bytes())["maps"]
        return loaded

    def save(self, maps: list[dict[str, Any]]) -> None:
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(orjson.dumps({"maps": maps}, option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        descriptor = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def check_map_name(name: str) -> None:
    if not isinstance(name, str) or not MAP_NAME_PATTERN.match(name):
        raise InvalidArgument(
            f"map name {name!r} must match {MAP_NAME_PATTERN.pattern}", field="map"
        )
    if name.startswith("__"):
        raise InvalidArgument(f"map name '{name}' is reserved (leading '__')", field="map")


class Catalog:
    """Map definitions with their compiled validators; thread-safe."""

    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        # A shared store's catalog: every change is checked and saved against its latest
        # version, and `refresh` (called when another coordinator changes it) reloads it.
        self._versioned: VersionedCatalogStore | None = (
            store if hasattr(store, "save_if") else None  # type: ignore[assignment]
        )
        self._version = 0
        self._lock = threading.Lock()
        self._maps: dict[str, MapDefinition] = {}
        self._validators: dict[str, Validator] = {}
        self._guarded: dict[str, frozenset[str]] = {}
        if self._versioned is not None:
            self._version, described_maps = self._versioned.load_versioned()
        else:
            described_maps = store.load()
        self._replace(described_maps)

    def _replace(self, described_maps: list[dict[str, Any]]) -> None:
        maps: list[MapDefinition] = []
        for described in described_maps:
            try:
                maps.append(MapDefinition.from_json(described))
            except InvalidArgument as error:
                # A schema stored by an older version that this one refuses (a pattern
                # RE2 cannot run, for example): name the map, so it can be fixed.
                raise FailedPrecondition(
                    f"the catalog's map '{described.get('name')}' has a schema this version "
                    f"refuses: {error.message}",
                    field="map",
                ) from None
        self._maps.clear()
        self._validators.clear()
        self._guarded.clear()
        for definition in maps:
            self._install(definition)

    @property
    def version(self) -> int:
        """The shared catalog's version this coordinator has (0 for a file catalog)."""
        return self._version

    def refresh(self) -> None:
        """Loads the shared catalog again when it changed (another coordinator's change)."""
        if self._versioned is None:
            return
        with self._lock:
            self._refresh_locked()

    def confirm(self) -> bool:
        """Makes sure this coordinator holds the shared catalog's latest version, reloading it
        when another coordinator changed it; True when it reloaded. A data call that depends on
        the catalog calls this first (`Planner.plan`), so a change acknowledged by any
        coordinator holds for every call made after it: one small read of the version, no
        document, and nothing at all for a file catalog (docs/architecture/catalog.md)."""
        if self._versioned is None:
            return False
        try:
            stored = self._versioned.version()
        except Unavailable as error:
            # Without the catalog, a write could be checked against a schema another
            # coordinator already replaced: refuse rather than guess.
            raise Unavailable(
                "the catalog cannot be read to confirm the schemas this call is checked "
                f"against: {error.message}"
            ) from None
        if stored == self._version:
            return False
        self._refuse_older(stored)
        with self._lock:
            self._refresh_locked()
        return True

    def _refuse_older(self, stored: int) -> None:
        """A shared catalog's version only rises, so one below a version this coordinator
        already held means the store lost what it acknowledged (restarted without
        persistence, flushed, or restored from an older copy). Serving on would answer
        NOT_FOUND for maps that exist for every client, and take writes into a grid that
        forgot the earlier ones: refuse until an operator has looked (and restarted this
        coordinator)."""
        if 0 <= stored < self._version:
            raise Unavailable(
                f"the store's catalog is at version {stored}, older than version "
                f"{self._version} this coordinator already saw: the store lost acknowledged "
                "data (restarted without persistence, flushed, or restored from an older "
                "copy); this coordinator refuses calls until it is restarted"
            )

    def _refresh_locked(self) -> None:
        assert self._versioned is not None
        version, described_maps = self._versioned.load_versioned()
        self._refuse_older(version)
        if version != self._version:
            self._replace(described_maps)
            self._version = version

    def _change(self, change: Callable[[], tuple[T, bool]]) -> T:
        """Runs `change` (its result, and whether it changed the maps) under the lock, and
        saves what it changed. On a shared store it runs against the latest catalog, and
        again after a reload when another coordinator's change was saved first: every
        check (names, compatibility, references) is made against the catalog it replaces."""
        with self._lock:
            while True:
                if self._versioned is not None:
                    self._refresh_locked()
                result, changed = change()
                if not changed:
                    return result
                described = [definition.to_json() for definition in self._maps.values()]
                if self._versioned is None:
                    self._store.save(described)
                    return result
                saved = self._versioned.save_if(self._version, described)
                if saved is not None:
                    self._version = saved
                    return result
                # Lost the race: the reload at the top of the loop drops this attempt.
                self._version = -1

    def _install(self, definition: MapDefinition) -> None:
        self._maps[definition.name] = definition
        self._validators.pop(definition.name, None)
        self._guarded.pop(definition.name, None)
        if definition.schema is not None:
            self._validators[definition.name] = Validator(definition.schema)
            self._guarded[definition.name] = frozenset(
                spec.name
                for spec in definition.schema.fields
                if spec.minimum is not None
                or spec.maximum is not None
                or spec.max_length is not None
                or spec.min_length is not None
                or spec.enum is not None
            )

    def get(self, name: str) -> MapDefinition:
        definition = self._maps.get(name)
        if definition is None:
            # Another coordinator may have created it a moment ago: read the store's catalog
            # before answering NOT_FOUND (the cost falls on misses only).
            self.confirm()
            definition = self._maps.get(name)
        if definition is None:
            raise NotFound(f"map '{name}' does not exist", field="map")
        return definition

    def _get(self, name: str) -> MapDefinition:
        """`get` inside a change, which already runs against the latest catalog."""
        definition = self._maps.get(name)
        if definition is None:
            raise NotFound(f"map '{name}' does not exist", field="map")
        return definition

    def find(self, name: str) -> MapDefinition | None:
        return self._maps.get(name)

    def validator(self, name: str) -> Validator | None:
        return self._validators.get(name)

    def is_guarded(self, name: str, field_name: str) -> bool:
        """True when a field has rules that a commutative update could break."""
        return field_name in self._guarded.get(name, frozenset())

    def names(self) -> list[str]:
        return sorted(self._maps)

    def definitions(self) -> list[MapDefinition]:
        return [self._maps[name] for name in sorted(self._maps)]

    def create(
        self,
        name: str,
        schema: Schema | None,
        *,
        now_ms: int,
        sketch: dict[str, Any] | None = None,
        if_not_exists: bool = False,
    ) -> tuple[MapDefinition, bool]:
        """Creates a map; returns it and whether it was created now."""
        check_map_name(name)

        def change() -> tuple[tuple[MapDefinition, bool], bool]:
            existing = self._maps.get(name)
            if existing is not None:
                if if_not_exists:
                    return (existing, False), False
                raise AlreadyExists(f"map '{name}' already exists", field="map")
            if schema is not None:
                self._check_references(name, schema)
            definition = MapDefinition(name=name, schema=schema, created_ms=now_ms, sketch=sketch)
            self._install(definition)
            return (definition, True), True

        return self._change(change)

    def create_system(self, name: str, *, now_ms: int) -> MapDefinition:
        """Creates, or returns when it exists, a schemaless map reserved for the system.

        The internal path around `check_map_name`, which refuses '__' names to clients.
        """
        if not is_system_map(name) or not MAP_NAME_PATTERN.match(name):
            raise InvalidArgument(f"{name!r} is not a system map name", field="map")

        def change() -> tuple[MapDefinition, bool]:
            existing = self._maps.get(name)
            if existing is not None:
                return existing, False
            definition = MapDefinition(name=name, schema=None, created_ms=now_ms)
            self._install(definition)
            return definition, True

        return self._change(change)

    def alter_schema(
        self, name: str, schema: Schema, *, stored_entries: int | None = None
    ) -> MapDefinition:
        """Replaces a map's schema with a compatible one. `stored_entries` is how many values
        the map holds, when known: an empty map takes any schema, since no stored value
        can be invalidated."""

        def change() -> tuple[MapDefinition, bool]:
            current = self._get(name)
            if current.sketch is not None:
                raise InvalidArgument(f"map '{name}' is a sketch map; it has no schema")
            if current.schema is None:
                raise FailedPrecondition(
                    f"map '{name}' is schemaless; a schema cannot be added to stored values",
                    field="schema",
                )
            try:
                if stored_entries != 0:
                    check_compatible(current.schema, schema)
            except InvalidArgument as error:
                held = "" if stored_entries is None else f" ({stored_entries} values stored)"
                raise FailedPrecondition(
                    f"schema change refused{held}: {error.message}", field=error.field
                ) from None
            self._check_references(name, schema)
            definition = MapDefinition(
                name=name,
                schema=schema.with_version(current.schema.version + 1),
                created_ms=current.created_ms,
            )
            self._install(definition)
            return definition, True

        return self._change(change)

    def drop(self, name: str) -> None:

        def change() -> tuple[None, bool]:
            self._check_droppable(self._get(name))
            del self._maps[name]
            self._validators.pop(name, None)
            self._guarded.pop(name, None)
            return None, True

        self._change(change)

    def check_droppable(self, name: str) -> MapDefinition:
        return self._check_droppable(self.get(name))

    def _check_droppable(self, definition: MapDefinition) -> MapDefinition:
        name = definition.name
        if is_system_map(name):
            raise FailedPrecondition(f"map '{name}' belongs to the system", field="map")
        for other in self._maps.values():
            if other.name == name or other.schema is None:
                continue
            for spec in other.schema.references():
                if spec.ref == name:
                    raise FailedPrecondition(
                        f"map '{name}' is referenced by '{other.name}.{spec.name}'",
                        field="map",
                    )
        return definition

    def referencing(self, name: str) -> list[tuple[str, str]]:
        """The (map, field) pairs whose values reference keys of map `name`."""
        found = []
        for other in self._maps.values():
            if other.schema is None:
                continue
            for spec in other.schema.references():
                if spec.ref == name:
                    found.append((other.name, spec.name))
        return found

    def _check_references(self, name: str, schema: Schema) -> None:
        for spec in schema.references():
            if spec.ref != name and spec.ref not in self._maps:
                raise InvalidArgument(
                    f"field '{spec.name}' references map '{spec.ref}', which does not exist",
                    field=spec.name,
                )
