"""The write-ahead log of one partition: record framing, checksums and fsync policy.

A log file is a sequence of frames ``u32 length | u32 crc32 | payload``. On recovery
a frame whose bytes end early or whose checksum fails at the end of the file is a
torn write from a crash: it is dropped and the file truncated there. A bad frame
followed by more data is corruption, and recovery refuses to guess.

fsync policies:

* ``always``: a write is acknowledged after fsync; concurrent writers share one
  fsync (group commit).
* ``batch`` (default): a write is handed to the operating system before it is
  acknowledged, so it survives a crash of the Shoal process; a background flusher
  fsyncs every ``fsync_interval_ms``, so a power loss or kernel crash can lose the
  writes of the last interval.
* ``off``: the operating system decides when data reaches the disk.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from grid.errors import StorageFailure
from grid.memory.observer import UNOBSERVED, StorageObserver

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct("<II")
FRAME_BYTES_MAX = 1 << 30


class FsyncPolicy(Enum):
    ALWAYS = "always"
    BATCH = "batch"
    OFF = "off"


class CorruptLog(Exception):
    """A damaged frame in the middle of a log: not a torn tail, so not repaired silently."""


def frame(payload: bytes) -> bytes:
    return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class ReadResult:
    payloads: list[bytes]
    valid_bytes: int
    torn_bytes: int


def read_frames(data: bytes) -> ReadResult:
    """Splits a log's bytes into payloads, stopping at a torn tail."""
    payloads: list[bytes] = []
    offset = 0
    size = len(data)
    header_size = FRAME_HEADER.size
    while offset < size:
        if offset + header_size > size:
            break
        length, checksum = FRAME_HEADER.unpack_from(data, offset)
        end = offset + header_size + length
        if length > FRAME_BYTES_MAX or end > size:
            break
        payload = data[offset + header_size : end]
        if zlib.crc32(payload) != checksum:
            if end < size:
                raise CorruptLog(
                    f"checksum mismatch at byte {offset} with {size - end} bytes after it"
                )
            break
        payloads.append(payload)
        offset = end
    return ReadResult(payloads=payloads, valid_bytes=offset, torn_bytes=size - offset)


def read_log(path: Path) -> Iterator[bytes]:
    """The payloads of a log file, truncating a torn tail in place."""
    data = path.read_bytes()
    try:
        result = read_frames(data)
    except CorruptLog as error:
        raise CorruptLog(f"{path}: {error}") from None
    if result.torn_bytes:
        log.warning("dropping a torn record of %d bytes at the end of %s", result.torn_bytes, path)
        with path.open("r+b") as handle:
            handle.truncate(result.valid_bytes)
            os.fsync(handle.fileno())
    yield from result.payloads


class LogFile:
    """An append-only log file with group-committed fsync."""

    def __init__(self, path: Path, policy: FsyncPolicy) -> None:
        self.path = path
        self.policy = policy
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._written_bytes = os.fstat(self._fd).st_size
        self._synced_bytes = self._written_bytes
        self._sync_lock = threading.Lock()
        self.failed: BaseException | None = None
        self.observer: StorageObserver = UNOBSERVED

    @property
    def size_bytes(self) -> int:
        return self._written_bytes

    @property
    def dirty(self) -> bool:
        return self._synced_bytes < self._written_bytes

    def append(self, payload: bytes) -> int:
        """Writes one frame; returns the file size after it. Callers serialize appends."""
        if self.failed is not None:
            raise StorageFailure(f"the log {self.path} failed earlier: {self.failed}")
        data = frame(payload)
        try:
            written = os.write(self._fd, data)
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as error:
            self.failed = error
            raise StorageFailure(f"cannot write the log {self.path}: {error}") from error
        self._written_bytes += len(data)
        self.observer.appended(len(data))
        return self._written_bytes

    def sync_to(self, end_bytes: int) -> None:
        """Returns once the file is fsynced at least up to `end_bytes`."""
        if self._synced_bytes >= end_bytes:
            return
        with self._sync_lock:
            if self._synced_bytes >= end_bytes:
                return
            target = self._written_bytes
            try:
                started = time.perf_counter()
                # fdatasync: the data and the size, not the timestamps; half the cost.
                os.fdatasync(self._fd)
                self.observer.fsynced(time.perf_counter() - started)
            except OSError as error:
                self.failed = error
                raise StorageFailure(f"cannot fsync the log {self.path}: {error}") from error
            self._synced_bytes = max(self._synced_bytes, target)

    def sync(self) -> None:
        self.sync_to(self._written_bytes)

    def close(self) -> None:
        if self._fd >= 0:
            if self.policy is not FsyncPolicy.OFF and self.failed is None:
                self.sync()
            os.close(self._fd)
            self._fd = -1


class BackgroundFlusher:
    """Fsyncs dirty logs every interval: the `batch` policy's group commit."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self._logs: list[LogFile] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-flusher", daemon=True)
        self._thread.start()

    def register(self, log_file: LogFile) -> None:
        with self._lock:
            self._logs.append(log_file)

    def unregister(self, log_file: LogFile) -> None:
        with self._lock:
            if log_file in self._logs:
                self._logs.remove(log_file)

    def flush(self) -> None:
        with self._lock:
            logs = list(self._logs)
        for log_file in logs:
            if log_file.dirty and log_file.failed is None:
                try:
                    log_file.sync()
                except StorageFailure:
                    log.exception("background fsync failed for %s", log_file.path)
                except OSError:
                    # The file was closed by a checkpoint between listing and syncing.
                    pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()
