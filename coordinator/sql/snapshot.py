"""Consistent snapshots of maps as Arrow tables, for one query.

The coordinator keeps, per partition and map, the Arrow image SQL last built from the
partition's entries, tagged with the partition's change mark for the map (see
grid.backend.MapState: a segment's change counter on the memory backend, a counter in the
partition's meta record on a shared store, so a mark means the same to every coordinator). A
snapshot reads every partition at one read version (so no transaction is seen on some of its
partitions only, see coordinator.transactions.sequence): the cached image of every partition
unchanged since, and the entries as of that version of every other; those become images and,
when they are also the partition's latest state, are cached for the next query. Memory cost:
one Arrow image per partition of each map SQL has read, about the size of its columns; a
query adds the copies of partitions changed since the last query while it runs.

The read version is held while the snapshot reads (coordinator.transactions.readers), so the
states it needs outlive `mvcc_window_ms` however long a big, busy grid takes; when the byte
budget drops one anyway, the capture starts again at a fresh read version, a few times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from coordinator.sql.tables import build_image, table_schema
from grid.backend import PartitionStore
from grid.catalog import MapDefinition
from grid.errors import ReadVersionTooOld


class ReadVersions(Protocol):
    """A read version held while the snapshot reads (TransactionManager.reading)."""

    def reading(self, requested: int = 0) -> AbstractContextManager[int]: ...


# Captures tried before "read version too old" reaches the caller: the version is held while
# the capture reads, so only the byte budget forcing a drop makes one fail, and a fresh read
# version then needs only the states changed since it.
CAPTURE_ATTEMPTS = 3


@dataclass
class TableSnapshot:
    definition: MapDefinition
    table: pa.Table
    partitions_scanned: int
    partitions_rebuilt: int
    capture_ms: float


@dataclass
class _Captured:
    index: int
    # The partition's mark for the map when the entries are its latest state; None when
    # they are older (used by this query, never cached).
    mark: object
    image: pa.Table | None
    entries: list[tuple[str, bytes]] | None


def _schema_tag(definition: MapDefinition) -> int:
    return 0 if definition.schema is None else definition.schema.version


class Snapshots:
    def __init__(self, partitions: Sequence[PartitionStore], sequence: ReadVersions) -> None:
        self.partitions = partitions
        self.sequence = sequence
        # (partition, map) -> (mark, schema tag, image): the image of the entries under mark.
        self._images: dict[tuple[int, str], tuple[object, int, pa.Table]] = {}
        self._images_lock = threading.Lock()
        # The last whole table of each map, with what it was made of: an unchanged map
        # gives the same table object, which DuckDB connections need not register again.
        self._tables: dict[str, tuple[tuple[tuple[int, object, int], ...], pa.Table]] = {}

    def capture(
        self,
        definitions: Sequence[MapDefinition],
        only_partitions: dict[str, set[int]] | None = None,
    ) -> dict[str, TableSnapshot]:
        """One instant of every named map (restricted to some partitions when given)."""
        started = time.perf_counter()
        wanted = {
            definition.name: sorted(
                (only_partitions or {}).get(definition.name, range(len(self.partitions)))
            )
            for definition in definitions
        }

        for attempt in range(CAPTURE_ATTEMPTS):
            try:
                with self.sequence.reading() as version:
                    taken = self._take(definitions, wanted, version)
                break
            except ReadVersionTooOld:
                if attempt + 1 == CAPTURE_ATTEMPTS:
                    raise
        capture_ms = (time.perf_counter() - started) * 1000
        return self._tables_of(definitions, wanted, taken, capture_ms, only_partitions)

    def _take(
        self,
        definitions: Sequence[MapDefinition],
        wanted: dict[str, list[int]],
        version: int,
    ) -> dict[str, list[_Captured]]:
        """Every wanted partition's cached image or entries at `version`."""
        taken: dict[str, list[_Captured]] = {}
        for definition in definitions:
            tag = _schema_tag(definition)
            captured = []
            for index in wanted[definition.name]:
                partition = self.partitions[index]
                state = partition.map_state(definition.name)
                if state.mark is None:
                    continue
                cached = self._images.get((index, definition.name))
                if (
                    state.version <= version
                    and cached is not None
                    and cached[0] == state.mark
                    and cached[1] == tag
                ):
                    captured.append(_Captured(index, state.mark, cached[2], None))
                    continue
                entries = partition.items_at(definition.name, version)
                # Cached only when nothing changed while reading and the read version saw
                # the latest state: the same mark then means the same entries to any reader.
                latest = state.version <= version and partition.map_state(definition.name) == state
                captured.append(_Captured(index, state.mark if latest else None, None, entries))
            taken[definition.name] = captured
        return taken

    def _tables_of(
        self,
        definitions: Sequence[MapDefinition],
        wanted: dict[str, list[int]],
        taken: dict[str, list[_Captured]],
        capture_ms: float,
        only_partitions: dict[str, set[int]] | None,
    ) -> dict[str, TableSnapshot]:
        snapshots = {}
        for definition in definitions:
            images = []
            rebuilt = 0
            tag = _schema_tag(definition)
            made_of = tuple((item.index, item.mark, tag) for item in taken[definition.name])
            current = all(item.mark is not None for item in taken[definition.name])
            last = self._tables.get(definition.name)
            if last is not None and last[0] == made_of and current and not only_partitions:
                snapshots[definition.name] = TableSnapshot(
                    definition=definition,
                    table=last[1],
                    partitions_scanned=len(wanted[definition.name]),
                    partitions_rebuilt=0,
                    capture_ms=capture_ms,
                )
                continue
            for item in taken[definition.name]:
                image = item.image
                if image is None:
                    image = build_image(definition, item.entries or [])
                    rebuilt += 1
                    if item.mark is not None:
                        with self._images_lock:
                            self._images[(item.index, definition.name)] = (item.mark, tag, image)
                if image.num_rows:
                    images.append(image)
            table = pa.concat_tables(images) if images else table_schema(definition).empty_table()
            if current and not only_partitions:
                self._tables[definition.name] = (made_of, table)
            snapshots[definition.name] = TableSnapshot(
                definition=definition,
                table=table,
                partitions_scanned=len(wanted[definition.name]),
                partitions_rebuilt=rebuilt,
                capture_ms=capture_ms,
            )
        return snapshots
