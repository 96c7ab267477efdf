"""The catalog of maps: names, schemas (versioned), sketch specifications.

The catalog is small and changes rarely, so each change rewrites it whole through a
`CatalogStore` (for the memory backend, one JSON file replaced atomically).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from grid.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from grid.schema import Schema, Validator, check_compatible, parse_schema

MAP_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
# Maps whose names start with this belong to the coordinator itself (for example the
# pipelines' `__offsets`): clients may read them but not create, write or drop them.
SYSTEM_MAP_PREFIX = "__"


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
        self._lock = threading.Lock()
        self._maps: dict[str, MapDefinition] = {}
        self._validators: dict[str, Validator] = {}
        self._guarded: dict[str, frozenset[str]] = {}
        for described in store.load():
            try:
                definition = MapDefinition.from_json(described)
            except InvalidArgument as error:
                # A schema stored by an older version that this one refuses (a pattern
                # RE2 cannot run, for example): name the map, so it can be fixed.
                raise FailedPrecondition(
                    f"the catalog's map '{described.get('name')}' has a schema this version "
                    f"refuses: {error.message}",
                    field="map",
                ) from None
            self._install(definition)

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

    def _save(self) -> None:
        self._store.save([definition.to_json() for definition in self._maps.values()])

    def get(self, name: str) -> MapDefinition:
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
        with self._lock:
            existing = self._maps.get(name)
            if existing is not None:
                if if_not_exists:
                    return existing, False
                raise AlreadyExists(f"map '{name}' already exists", field="map")
            if schema is not None:
                self._check_references(name, schema)
            definition = MapDefinition(name=name, schema=schema, created_ms=now_ms, sketch=sketch)
            self._install(definition)
            self._save()
            return definition, True

    def create_system(self, name: str, *, now_ms: int) -> MapDefinition:
        """Creates, or returns when it exists, a schemaless map reserved for the system.

        The internal path around `check_map_name`, which refuses '__' names to clients.
        """
        if not is_system_map(name) or not MAP_NAME_PATTERN.match(name):
            raise InvalidArgument(f"{name!r} is not a system map name", field="map")
        with self._lock:
            existing = self._maps.get(name)
            if existing is not None:
                return existing
            definition = MapDefinition(name=name, schema=None, created_ms=now_ms)
            self._install(definition)
            self._save()
            return definition

    def alter_schema(
        self, name: str, schema: Schema, *, stored_entries: int | None = None
    ) -> MapDefinition:
        """Replaces a map's schema with a compatible one. `stored_entries` is how many values
        the map holds, when known: an empty map takes any schema, since no stored value
        can be invalidated."""
        with self._lock:
            current = self.get(name)
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
            self._save()
            return definition

    def drop(self, name: str) -> None:
        with self._lock:
            self.check_droppable(name)
            del self._maps[name]
            self._validators.pop(name, None)
            self._guarded.pop(name, None)
            self._save()

    def check_droppable(self, name: str) -> MapDefinition:
        definition = self.get(name)
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
