"""Checkpoint files of a memory partition: every entry and the participant's state.

A checkpoint is an Arrow IPC file with three columns (map, key, entry) and the
participant's state (last log position, staged transactions, status records,
recent outcomes) as JSON in the schema metadata. Arrow writes and reads a
partition's columns in bulk, so a restart costs a few hundred milliseconds per
million keys instead of one Python step per key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pyarrow import ipc

from grid.participant import Participant

FORMAT_VERSION = 1
META_KEY = b"shoal.partition"
CHECKPOINT_SCHEMA = pa.schema(
    [("map", pa.string()), ("key", pa.string()), ("entry", pa.large_binary())]
)


def checkpoint_name(lsn: int) -> str:
    return f"checkpoint-{lsn:020d}.arrow"


def write_checkpoint(directory: Path, participant: Participant) -> Path:
    """Writes the participant's state atomically (temporary file, fsync, rename)."""
    meta: dict[str, Any] = {"format": FORMAT_VERSION, **participant.state_meta()}
    schema = CHECKPOINT_SCHEMA.with_metadata({META_KEY: orjson.dumps(meta)})
    final = directory / checkpoint_name(participant.lsn)
    temporary = final.with_suffix(".tmp")
    with pa.OSFile(str(temporary), "wb") as sink, ipc.new_file(sink, schema) as writer:
        for map_name, segment in participant.segments.items():
            if not segment.entries:
                continue
            keys = list(segment.entries)
            entries = list(segment.entries.values())
            batch = pa.record_batch(
                [
                    pa.array([map_name] * len(keys), pa.string()),
                    pa.array(keys, pa.string()),
                    pa.array(entries, pa.large_binary()),
                ],
                schema=schema,
            )
            writer.write_batch(batch)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    sync_directory(directory)
    return final


def load_checkpoint(path: Path, participant: Participant) -> None:
    """Restores a participant from a checkpoint file."""
    with pa.memory_map(str(path), "r") as source:
        reader = ipc.open_file(source)
        metadata = reader.schema.metadata or {}
        meta = orjson.loads(metadata[META_KEY])
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')}")
        for index in range(reader.num_record_batches):
            batch = reader.get_batch(index)
            map_name = batch.column(0)[0].as_py()
            segment = participant.segment(map_name)
            keys = batch.column(1).to_pylist()
            entries = batch.column(2).to_pylist()
            segment.entries.update(zip(keys, entries, strict=True))
            segment.generation += 1
    participant.restore_meta(meta)


def sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
