"""Unit tests of the memory backend's log: frames, records, torn tails and fsync bookkeeping."""

import os
import struct
import time
import zlib
from pathlib import Path

import pytest

from grid.errors import StorageFailure
from grid.memory.records import (
    ENTRY_HEADER,
    RECORD_HEADER,
    Entry,
    Op,
    Record,
    RecordKind,
    decode_entries,
    decode_record,
    encode_entries,
    encode_record,
)
from grid.memory.wal import (
    FRAME_HEADER,
    BackgroundFlusher,
    CorruptLog,
    FsyncPolicy,
    LogFile,
    frame,
    read_frames,
    read_log,
)

PAYLOADS = [b"first", b"", b"\x00\xff" * 100, "ünïcode".encode()]


# Frames ---------------------------------------------------------------------------


def test_frame_layout_is_length_checksum_payload():
    framed = frame(b"hello")
    assert framed[:8] == struct.pack("<II", 5, zlib.crc32(b"hello"))
    assert framed[8:] == b"hello"
    assert FRAME_HEADER.size == 8


def test_frames_round_trip():
    data = b"".join(frame(payload) for payload in PAYLOADS)
    result = read_frames(data)
    assert result.payloads == PAYLOADS
    assert result.valid_bytes == len(data)
    assert result.torn_bytes == 0


def test_empty_log_has_no_frames():
    result = read_frames(b"")
    assert (result.payloads, result.valid_bytes, result.torn_bytes) == ([], 0, 0)


def valid_and_tail(tail: bytes) -> tuple[bytes, int]:
    valid = frame(b"one") + frame(b"two")
    return valid + tail, len(valid)


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(frame(b"three")[:5], id="truncated-header"),
        pytest.param(frame(b"three")[:10], id="truncated-payload"),
        pytest.param(frame(b"three")[:-1] + b"X", id="bad-checksum-at-tail"),
        pytest.param(struct.pack("<II", (1 << 30) + 1, 0) + b"xx", id="absurd-length"),
    ],
)
def test_torn_tail_is_reported(tail):
    data, valid = valid_and_tail(tail)
    result = read_frames(data)
    assert result.payloads == [b"one", b"two"]
    assert result.valid_bytes == valid
    assert result.torn_bytes == len(tail)


def test_bad_checksum_followed_by_data_is_corruption():
    damaged = bytearray(frame(b"two"))
    damaged[-1] ^= 0xFF
    data = frame(b"one") + bytes(damaged) + frame(b"three")
    with pytest.raises(CorruptLog, match=r"checksum mismatch at byte 11 with 13 bytes after it"):
        read_frames(data)


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(frame(b"three")[:5], id="truncated-header"),
        pytest.param(frame(b"three")[:10], id="truncated-payload"),
        pytest.param(frame(b"three")[:-1] + b"X", id="bad-checksum-at-tail"),
    ],
)
def test_read_log_drops_and_truncates_a_torn_tail(tmp_path, tail, caplog):
    path = tmp_path / "wal.log"
    data, valid = valid_and_tail(tail)
    path.write_bytes(data)
    assert list(read_log(path)) == [b"one", b"two"]
    assert path.stat().st_size == valid
    assert "dropping a torn record" in caplog.text
    # A second read finds nothing to repair.
    caplog.clear()
    assert list(read_log(path)) == [b"one", b"two"]
    assert "dropping" not in caplog.text


def test_read_log_leaves_a_clean_file_alone(tmp_path):
    path = tmp_path / "wal.log"
    data = b"".join(frame(payload) for payload in PAYLOADS)
    path.write_bytes(data)
    assert list(read_log(path)) == PAYLOADS
    assert path.read_bytes() == data


def test_read_log_refuses_corruption_and_changes_nothing(tmp_path):
    path = tmp_path / "wal.log"
    damaged = bytearray(frame(b"two"))
    damaged[9] ^= 0x01
    data = frame(b"one") + bytes(damaged) + frame(b"three")
    path.write_bytes(data)
    with pytest.raises(CorruptLog, match=str(path)):
        list(read_log(path))
    assert path.read_bytes() == data


# Records --------------------------------------------------------------------------

ENTRIES = [
    Entry(Op.PUT, "accounts", "alice", b'{"balance":5}'),
    Entry(Op.DELETE, "accounts", "bob"),
    Entry(Op.INCREMENT, "counters", "ключ", b'{"n":1}'),
    Entry(Op.APPEND, "logs", "l", b'{"items":[1]}'),
    Entry(Op.SKETCH_ADD, "hll", "s", b"\x00\x01\x02"),
    Entry(Op.REFERENCE, "people", "p1", b"-1"),
    Entry(Op.PUT, "m", "", b""),
]


@pytest.mark.parametrize("kind", list(RecordKind))
def test_record_round_trip_for_every_kind(kind):
    record = Record(kind, 2**40 + 3, {"txn": "ab", "locks": [["m", "k", "X"]]}, list(ENTRIES))
    decoded = decode_record(encode_record(record))
    assert decoded == record
    assert decoded.kind is kind


def test_record_without_meta_or_entries():
    record = Record(RecordKind.PRE_COMMITTED, 9)
    encoded = encode_record(record)
    assert len(encoded) == RECORD_HEADER.size
    assert decode_record(encoded) == record


def test_record_header_layout():
    encoded = encode_record(Record(RecordKind.STATUS, 7, {"a": 1}))
    assert RECORD_HEADER.unpack_from(encoded, 0) == (RecordKind.STATUS, 7, len(b'{"a":1}'))
    assert encoded[RECORD_HEADER.size :] == b'{"a":1}'


def test_entries_round_trip_and_layout():
    encoded = encode_entries([Entry(Op.PUT, "m", "k", b"v")])
    assert encoded == ENTRY_HEADER.pack(Op.PUT, 1, 1, 1) + b"mkv"
    assert decode_entries(encode_entries(ENTRIES)) == ENTRIES
    assert decode_entries(b"") == []


def test_decoded_ops_are_enum_members():
    decoded = decode_entries(encode_entries(ENTRIES))
    assert [type(entry.op) for entry in decoded] == [Op] * len(ENTRIES)


# Log files ------------------------------------------------------------------------


def test_append_returns_the_file_size_and_reads_back(tmp_path):
    path = tmp_path / "wal.log"
    log_file = LogFile(path, FsyncPolicy.OFF)
    try:
        first = log_file.append(b"one")
        second = log_file.append(b"two!")
        assert first == 8 + 3
        assert second == first + 8 + 4
        assert log_file.size_bytes == second
    finally:
        log_file.close()
    assert list(read_log(path)) == [b"one", b"two!"]


def test_reopened_log_appends_after_existing_data(tmp_path):
    path = tmp_path / "wal.log"
    path.write_bytes(frame(b"old"))
    log_file = LogFile(path, FsyncPolicy.OFF)
    try:
        assert log_file.size_bytes == 11
        assert not log_file.dirty
        assert log_file.append(b"new") == 22
    finally:
        log_file.close()
    assert list(read_log(path)) == [b"old", b"new"]


def counting_fsync(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fdatasync

    def fsync(descriptor: int) -> None:
        calls.append(descriptor)
        real(descriptor)

    monkeypatch.setattr(os, "fdatasync", fsync)
    return calls


def unsynced(log_file: LogFile) -> bool:
    return log_file.dirty


def test_sync_to_bookkeeping(tmp_path, monkeypatch):
    calls = counting_fsync(monkeypatch)
    log_file = LogFile(tmp_path / "wal.log", FsyncPolicy.ALWAYS)
    try:
        assert not unsynced(log_file)
        end_first = log_file.append(b"a")
        end_second = log_file.append(b"b")
        assert unsynced(log_file)
        log_file.sync_to(end_first)
        # One fsync covers everything written so far, not just up to `end_first`.
        assert len(calls) == 1
        assert not unsynced(log_file)
        log_file.sync_to(end_second)
        log_file.sync_to(end_first)
        log_file.sync()
        assert len(calls) == 1
        end_third = log_file.append(b"c")
        assert unsynced(log_file)
        log_file.sync_to(end_third)
        assert len(calls) == 2
    finally:
        log_file.close()


@pytest.mark.parametrize("policy", [FsyncPolicy.ALWAYS, FsyncPolicy.BATCH])
def test_close_syncs_a_dirty_log_unless_policy_is_off(tmp_path, monkeypatch, policy):
    calls = counting_fsync(monkeypatch)
    log_file = LogFile(tmp_path / "wal.log", policy)
    log_file.append(b"x")
    log_file.close()
    assert len(calls) == 1


def test_close_with_policy_off_does_not_fsync(tmp_path, monkeypatch):
    calls = counting_fsync(monkeypatch)
    log_file = LogFile(tmp_path / "wal.log", FsyncPolicy.OFF)
    log_file.append(b"x")
    log_file.close()
    log_file.close()  # Closing twice is harmless.
    assert calls == []


def test_failed_write_poisons_the_log(tmp_path, monkeypatch):
    log_file = LogFile(tmp_path / "wal.log", FsyncPolicy.OFF)

    def broken_write(descriptor: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    try:
        monkeypatch.setattr(os, "write", broken_write)
        with pytest.raises(StorageFailure, match="cannot write the log"):
            log_file.append(b"x")
        assert log_file.failed is not None
        monkeypatch.undo()
        with pytest.raises(StorageFailure, match="failed earlier"):
            log_file.append(b"y")
        assert log_file.size_bytes == 0
    finally:
        log_file.close()


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write

    def one_byte_at_a_time(descriptor: int, data: bytes) -> int:
        return real_write(descriptor, bytes(data[:1]))

    path = tmp_path / "wal.log"
    log_file = LogFile(path, FsyncPolicy.OFF)
    try:
        monkeypatch.setattr(os, "write", one_byte_at_a_time)
        assert log_file.append(b"hello") == 13
    finally:
        monkeypatch.undo()
        log_file.close()
    assert list(read_log(path)) == [b"hello"]


def test_failed_fsync_raises_storage_failure(tmp_path, monkeypatch):
    log_file = LogFile(tmp_path / "wal.log", FsyncPolicy.ALWAYS)
    end = log_file.append(b"x")

    def broken_fsync(descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken_fsync)
    with pytest.raises(StorageFailure, match="cannot fsync"):
        log_file.sync_to(end)
    assert log_file.failed is not None
    assert log_file.dirty
    log_file.close()  # A failed log closes without another fsync.


def test_background_flusher_syncs_registered_dirty_logs(tmp_path, monkeypatch):
    calls = counting_fsync(monkeypatch)
    # A long interval: the test calls flush itself, so the thread never races it.
    flusher = BackgroundFlusher(interval_ms=60_000)
    first = LogFile(tmp_path / "a.log", FsyncPolicy.BATCH)
    second = LogFile(tmp_path / "b.log", FsyncPolicy.BATCH)
    try:
        flusher.register(first)
        flusher.register(second)
        first.append(b"x")
        flusher.flush()
        assert len(calls) == 1
        assert not first.dirty
        flusher.unregister(second)
        flusher.unregister(second)
        second.append(b"y")
        flusher.flush()
        assert len(calls) == 1
        assert second.dirty
    finally:
        flusher.close()
        first.close()
        second.close()


def test_background_flusher_runs_on_its_interval(tmp_path):
    flusher = BackgroundFlusher(interval_ms=1)
    log_file = LogFile(tmp_path / "a.log", FsyncPolicy.BATCH)
    try:
        flusher.register(log_file)
        log_file.append(b"x")
        deadline = time.monotonic() + 5
        while log_file.dirty and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not log_file.dirty
    finally:
        flusher.close()
        log_file.close()


def test_log_file_is_created_empty(tmp_path):
    path: Path = tmp_path / "wal.log"
    log_file = LogFile(path, FsyncPolicy.OFF)
    log_file.close()
    assert path.exists()
    assert path.stat().st_size == 0
