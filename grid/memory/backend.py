"""The memory backend: every partition in this process, durable in a data directory.

Layout of the data directory::

    shoal.json                  format version and partition count (fixed at creation)
    catalog.json                map definitions
    LOCK                        held (flock) while a server uses the directory
    partitions/p0000/           one directory per partition:
        checkpoint-<lsn>.arrow  the newest checkpoint
        wal-<lsn>.log           the log of records after that checkpoint
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from grid.backend import ParticipantHooks
from grid.catalog import FileCatalogStore
from grid.entry import version_of
from grid.errors import FailedPrecondition
from grid.memory.observer import StorageObserver
from grid.memory.partition import CHECKPOINT_WAL_BYTES_DEFAULT, MemoryPartition
from grid.memory.wal import BackgroundFlusher, FsyncPolicy
from grid.participant import OUTCOMES_MAX_DEFAULT, Participant
from grid.versions import VERSIONS_BYTES_MAX_DEFAULT

log = logging.getLogger(__name__)

DATA_FORMAT_VERSION = 1
_EMPTY: dict[str, bytes] = {}


@dataclass(frozen=True)
class MemoryBackendConfig:
    data_dir: Path
    partitions: int = 64
    fsync: FsyncPolicy = FsyncPolicy.BATCH
    fsync_interval_ms: int = 20
    checkpoint_wal_bytes: int = CHECKPOINT_WAL_BYTES_DEFAULT
    outcomes_max: int = OUTCOMES_MAX_DEFAULT
    # Bytes of overwritten versions each partition may keep for reads at older versions.
    versions_bytes_max: int = VERSIONS_BYTES_MAX_DEFAULT


@dataclass(frozen=True)
class RecoveryReport:
    partitions: int
    records_replayed: int
    entries: int
    seconds: float


class MemoryBackend:
    """All partitions in-process, each with its own log and checkpoints."""

    name = "memory"

    def __init__(self, config: MemoryBackendConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.partitions: list[MemoryPartition] = []
        self.catalog_store = FileCatalogStore(self.data_dir / "catalog.json")
        self._flusher: BackgroundFlusher | None = None
        self._lock_file: IO[bytes] | None = None
        self.recovery: RecoveryReport | None = None
        self._prepare_directory()

    def _prepare_directory(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock_file = (self.data_dir / "LOCK").open("ab")
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise FailedPrecondition(
                f"data directory {self.data_dir} is in use by another Shoal server",
                field="data_dir",
            ) from None
        try:
            self._check_layout()
        except BaseException:
            # A refused directory must not stay locked by this half-made backend.
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
            lock_file.close()
            raise
        self._lock_file = lock_file

    def _check_layout(self) -> None:
        """Checks the format and partition count of the directory, or records them."""
        meta_path = self.data_dir / "shoal.json"
        if meta_path.exists():
            meta = orjson.loads(meta_path.read_bytes())
            if meta.get("format") != DATA_FORMAT_VERSION:
                raise FailedPrecondition(
                    f"data directory {self.data_dir} has format {meta.get('format')}, "
                    f"this server reads {DATA_FORMAT_VERSION}",
                    field="data_dir",
                )
            if meta.get("partitions") != self.config.partitions:
                raise FailedPrecondition(
                    f"data directory {self.data_dir} was created with {meta.get('partitions')} "
                    f"partitions, not {self.config.partitions}; the count is fixed at creation",
                    field="partitions",
                )
        else:
            temporary = meta_path.with_suffix(".tmp")
            temporary.write_bytes(
                orjson.dumps({"format": DATA_FORMAT_VERSION, "partitions": self.config.partitions})
            )
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, meta_path)

    def open(self, hooks: ParticipantHooks) -> None:
        started = time.perf_counter()
        config = self.config
        if config.fsync is FsyncPolicy.BATCH:
            self._flusher = BackgroundFlusher(config.fsync_interval_ms)
        replayed = 0
        for index in range(config.partitions):
            participant = Participant(
                index,
                validators=hooks.validators,
                sketch_apply=hooks.sketch_apply,
                guarded_field=hooks.guarded_field,
                outcomes_max=config.outcomes_max,
                versions_bytes_max=config.versions_bytes_max,
            )
            partition = MemoryPartition(
                participant,
                self.data_dir / "partitions" / f"p{index:04d}",
                policy=config.fsync,
                flusher=self._flusher,
                checkpoint_wal_bytes=config.checkpoint_wal_bytes,
            )
            replayed += partition.open()
            self.partitions.append(partition)
        entries = sum(
            len(segment.entries)
            for partition in self.partitions
            for segment in partition.participant.segments.values()
        )
        self.recovery = RecoveryReport(
            partitions=config.partitions,
            records_replayed=replayed,
            entries=entries,
            seconds=time.perf_counter() - started,
        )
        log.info(
            "memory backend open: %d partitions, %d entries, %d log records replayed in %.2fs",
            config.partitions,
            entries,
            replayed,
            self.recovery.seconds,
        )

    def observe(self, observer: StorageObserver) -> None:
        """Reports every partition's fsyncs, log bytes and checkpoints to `observer`."""
        for partition in self.partitions:
            partition.observe(observer)

    def lookup_many(
        self,
        map_name: str,
        keys: Sequence[str],
        partitions: Sequence[int],
        version: int | None = None,
    ) -> list[bytes | None]:
        """Committed entries of many keys whose partitions are known, in one pass;
        as of a read version when one is given."""
        found = self._lookup_latest(map_name, keys, partitions)
        if version is None:
            return found
        # A partition whose map no commit changed after the read version (checked after
        # the lookups: a commit moves the segment's version before it changes entries)
        # answered exactly the state at the version.
        changed = set()
        for index, store in enumerate(self.partitions):
            segment = store.participant.segments.get(map_name)
            if segment is not None and segment.version > version:
                changed.add(index)
        if not changed:
            return found
        # Elsewhere the latest entry is the answer when it is no newer than the read; the
        # others (newer, or absent and maybe deleted since) are looked up at the version.
        for position, entry in enumerate(found):
            partition = partitions[position]
            if partition in changed and (entry is None or version_of(entry) > version):
                found[position] = self.partitions[partition].get_at(
                    map_name, keys[position], version
                )
        return found

    def _lookup_latest(
        self, map_name: str, keys: Sequence[str], partitions: Sequence[int]
    ) -> list[bytes | None]:
        if len(keys) < 32:
            found: list[bytes | None] = []
            for key, partition in zip(keys, partitions, strict=True):
                segment = self.partitions[partition].participant.segments.get(map_name)
                found.append(None if segment is None else segment.entries.get(key))
            return found
        tables: list[dict[str, bytes]] = []
        for store in self.partitions:
            table = store.participant.segments.get(map_name)
            tables.append(_EMPTY if table is None else table.entries)
        # Both maps run in C: pick each key's table, then look the key up in it.
        return list(map(dict.get, map(tables.__getitem__, partitions), keys))

    def checkpoint(self) -> None:
        for partition in self.partitions:
            partition.checkpoint()

    def close(self, *, checkpoint: bool = True) -> None:
        """Stops the backend; a checkpoint first makes the next start fast."""
        if checkpoint:
            for partition in self.partitions:
                try:
                    partition.checkpoint()
                except OSError:
                    log.exception("checkpoint of partition %d failed at close", partition.index)
        if self._flusher is not None:
            self._flusher.close()
            self._flusher = None
        for partition in self.partitions:
            partition.close()
        self.partitions = []
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
