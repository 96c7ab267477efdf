"""Sketch maps: creation with validated specs, batch adds as commutative writes, merged reads.

A sketch map is a map whose definition carries a sketch spec (kind and parameters).
Its values are serialized sketches, one per key. An add is one SKETCH_ADD write of the
whole batch, committed like any write: concurrent adds to a key take commutative
locks, so they never conflict, and the participant hook merges each batch into the
stored sketch inside the partition's atomic step. A read of several keys merges
their sketches here, from the stored bytes alone.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coordinator.sketches.accuracy import AccuracyConfig, AccuracyReport, SketchAccuracy
from coordinator.sketches.apply import SketchApplier, SpecCache, load_sketch
from coordinator.sketches.bounds import check_fits, sketch_bytes_max
from coordinator.sketches.items import item_count
from grid.catalog import MapDefinition
from grid.entry import value_of, version_of
from grid.errors import AlreadyExists, InvalidArgument
from grid.memory.records import Op
from grid.participant import Write
from grid.sketches import Sketch, SketchKind, SketchParameterError, SketchSpec, merge_all

if TYPE_CHECKING:
    from coordinator.node import Node

FORMATS = {
    SketchKind.HYPERLOGLOG: "datasketches.hll_sketch (HLL_4, compact)",
    SketchKind.COUNT_MIN: "datasketches.count_min_sketch (seed 9001)",
    SketchKind.KLL: "datasketches.kll_doubles_sketch",
    SketchKind.TOP_K: "datasketches.frequent_strings_sketch",
    SketchKind.BLOOM: "shoal.bloom v1 (see grid/sketches/_bloom.py)",
    SketchKind.RESERVOIR: "shoal.reservoir v1 (see grid/sketches/_reservoir.py)",
}


@dataclass(frozen=True)
class SketchMapView:
    """A sketch map: its spec, the bound on one sketch's size, and what it holds now."""

    name: str
    spec: SketchSpec
    sketch_bytes_max: int
    keys: int
    memory_bytes: int


@dataclass(frozen=True)
class Loaded:
    """One key's sketch, or the union of several keys' sketches, as read from the grid."""

    spec: SketchSpec
    sketch: Sketch
    keys_found: int
    memory_bytes: int


@dataclass(frozen=True)
class Exported:
    spec: SketchSpec
    data: bytes
    format: str
    version: int


def parse_spec(kind: str, params: Mapping[str, Any]) -> SketchSpec:
    """A validated spec; InvalidArgument naming the parameter (or `kind`) at fault."""
    try:
        return SketchSpec.from_dict({"kind": kind, "params": dict(params)})
    except SketchParameterError as error:
        raise InvalidArgument(str(error), field=error.parameter) from None


class SketchMaps:
    """The node's sketch maps; the gRPC service and the SQL engine call these."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._catalog = node.catalog
        self.specs = SpecCache(node.catalog)
        self._rng = random.Random(node.rng.getrandbits(64))
        self.applier = SketchApplier(self.specs, random.Random(node.rng.getrandbits(64)))
        config = node.config
        self.accuracy: SketchAccuracy | None = None
        if config.sketch_accuracy_sample_rate > 0:
            self.accuracy = SketchAccuracy(
                AccuracyConfig(
                    sample_rate=config.sketch_accuracy_sample_rate,
                    keys_max=config.sketch_accuracy_keys_max,
                    items_per_key_max=config.sketch_accuracy_items_per_key_max,
                ),
                node.catalog,
                self.specs,
                node.partitioner,
                node.backend.partitions,
                random.Random(node.rng.getrandbits(64)),
                node.metrics,
            )
            node.transactions.observer = self.accuracy
        self._adds = node.metrics.counter(
            "shoal_sketch_adds_total",
            "Batches added to sketches through Sketches.Add, by kind",
            ("kind",),
        )
        self._items = node.metrics.counter(
            "shoal_sketch_items_added_total",
            "Items added to sketches through Sketches.Add",
            ("kind",),
        )

    # Maps ------------------------------------------------------------------------

    def create(
        self, name: str, kind: str, params: Mapping[str, Any], *, if_not_exists: bool = False
    ) -> SketchMapView:
        spec = parse_spec(kind, params)
        check_fits(spec, self._node.limits.sketch_bytes_max)
        existing = self._catalog.find(name)
        if existing is not None and if_not_exists:
            found = None if existing.sketch is None else SketchSpec.from_dict(existing.sketch)
            if found != spec:
                raise AlreadyExists(
                    f"map '{name}' exists with another spec ({found!r}, not {spec!r})",
                    field="map",
                )
        definition = self._node.create_map(name, sketch=spec.to_dict(), if_not_exists=if_not_exists)
        return self._view(definition)

    def describe(self, name: str) -> SketchMapView:
        definition = self._catalog.get(name)
        self.specs.spec(name)
        return self._view(definition)

    def list(self) -> list[SketchMapView]:
        return [
            self._view(definition)
            for definition in self._catalog.definitions()
            if definition.sketch is not None
        ]

    def _view(self, definition: MapDefinition) -> SketchMapView:
        spec = self.specs.spec(definition.name)
        stats = self._node.map_stats(definition.name)
        return SketchMapView(
            definition.name, spec, sketch_bytes_max(spec), stats.entries, stats.memory_bytes
        )

    # Writes ----------------------------------------------------------------------

    def add(self, map_name: str, key: str, items: bytes, *, request_id: bytes = b"") -> int:
        """Add a batch (in a wire form of coordinator.sketches.items); return the new version."""
        spec = self.specs.spec(map_name)
        write = Write(Op.SKETCH_ADD, map_name, key, items)
        result = self._node.transactions.commit(
            request_id or os.urandom(16), (), [write], plain=True
        )
        if not result.replayed:
            self._adds.labels(kind=spec.kind.value).inc()
            self._items.labels(kind=spec.kind.value).inc(item_count(items))
        return result.versions[0]

    # Reads -----------------------------------------------------------------------

    def load(self, map_name: str, keys: Sequence[str]) -> Loaded:
        """The committed sketch of one key, or the union of several (read at one instant)."""
        spec = self.specs.spec(map_name)
        unique = list(dict.fromkeys(keys))
        if not unique:
            raise InvalidArgument("keys: name at least one key", field="keys")
        keyvalue = self._node.keyvalue
        if len(unique) == 1:
            entries = [keyvalue.get(map_name, unique[0])]
        else:
            entries = keyvalue.get_many(map_name, unique, consistent=True)
        stored = [value_of(entry) for entry in entries if entry is not None]
        sketches = [load_sketch(spec, data, self._rng, map_name) for data in stored]
        if len(sketches) == 1:
            return Loaded(spec, sketches[0], 1, len(stored[0]))
        merged = merge_all(spec, sketches, rng=self._rng)
        return Loaded(spec, merged, len(sketches), len(merged.serialize()))

    def export(self, map_name: str, key: str) -> Exported | None:
        spec = self.specs.spec(map_name)
        entry = self._node.keyvalue.get(map_name, key)
        if entry is None:
            return None
        return Exported(spec, value_of(entry), FORMATS[spec.kind], version_of(entry))

    def measure_accuracy(self) -> AccuracyReport:
        if self.accuracy is None:
            return AccuracyReport((), 0.0, 0, 0, 0, 0)
        return self.accuracy.measure()
