"""Seeding a sandbox: production's maps at one read version, written as the sandbox's checkpoints.

Every partition is read at the same read version (`PartitionStore.items_at`, the
mechanism SQL snapshots and consistent reads use), so the seed holds each transaction
on all of its partitions or on none. The entries are not sent to the sandbox key by
key: before the sandbox's process starts, they are written into its data directory as
the memory backend's own files (the layout, the catalog, and per partition one Arrow
checkpoint at log position 0 whose commit version is the read version), so the child
starts exactly as production restarts from a checkpoint. The sandbox has the same
partition count as production, so each partition's entries go to the same partition.

Reference counts (how many values reference a key, which keep it from being deleted)
are not versioned; they are counted again from the seeded values. Maps that a seeded
map's schema references are seeded too, so a reference never dangles in a sandbox.
System maps (pipelines' offsets, dedup windows, outboxes) are not seeded: a sandbox
starts with no pipeline progress of its own. The ones named in `system_maps` are (the
auth map, when production checks tokens: a sandbox answers to the same tokens); they
have no catalog entry and are not counted as seeded entries.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pyarrow import ipc

from grid.backend import PartitionStore
from grid.catalog import Catalog, FileCatalogStore, MapDefinition, is_system_map
from grid.entry import value_of
from grid.errors import InvalidArgument, NotFound, ReadVersionTooOld
from grid.memory.backend import DATA_FORMAT_VERSION
from grid.memory.checkpoint import (
    CHECKPOINT_SCHEMA,
    FORMAT_VERSION,
    META_KEY,
    checkpoint_name,
    sync_directory,
)
from grid.partitioner import Partitioner

# A read version can be refused as too old when the snapshot takes longer than the
# window of kept versions under heavy writes; a new one is taken this many times.
SNAPSHOT_ATTEMPTS = 3


@dataclass(frozen=True)
class Production:
    """What seeding reads of production: narrow on purpose."""

    catalog: Catalog
    partitions: Sequence[PartitionStore]
    partitioner: Partitioner
    # A read version held while the seed reads at it (TransactionManager.reading), so the
    # states it needs outlive the window however long a big grid takes to read.
    reading: Callable[[], AbstractContextManager[int]]
    now_ms: Callable[[], int]


@dataclass(frozen=True)
class SeedResult:
    version: int
    at_ms: int
    maps: tuple[str, ...]
    entries: int


# Called with (phase, done, total).
Report = Callable[[str, int, int], None]


def seeded_definitions(catalog: Catalog, names: Sequence[str]) -> list[MapDefinition]:
    """The definitions to seed: the named maps (every map when none is named) and the
    maps their schemas reference, transitively. NotFound names an unknown map."""
    if not names:
        return sorted(
            (item for item in catalog.definitions() if not is_system_map(item.name)),
            key=lambda definition: definition.name,
        )
    for name in names:
        if is_system_map(name):
            raise InvalidArgument(
                f"'{name}' is a system map: production's pipeline progress and bookkeeping "
                "are never seeded into a sandbox",
                field="maps",
            )
    chosen: dict[str, MapDefinition] = {}
    waiting = list(names)
    while waiting:
        name = waiting.pop()
        if name in chosen:
            continue
        definition = catalog.find(name)
        if definition is None:
            raise NotFound(f"production has no map '{name}' to seed", field="maps")
        chosen[name] = definition
        if definition.schema is not None:
            waiting.extend(spec.ref for spec in definition.schema.references() if spec.ref)
    return [chosen[name] for name in sorted(chosen)]


def write_seed(
    target: Path,
    production: Production,
    definitions: Sequence[MapDefinition],
    report: Report,
    *,
    system_maps: Sequence[str] = (),
) -> SeedResult:
    """Writes the sandbox's data directory `target` (which must not hold data yet)."""
    partition_count = len(production.partitions)
    names = [definition.name for definition in definitions] + list(system_maps)
    version, at_ms, captured = _capture(production, names, report)
    refcounts = _reference_counts(production.partitioner, definitions, captured)
    target.mkdir(parents=True, exist_ok=True)
    _write_json(
        target / "shoal.json", {"format": DATA_FORMAT_VERSION, "partitions": partition_count}
    )
    FileCatalogStore(target / "catalog.json").save([item.to_json() for item in definitions])
    seeded = {definition.name for definition in definitions}
    total = sum(
        len(items) for per_map in captured for name, items in per_map.items() if name in seeded
    )
    written = 0
    report("seeding", 0, total)
    for index in range(partition_count):
        directory = target / "partitions" / f"p{index:04d}"
        directory.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "partition": index,
            "lsn": 0,
            "version": version,
            "staged": [],
            "statuses": [],
            "outcomes": [],
            "refcounts": [[m, k, count] for (m, k), count in refcounts[index].items()],
            "decided": [],
        }
        written += _write_checkpoint(directory, captured[index], meta, seeded)
        report("seeding", min(written, total), total)
    sync_directory(target)
    return SeedResult(version, at_ms, tuple(item.name for item in definitions), total)


def _capture(
    production: Production, names: Sequence[str], report: Report
) -> tuple[int, int, list[dict[str, list[tuple[str, bytes]]]]]:
    """Every partition's entries of the maps at one read version."""
    partitions = production.partitions
    for attempt in range(SNAPSHOT_ATTEMPTS):
        captured: list[dict[str, list[tuple[str, bytes]]]] = []
        try:
            with production.reading() as version:
                at_ms = production.now_ms()
                report("snapshot", 0, len(partitions))
                for index, partition in enumerate(partitions):
                    captured.append({name: partition.items_at(name, version) for name in names})
                    report("snapshot", index + 1, len(partitions))
        except ReadVersionTooOld:
            if attempt + 1 == SNAPSHOT_ATTEMPTS:
                raise
            continue
        return version, at_ms, captured
    raise AssertionError("unreachable")  # pragma: no cover


def _reference_counts(
    partitioner: Partitioner,
    definitions: Sequence[MapDefinition],
    captured: Sequence[dict[str, list[tuple[str, bytes]]]],
) -> list[Counter[tuple[str, str]]]:
    """Per partition, how many seeded values reference each key kept there."""
    counts: list[Counter[tuple[str, str]]] = [Counter() for _ in captured]
    for definition in definitions:
        if definition.schema is None or not definition.schema.references():
            continue
        fields = [(spec.name, spec.ref) for spec in definition.schema.references() if spec.ref]
        for per_map in captured:
            items = per_map.get(definition.name) or []
            if not items:
                continue
            documents = orjson.loads(b"[" + b",".join(value_of(entry) for _, entry in items) + b"]")
            for document in documents:
                if type(document) is not dict:
                    continue
                for field_name, target_map in fields:
                    target_key = document.get(field_name)
                    if target_key is not None:
                        key = str(target_key)
                        counts[partitioner.partition_of(key)][(target_map, key)] += 1
    return counts


def _write_checkpoint(
    directory: Path,
    per_map: dict[str, list[tuple[str, bytes]]],
    meta: dict[str, Any],
    counted: set[str],
) -> int:
    """Writes one partition's checkpoint; returns how many entries of `counted` maps it holds."""
    schema = CHECKPOINT_SCHEMA.with_metadata({META_KEY: orjson.dumps(meta)})
    final = directory / checkpoint_name(0)
    temporary = final.with_suffix(".tmp")
    written = 0
    with pa.OSFile(str(temporary), "wb") as sink, ipc.new_file(sink, schema) as writer:
        for map_name, items in per_map.items():
            if not items:
                continue
            keys = [key for key, _ in items]
            entries = [entry for _, entry in items]
            writer.write_batch(
                pa.record_batch(
                    [
                        pa.array([map_name] * len(keys), pa.string()),
                        pa.array(keys, pa.string()),
                        pa.array(entries, pa.large_binary()),
                    ],
                    schema=schema,
                )
            )
            if map_name in counted:
                written += len(keys)
    # No fsync per file: the directory is synced once, and a sandbox whose seeding was
    # cut short by a crash is removed whole at the supervisor's next start.
    os.replace(temporary, final)
    return written


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(document))
