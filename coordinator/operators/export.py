"""Maps of a grid at one snapshot, as Arrow IPC chunks: how a diff reads a sandbox.

The maps are captured together by the SQL engine's snapshots (one read version for all
of them, and the partition images SQL keeps, so a map read before costs only the
partitions changed since), then each table goes out in IPC streams of at most
`CHUNK_BYTES_MAX`, under the gRPC message limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson
import pyarrow as pa
from pyarrow import ipc

from coordinator.sql.snapshot import Snapshots
from grid.catalog import Catalog, MapDefinition, is_system_map
from grid.errors import NotFound

CHUNK_BYTES_MAX = 16 * 1024 * 1024


@dataclass(frozen=True)
class ExportPiece:
    map: str
    definition_json: bytes
    arrow_ipc: bytes
    read_version: int


def export_definitions(
    catalog: Catalog, names: Sequence[str], *, missing_ok: bool
) -> list[MapDefinition]:
    if not names:
        return [item for item in catalog.definitions() if not is_system_map(item.name)]
    found = []
    for name in names:
        definition = catalog.find(name)
        if definition is None:
            if missing_ok:
                continue
            raise NotFound(f"no map named '{name}'", field="maps")
        found.append(definition)
    return found


def export_maps(
    snapshots: Snapshots,
    definitions: Sequence[MapDefinition],
    read_version: int,
) -> Iterator[ExportPiece]:
    """`read_version` is the latest version before the capture: the snapshot is at it
    or at a newer one, the same for every map."""
    captured = snapshots.capture(definitions)
    for definition in definitions:
        table = captured[definition.name].table
        described = orjson.dumps(definition.to_json())
        first = True
        for piece in table_chunks(table):
            yield ExportPiece(definition.name, described if first else b"", piece, read_version)
            first = False


def table_chunks(table: pa.Table) -> Iterator[bytes]:
    """The table as IPC streams of at most about CHUNK_BYTES_MAX each (at least one)."""
    rows = table.num_rows
    row_bytes = max(table.nbytes // rows, 1) if rows else 1
    step = max(CHUNK_BYTES_MAX // row_bytes, 1)
    start = 0
    while True:
        part = table.slice(start, step)
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(part)
        yield sink.getvalue().to_pybytes()
        start += step
        if start >= rows:
            return


def read_chunks(pieces: Sequence[bytes], schema: pa.Schema | None = None) -> pa.Table:
    tables = [ipc.open_stream(piece).read_all() for piece in pieces]
    if not tables:
        if schema is None:
            raise ValueError("no chunks and no schema")
        return schema.empty_table()
    return pa.concat_tables(tables)
