"""The diff operation: production and a sandbox, each read at one snapshot, compared map by map.

Production's maps are captured in-process by the SQL snapshots (one read version for
all of them); the sandbox's through its `ExportMaps` stream (one read version there).
Each map's two Arrow tables then go to `diff.diff_map`. A map only one side has is
compared with an empty table of the same shape. The report:

    {"production_read_version": V, "sandbox_read_version": W,
     "maps": {"orders": {"only_in_production": 1, "only_in_sandbox": 1, "different": 1,
                         "same": 9997, "production_keys": .., "sandbox_keys": ..,
                         "samples": {...}, "numeric": {"amount": {...}}}}}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import duckdb
import grpc
import orjson
import pyarrow as pa

from coordinator.operators.diff import diff_map
from coordinator.operators.export import read_chunks
from coordinator.operators.operations import Operations, OperationView, Progress
from coordinator.sql.snapshot import Snapshots
from coordinator.sql.tables import table_schema
from grid.catalog import Catalog, MapDefinition, is_system_map
from grid.errors import NotFound, Unavailable
from shoal.v1 import sandbox_pb2, sandbox_pb2_grpc

READ_TIMEOUT_S = 600.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


@dataclass(frozen=True)
class SideTables:
    read_version: int
    definitions: dict[str, MapDefinition]
    tables: dict[str, pa.Table]


class Diffs:
    """Starts diffs of sandboxes against production."""

    def __init__(
        self,
        catalog: Catalog,
        snapshots: Snapshots,
        read_version: Callable[[], int],
        channel_of: Callable[..., AbstractContextManager[grpc.Channel]],
        operations: Operations,
        *,
        memory_bytes_max: int = 0,
    ) -> None:
        self.catalog = catalog
        self.snapshots = snapshots
        self.read_version = read_version
        # `Sandboxes.channel`: the sandbox's private socket, whatever production's TLS.
        self.channel_of = channel_of
        self.operations = operations
        self.memory_bytes_max = memory_bytes_max

    def start(
        self,
        sandbox: str,
        maps: Sequence[str],
        sample: int,
        credentials: Sequence[tuple[str, str]] = (),
    ) -> OperationView:
        # Checked before the operation starts, so a wrong name fails the call itself.
        opener = self.channel_of(sandbox, CHANNEL_OPTIONS)
        names = list(dict.fromkeys(maps))

        def work(progress: Progress) -> dict[str, Any]:
            with opener as channel:
                return self.run(channel, sandbox, names, sample, progress, credentials)

        return self.operations.start("diff", sandbox, work, phase="reading sandbox")

    def run(
        self,
        channel: grpc.Channel,
        sandbox_name: str,
        names: Sequence[str],
        sample: int,
        progress: Progress | None = None,
        credentials: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        if progress is not None:
            progress.phase("reading sandbox")
        sandbox = read_remote(channel, sandbox_name, names, credentials)
        if progress is not None:
            progress.phase("reading production")
        production = self.read_local(names)
        wanted = list(names) or sorted(set(production.tables) | set(sandbox.tables))
        missing = [
            name for name in wanted if name not in production.tables and name not in sandbox.tables
        ]
        if missing:
            raise NotFound(
                f"neither production nor the sandbox has a map named {', '.join(missing)}",
                field="maps",
            )
        if progress is not None:
            progress.phase("comparing", total=len(wanted), unit="maps")
        connection = duckdb.connect()
        if self.memory_bytes_max:
            connection.execute(f"SET memory_limit = '{self.memory_bytes_max}B'")
        report: dict[str, Any] = {
            "production_read_version": production.read_version,
            "sandbox_read_version": sandbox.read_version,
            "maps": {},
        }
        try:
            for done, name in enumerate(wanted, start=1):
                before = production.tables.get(name)
                after = sandbox.tables.get(name)
                if before is None and after is not None:
                    before = after.schema.empty_table()
                if after is None and before is not None:
                    after = before.schema.empty_table()
                assert before is not None and after is not None
                report["maps"][name] = diff_map(connection, before, after, sample=sample)
                if progress is not None:
                    progress.advance(done)
        finally:
            connection.close()
        return report

    def read_local(self, names: Sequence[str]) -> SideTables:
        version = self.read_version()
        wanted = list(names) or [
            item.name for item in self.catalog.definitions() if not is_system_map(item.name)
        ]
        definitions = {
            name: definition
            for name in wanted
            if (definition := self.catalog.find(name)) is not None
        }
        captured = self.snapshots.capture(list(definitions.values()))
        return SideTables(
            version,
            definitions,
            {name: snapshot.table for name, snapshot in captured.items()},
        )


def read_remote(
    channel: grpc.Channel,
    sandbox: str,
    names: Sequence[str],
    credentials: Sequence[tuple[str, str]] = (),
) -> SideTables:
    """Every (or every named) map of the sandbox on `channel`, at one snapshot, read with
    the given call metadata (the caller's token)."""
    pieces: dict[str, list[bytes]] = {}
    definitions: dict[str, MapDefinition] = {}
    version = 0
    stub = sandbox_pb2_grpc.SandboxesStub(channel)
    request = sandbox_pb2.ExportMapsRequest(maps=list(names), missing_ok=True)
    try:
        for chunk in stub.ExportMaps(
            request, timeout=READ_TIMEOUT_S, metadata=list(credentials) or None
        ):
            version = chunk.read_version
            if chunk.definition_json:
                definitions[chunk.map] = MapDefinition.from_json(
                    orjson.loads(chunk.definition_json)
                )
            pieces.setdefault(chunk.map, []).append(chunk.arrow_ipc)
    except grpc.RpcError as error:
        raise Unavailable(
            f"could not read sandbox '{sandbox}': {error.code().name}: {error.details()}"
        ) from None
    tables = {
        name: read_chunks(pieces.get(name, []), table_schema(definition))
        for name, definition in definitions.items()
    }
    return SideTables(version, definitions, tables)
