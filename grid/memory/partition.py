"""One partition of the memory backend: the participant, its log and its checkpoints.

The shell carries out the participant's actions: under the partition lock it runs
one event and appends the records it asks for; outside the lock it waits for the
fsync the policy requires; then it returns the reply. Reads of single keys take
no lock: a dict lookup is atomic, and entries are immutable bytes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from grid.backend import (
    MapSize,
    MapState,
    StagedView,
    StatusView,
    SweepStatuses,
    sweep_statuses_by_index,
)
from grid.errors import StorageFailure
from grid.memory.checkpoint import load_checkpoint, write_checkpoint
from grid.memory.observer import UNOBSERVED, StorageObserver
from grid.memory.records import decode_record, encode_record
from grid.memory.wal import BackgroundFlusher, FsyncPolicy, LogFile, read_log
from grid.participant import Event, Failed, Participant, Persist, Reply, Send
from grid.versions import VersionStats

log = logging.getLogger(__name__)

LOG_PATTERN = re.compile(r"^wal-(\d{20})\.log$")
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d{20})\.arrow$")
CHECKPOINT_WAL_BYTES_DEFAULT = 64 * 1024 * 1024


def _durable() -> None:
    """Nothing to wait for: the step wrote nothing, or the policy does not wait."""


def log_name(after_lsn: int) -> str:
    return f"wal-{after_lsn:020d}.log"


class MemoryPartition:
    """A participant made durable by a write-ahead log and checkpoints."""

    def __init__(
        self,
        participant: Participant,
        directory: Path,
        *,
        policy: FsyncPolicy,
        flusher: BackgroundFlusher | None,
        checkpoint_wal_bytes: int = CHECKPOINT_WAL_BYTES_DEFAULT,
    ) -> None:
        self.participant = participant
        self.index = participant.partition
        self.directory = directory
        self.policy = policy
        self.checkpoint_wal_bytes = checkpoint_wal_bytes
        self.lock = threading.Lock()
        self._flusher = flusher
        self._log: LogFile | None = None
        self._observer: StorageObserver = UNOBSERVED

    # Lifecycle -------------------------------------------------------------------

    def open(self) -> int:
        """Recovers from the newest checkpoint and the logs after it; returns records replayed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()
        checkpoints = sorted(
            (int(match.group(1)), path)
            for path in self.directory.iterdir()
            if (match := CHECKPOINT_PATTERN.match(path.name))
        )
        if checkpoints:
            load_checkpoint(checkpoints[-1][1], self.participant)
        replayed = 0
        logs = self._log_files()
        for _, path in logs:
            for payload in read_log(path):
                self.participant.replay(decode_record(payload))
                replayed += 1
        current = logs[-1][1] if logs else self.directory / log_name(self.participant.lsn)
        self._open_log(current)
        return replayed

    def close(self) -> None:
        with self.lock:
            if self._log is not None:
                if self._flusher is not None:
                    self._flusher.unregister(self._log)
                self._log.close()
                self._log = None

    def _log_files(self) -> list[tuple[int, Path]]:
        return sorted(
            (int(match.group(1)), path)
            for path in self.directory.iterdir()
            if (match := LOG_PATTERN.match(path.name))
        )

    def observe(self, observer: StorageObserver) -> None:
        """Reports this partition's fsyncs, log bytes and checkpoints to `observer`."""
        with self.lock:
            self._observer = observer
            if self._log is not None:
                self._log.observer = observer

    def _open_log(self, path: Path) -> None:
        self._log = LogFile(path, self.policy)
        self._log.observer = self._observer
        if self._flusher is not None and self.policy is FsyncPolicy.BATCH:
            self._flusher.register(self._log)

    # Steps -----------------------------------------------------------------------

    def step(self, event: Event) -> Reply:
        """Runs one participant event durably and returns its reply."""
        reply, wait_durable = self.apply(event)
        wait_durable()
        return reply

    def apply(self, event: Event) -> tuple[Reply, Callable[[], None]]:
        """Runs one participant event; returns its reply and a call that waits until
        the event's records are durable (so a caller holding the commit sequence can
        wait after releasing it, and concurrent commits share one fsync). A checkpoint
        the log's size calls for is written by that call too, outside the sequence."""
        reply: Reply | None = None
        end_bytes = 0
        with self.lock:
            log_file = self._log
            if log_file is None:
                raise StorageFailure(f"partition {self.index} is closed")
            for action in self.participant.handle(event):
                if isinstance(action, Persist):
                    end_bytes = log_file.append(encode_record(action.record))
                elif isinstance(action, Send):
                    reply = action.reply
        assert reply is not None, "every participant event sends a reply"
        if isinstance(reply, Failed):
            raise reply.error
        if not end_bytes:
            return reply, _durable
        checkpoint = end_bytes >= self.checkpoint_wal_bytes
        if self.policy is not FsyncPolicy.ALWAYS and not checkpoint:
            return reply, _durable

        def wait_durable() -> None:
            if self.policy is FsyncPolicy.ALWAYS:
                # Safe after a rotation too: closing a log syncs it first.
                log_file.sync_to(end_bytes)
            if checkpoint:
                self._checkpoint_if_due()

        return reply, wait_durable

    def _checkpoint_if_due(self) -> None:
        with self.lock:
            if self._log is not None and self._log.size_bytes >= self.checkpoint_wal_bytes:
                self._checkpoint_locked()

    def version_stats(self) -> VersionStats:
        return self.participant.versions.stats

    def commit_version(self) -> int:
        """The highest commit version applied in this partition."""
        return self.participant.version

    def checkpoint(self) -> None:
        with self.lock:
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        """Writes a checkpoint, starts a new log after it, and removes what it replaced."""
        started = time.perf_counter()
        written = write_checkpoint(self.directory, self.participant)
        previous = self._log
        if previous is not None:
            if self._flusher is not None:
                self._flusher.unregister(previous)
            previous.close()
        self._open_log(self.directory / log_name(self.participant.lsn))
        for path in self.directory.iterdir():
            stale_log = LOG_PATTERN.match(path.name)
            if stale_log and int(stale_log.group(1)) < self.participant.lsn:
                path.unlink()
            stale_checkpoint = CHECKPOINT_PATTERN.match(path.name)
            if stale_checkpoint and path != written:
                path.unlink()
        self._observer.checkpointed(time.perf_counter() - started)

    # Reads -----------------------------------------------------------------------

    def get(self, map_name: str, key: str) -> bytes | None:
        segment = self.participant.segments.get(map_name)
        if segment is None:
            return None
        return segment.entries.get(key)

    def get_at(self, map_name: str, key: str, version: int) -> bytes | None:
        return self.participant.read_at(map_name, key, version)

    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        """One map's entries in this partition as of a version."""
        with self.lock:
            return self.participant.items_at(map_name, version)

    def items(self, map_name: str) -> list[tuple[str, bytes]]:
        """A consistent copy of one map's entries in this partition."""
        with self.lock:
            segment = self.participant.segments.get(map_name)
            if segment is None:
                return []
            return list(segment.entries.items())

    def map_state(self, map_name: str) -> MapState:
        segment = self.participant.segments.get(map_name)
        if segment is None:
            return MapState(None, 0)
        # The generation first: a commit moves the segment's version before it changes
        # entries, so a version at or below a read version means this generation is the
        # state at that read version.
        generation = segment.generation
        return MapState((segment.serial, generation), segment.version)

    def map_size(self, map_name: str) -> MapSize:
        segment = self.participant.segments.get(map_name)
        if segment is None:
            return MapSize(0, 0)
        return MapSize(len(segment.entries), segment.memory_bytes())

    def iterate_maps(self) -> Iterator[str]:
        yield from list(self.participant.segments)

    def status_records(self) -> list[StatusView]:
        with self.lock:
            return [
                StatusView(txn_id, s.state, s.participants, s.lease_expires_ms, s.updated_ms)
                for txn_id, s in self.participant.statuses.items()
            ]

    def undecided_statuses(self) -> list[StatusView]:
        with self.lock:
            return [self._status_view(txn_id) for txn_id in self.participant.undecided]

    def status_record(self, txn_id: bytes) -> StatusView | None:
        with self.lock:
            return self._status_view(txn_id) if txn_id in self.participant.statuses else None

    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[StatusView]:
        with self.lock:
            found = self.participant.decided_statuses(updated_by_ms, limit)
            return [self._status_view(txn_id) for txn_id in found]

    def _status_view(self, txn_id: bytes) -> StatusView:
        s = self.participant.statuses[txn_id]
        return StatusView(txn_id, s.state, s.participants, s.lease_expires_ms, s.updated_ms)

    def sweep_statuses(
        self, staged: Sequence[bytes], updated_by_ms: int, limit: int
    ) -> SweepStatuses:
        return sweep_statuses_by_index(self, staged, updated_by_ms, limit)

    def staged_transactions(self) -> list[StagedView]:
        with self.lock:
            return [
                StagedView(txn_id, staged.state, staged.lease_expires_ms, staged.status_partition)
                for txn_id, staged in self.participant.staged.items()
                if staged.durable
            ]

    @property
    def log_bytes(self) -> int:
        return 0 if self._log is None else self._log.size_bytes
