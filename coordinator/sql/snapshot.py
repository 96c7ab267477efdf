"""Consistent snapshots of maps as Arrow tables, for one query.

Each partition keeps, beside its entries, the Arrow image SQL last built from them,
tagged with the segment's change counter. A snapshot reads every partition at one
read version (so no transaction is seen on some of its partitions only, see
coordinator.transactions.sequence): the cached image of every partition unchanged
since, and the entries as of that version of every other; those become images and,
when they are also the partition's latest state, are cached for the next query.
Memory cost: one Arrow
image per partition of each map SQL has read, about the size of its columns; a
query adds the copies of partitions changed since the last query while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from coordinator.sql.tables import build_image, table_schema
from coordinator.transactions.sequence import CommitSequence
from grid.catalog import MapDefinition
from grid.memory.partition import MemoryPartition
from grid.memory.segment import Segment

MEMO_KEY = "sql-image"
# The generation of an image taken at a read version older than the partition's state.
STALE = -1


@dataclass
class TableSnapshot:
    definition: MapDefinition
    table: pa.Table
    partitions_scanned: int
    partitions_rebuilt: int
    capture_ms: float


@dataclass
class _Captured:
    segment: Segment | None
    generation: int
    image: pa.Table | None
    entries: list[tuple[str, bytes]] | None


def _schema_tag(definition: MapDefinition) -> int:
    return 0 if definition.schema is None else definition.schema.version


class Snapshots:
    def __init__(self, partitions: Sequence[MemoryPartition], sequence: CommitSequence) -> None:
        self.partitions = partitions
        self.sequence = sequence
        # The last whole table of each map, with what it was made of: an unchanged map
        # gives the same table object, which DuckDB connections need not register again.
        self._tables: dict[str, tuple[tuple[tuple[int, int, int], ...], pa.Table]] = {}

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

        version = self.sequence.read_version()
        taken: dict[str, list[_Captured]] = {}
        for definition in definitions:
            tag = _schema_tag(definition)
            captured = []
            for index in wanted[definition.name]:
                partition = self.partitions[index]
                segment = partition.participant.segments.get(definition.name)
                if segment is None:
                    captured.append(_Captured(None, 0, None, None))
                    continue
                # The generation first: a commit moves the segment's version before it
                # changes entries, so an unchanged version means generation `generation`
                # is the state at the read version.
                generation = segment.generation
                memo = segment.memo.get(MEMO_KEY)
                if (
                    segment.version <= version
                    and isinstance(memo, tuple)
                    and memo[0] == generation
                    and memo[1] == tag
                ):
                    captured.append(_Captured(segment, generation, memo[2], None))
                    continue
                entries = partition.items_at(definition.name, version)
                if segment.version > version or segment.generation != generation:
                    # Older than the latest state: used by this query, never cached.
                    generation = STALE
                captured.append(_Captured(segment, generation, None, entries))
            taken[definition.name] = captured
        capture_ms = (time.perf_counter() - started) * 1000
        snapshots = {}
        for definition in definitions:
            images = []
            rebuilt = 0
            tag = _schema_tag(definition)
            made_of = tuple(
                (id(item.segment), item.generation, tag)
                for item in taken[definition.name]
                if item.segment is not None
            )
            current = all(item.generation != STALE for item in taken[definition.name])
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
                if item.segment is None:
                    continue
                image = item.image
                if image is None:
                    image = build_image(definition, item.entries or [])
                    rebuilt += 1
                    if item.generation != STALE and item.segment.generation == item.generation:
                        item.segment.memo[MEMO_KEY] = (item.generation, tag, image)
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
