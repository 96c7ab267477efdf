"""Unit tests of the memory backend's durability: a partition's log and checkpoints, and
the backend's data directory (lock, layout, recovery report)."""

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from grid.backend import ParticipantHooks, StagedView, StatusView
from grid.errors import FailedPrecondition, InvalidArgument, StorageFailure
from grid.memory.backend import MemoryBackend, MemoryBackendConfig
from grid.memory.checkpoint import checkpoint_name, load_checkpoint, write_checkpoint
from grid.memory.partition import MemoryPartition, log_name
from grid.memory.wal import BackgroundFlusher, CorruptLog, FsyncPolicy, frame
from grid.participant import (
    PENDING,
    Abort,
    Applied,
    CasStatus,
    Condition,
    CreateStatus,
    ForgetStatus,
    Participant,
    PreCommit,
    StatusReply,
    Vote,
)
from tests.unit.participant_support import apply, increment, prepare, put, read, state_of


def open_partition(
    directory: Path,
    *,
    policy: FsyncPolicy = FsyncPolicy.OFF,
    checkpoint_wal_bytes: int = 1 << 30,
    flusher: BackgroundFlusher | None = None,
) -> tuple[MemoryPartition, int]:
    partition = MemoryPartition(
        Participant(0),
        directory,
        policy=policy,
        flusher=flusher,
        checkpoint_wal_bytes=checkpoint_wal_bytes,
    )
    return partition, partition.open()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "p0000"


@pytest.fixture
def partition(directory: Path) -> Iterator[MemoryPartition]:
    opened, _ = open_partition(directory)
    yield opened
    opened.close()


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def busy(partition: MemoryPartition) -> None:
    partition.step(apply(put("a"), put("b"), request_id=b"r1"))
    partition.step(apply(increment("x", {"n": 1})))
    partition.step(prepare(b"t1", put("c"), reads=(read("a", 1),)))
    partition.step(PreCommit(b"t1"))
    partition.step(prepare(b"t2", put("d")))
    partition.step(CreateStatus(b"s1", (0, 1), 5_000, 1))
    partition.step(CreateStatus(b"s2", (0,), 5_000, 1))
    partition.step(CasStatus(b"s2", PENDING, "aborted", 2))


# Partition lifecycle ----------------------------------------------------------------------


def test_open_on_an_empty_directory_creates_the_first_log(directory):
    partition, replayed = open_partition(directory)
    try:
        assert replayed == 0
        assert names(directory) == [log_name(0)]
        assert partition.log_bytes == 0
    finally:
        partition.close()


def test_step_returns_the_reply_and_logs_the_record(partition, directory):
    reply = partition.step(apply(put("a")))
    assert reply == Applied((1,))
    assert partition.get("m", "a") is not None
    assert partition.log_bytes > 0
    assert (directory / log_name(0)).stat().st_size == partition.log_bytes


def test_failed_step_raises_the_error_and_logs_nothing(partition):
    partition.step(apply(put("a")))
    size = partition.log_bytes
    with pytest.raises(FailedPrecondition, match="if_absent"):
        partition.step(apply(put("a", condition=Condition("if_absent"))))
    assert partition.log_bytes == size


def test_step_after_close_is_a_storage_failure(directory):
    partition, _ = open_partition(directory)
    partition.close()
    partition.close()
    with pytest.raises(StorageFailure, match="partition 0 is closed"):
        partition.step(apply(put("a")))


def test_recovery_from_the_log_alone(directory):
    partition, _ = open_partition(directory)
    busy(partition)
    expected = state_of(partition.participant)
    partition.close()
    assert names(directory) == [log_name(0)]

    again, replayed = open_partition(directory)
    try:
        assert replayed == 8
        assert state_of(again.participant) == expected
        # The recovered partition keeps going where the first left off.
        assert again.step(apply(put("e"))) == Applied((9,))
    finally:
        again.close()


def test_recovery_from_a_checkpoint_and_the_log_after_it(directory):
    partition, _ = open_partition(directory)
    busy(partition)
    partition.checkpoint()
    assert names(directory) == [checkpoint_name(8), log_name(8)]
    partition.step(apply(put("after")))
    partition.step(Abort(b"t2"))
    expected = state_of(partition.participant)
    partition.close()

    again, replayed = open_partition(directory)
    try:
        assert replayed == 2
        assert state_of(again.participant) == expected
    finally:
        again.close()


def test_checkpoint_without_new_records_keeps_one_of_each(directory):
    partition, _ = open_partition(directory)
    partition.step(apply(put("a")))
    partition.checkpoint()
    partition.checkpoint()
    assert names(directory) == [checkpoint_name(1), log_name(1)]
    partition.step(apply(put("b")))
    partition.close()
    again, replayed = open_partition(directory)
    try:
        assert replayed == 1
        assert again.get("m", "b") is not None
    finally:
        again.close()


def test_checkpoint_is_triggered_by_log_size(directory):
    partition, _ = open_partition(directory, checkpoint_wal_bytes=300)
    try:
        sizes = []
        for index in range(20):
            partition.step(apply(put(f"k{index}", {"padding": "x" * 40})))
            sizes.append(partition.log_bytes)
        assert max(sizes) < 300
        assert 0 in sizes, "a checkpoint starts an empty log"
        checkpoints = [name for name in names(directory) if name.startswith("checkpoint-")]
        logs = [name for name in names(directory) if name.startswith("wal-")]
        assert len(checkpoints) == 1
        assert len(logs) == 1
        expected = state_of(partition.participant)
    finally:
        partition.close()
    again, _ = open_partition(directory)
    try:
        assert state_of(again.participant) == expected
        assert len(again.participant.segments["m"].entries) == 20
    finally:
        again.close()


def test_torn_tail_of_the_log_is_dropped_on_recovery(directory):
    partition, _ = open_partition(directory)
    partition.step(apply(put("a")))
    partition.step(apply(put("b")))
    partition.close()
    path = directory / log_name(0)
    intact = path.stat().st_size
    with path.open("ab") as handle:
        handle.write(frame(b"half a record")[:-3])

    again, replayed = open_partition(directory)
    try:
        assert replayed == 2
        assert path.stat().st_size == intact
        assert again.step(apply(put("c"))) == Applied((3,))
    finally:
        again.close()
    final, replayed = open_partition(directory)
    try:
        assert replayed == 3
        assert final.get("m", "c") is not None
    finally:
        final.close()


def test_corruption_in_the_middle_of_the_log_refuses_to_open(directory):
    partition, _ = open_partition(directory)
    partition.step(apply(put("a")))
    first = partition.log_bytes
    partition.step(apply(put("b")))
    partition.close()
    path = directory / log_name(0)
    data = bytearray(path.read_bytes())
    data[first - 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match="checksum mismatch"):
        open_partition(directory)


def test_leftover_temporary_files_are_removed(directory):
    directory.mkdir(parents=True)
    (directory / "checkpoint-00000000000000000009.tmp").write_bytes(b"half")
    partition, _ = open_partition(directory)
    partition.close()
    assert names(directory) == [log_name(0)]


def test_a_log_the_checkpoint_replaced_changes_nothing(directory):
    # A crash between writing a checkpoint and removing the older logs leaves them.
    partition, _ = open_partition(directory)
    partition.step(CreateStatus(b"s", (0,), 5_000, 1))
    partition.step(apply(put("a")))
    old_log = (directory / log_name(0)).read_bytes()
    partition.checkpoint()
    partition.step(CasStatus(b"s", PENDING, "aborted", 2))
    partition.step(ForgetStatus(b"s"))
    partition.checkpoint()
    expected = state_of(partition.participant)
    partition.close()
    (directory / log_name(0)).write_bytes(old_log)

    again, _ = open_partition(directory)
    try:
        assert state_of(again.participant) == expected
        assert again.status_records() == []
    finally:
        again.close()


def test_views_of_items_statuses_and_staged(partition):
    partition.step(apply(put("a"), put("b")))
    partition.step(prepare(b"t1", put("c"), lease_expires_ms=77, status_partition=5))
    partition.step(prepare(b"t2", reads=(read("a", 1),), durable=False))
    partition.step(CreateStatus(b"s", (0, 5), 99, 3))
    assert sorted(key for key, _ in partition.items("m")) == ["a", "b"]
    assert partition.items("missing") == []
    assert list(partition.iterate_maps()) == ["m"]
    assert partition.status_records() == [StatusView(b"s", PENDING, (0, 5), 99, 3)]
    assert partition.staged_transactions() == [StagedView(b"t1", "prepared", 77, 5)]


# Fsync policies ---------------------------------------------------------------------------


@pytest.fixture
def fsyncs(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(os, "fdatasync", calls.append)
    return calls


def test_policy_always_fsyncs_every_write(directory, fsyncs):
    partition, _ = open_partition(directory, policy=FsyncPolicy.ALWAYS)
    try:
        partition.step(apply(put("a")))
        partition.step(apply(put("b")))
        assert len(fsyncs) == 2
        # A step that persists nothing does not fsync.
        assert isinstance(partition.step(CasStatus(b"none", PENDING, "aborted", 1)), StatusReply)
        assert len(fsyncs) == 2
    finally:
        partition.close()


def test_policy_off_never_fsyncs_the_log(directory, fsyncs):
    partition, _ = open_partition(directory, policy=FsyncPolicy.OFF)
    partition.step(apply(put("a")))
    partition.close()
    assert fsyncs == []


def test_policy_batch_leaves_fsync_to_the_flusher(directory, fsyncs):
    flusher = BackgroundFlusher(interval_ms=60_000)
    partition, _ = open_partition(directory, policy=FsyncPolicy.BATCH, flusher=flusher)
    try:
        partition.step(apply(put("a")))
        partition.step(apply(put("b")))
        assert fsyncs == []
        flusher.flush()
        assert len(fsyncs) == 1
    finally:
        partition.close()
        flusher.close()


# Checkpoint files -------------------------------------------------------------------------


def test_checkpoint_file_round_trip(tmp_path):
    participant = Participant(0)
    participant.handle(apply(put("a"), put("b", {"big": "y" * 1000}), request_id=b"r"))
    participant.handle(apply(put("k", map_name="other")))
    participant.handle(prepare(b"t", put("c")))
    participant.segment("empty")
    path = write_checkpoint(tmp_path, participant)
    assert path.name == checkpoint_name(3)
    assert not list(tmp_path.glob("*.tmp"))
    restored = Participant(0)
    load_checkpoint(path, restored)
    assert state_of(restored) == state_of(participant)


def test_checkpoint_of_unknown_format_is_refused(tmp_path, monkeypatch):
    from grid.memory import checkpoint

    monkeypatch.setattr(checkpoint, "FORMAT_VERSION", 99)
    path = write_checkpoint(tmp_path, Participant(0))
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown checkpoint format 99"):
        load_checkpoint(path, Participant(0))


# Backend ----------------------------------------------------------------------------------


def no_sketches(map_name: str, current: bytes | None, items: bytes) -> bytes:
    raise InvalidArgument("no sketches here")


HOOKS = ParticipantHooks(
    validators=lambda name: None,
    guarded_field=lambda name, field: False,
    sketch_apply=no_sketches,
)


def backend_config(data_dir: Path, **changes) -> MemoryBackendConfig:
    options = {"data_dir": data_dir, "partitions": 3, "fsync": FsyncPolicy.OFF, **changes}
    return MemoryBackendConfig(**options)


def opened_backend(data_dir: Path, **changes) -> MemoryBackend:
    backend = MemoryBackend(backend_config(data_dir, **changes))
    backend.open(HOOKS)
    return backend


def test_backend_lays_out_the_data_directory(tmp_path):
    backend = opened_backend(tmp_path / "data")
    try:
        assert len(backend.partitions) == 3
        assert [partition.index for partition in backend.partitions] == [0, 1, 2]
        meta = orjson.loads((tmp_path / "data" / "shoal.json").read_bytes())
        assert meta == {"format": 1, "partitions": 3}
        assert (tmp_path / "data" / "LOCK").exists()
        assert sorted(path.name for path in (tmp_path / "data" / "partitions").iterdir()) == [
            "p0000",
            "p0001",
            "p0002",
        ]
        assert backend.recovery is not None
        assert (backend.recovery.partitions, backend.recovery.records_replayed) == (3, 0)
        assert backend.recovery.entries == 0
    finally:
        backend.close()


def test_backend_recovery_report_counts_records_and_entries(tmp_path):
    data_dir = tmp_path / "data"
    backend = opened_backend(data_dir)
    backend.partitions[0].step(apply(put("a"), put("b")))
    backend.partitions[1].step(apply(put("c")))
    backend.partitions[1].step(apply(put("c", {"v": 2})))
    backend.partitions[2].step(CreateStatus(b"s", (2,), 1, 1))
    backend.close(checkpoint=False)

    again = opened_backend(data_dir)
    try:
        assert again.recovery is not None
        assert again.recovery.records_replayed == 4
        assert again.recovery.entries == 3
        assert again.recovery.seconds >= 0
        assert again.partitions[2].status_records()[0].txn_id == b"s"
    finally:
        again.close()

    # Closing with a checkpoint leaves nothing to replay.
    third = opened_backend(data_dir)
    try:
        assert third.recovery is not None
        assert third.recovery.records_replayed == 0
        assert third.recovery.entries == 3
    finally:
        third.close()


def test_data_directory_is_locked_while_in_use(tmp_path):
    data_dir = tmp_path / "data"
    backend = opened_backend(data_dir)
    try:
        with pytest.raises(FailedPrecondition, match="in use by another Shoal server") as caught:
            MemoryBackend(backend_config(data_dir))
        assert caught.value.field == "data_dir"
    finally:
        backend.close()
    opened_backend(data_dir).close()


def test_partition_count_is_fixed_at_creation(tmp_path):
    data_dir = tmp_path / "data"
    opened_backend(data_dir).close()
    with pytest.raises(FailedPrecondition, match="created with 3 partitions, not 5") as caught:
        MemoryBackend(backend_config(data_dir, partitions=5))
    assert caught.value.field == "partitions"
    # The refused attempt must not keep the directory locked.
    opened_backend(data_dir).close()


def test_unknown_data_format_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "shoal.json").write_bytes(orjson.dumps({"format": 7, "partitions": 3}))
    with pytest.raises(FailedPrecondition, match="has format 7") as caught:
        MemoryBackend(backend_config(data_dir))
    assert caught.value.field == "data_dir"
    (data_dir / "shoal.json").write_bytes(orjson.dumps({"format": 1, "partitions": 3}))
    opened_backend(data_dir).close()


def flusher_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "wal-flusher"}


def test_batch_policy_flusher_stops_at_close(tmp_path):
    before = flusher_threads()
    backend = opened_backend(tmp_path / "data", fsync=FsyncPolicy.BATCH, fsync_interval_ms=5)
    backend.partitions[0].step(apply(put("a")))
    started = flusher_threads() - before
    assert len(started) == 1
    backend.close()
    assert not any(thread.is_alive() for thread in started)
    assert backend.partitions == []


def test_backend_passes_hooks_to_participants(tmp_path):
    from grid.schema import Validator, parse_schema

    validator = Validator(parse_schema({"n": {"type": "int", "max": 1}}))
    hooks = ParticipantHooks(
        validators=lambda name: validator,
        guarded_field=lambda name, field: True,
        sketch_apply=no_sketches,
    )
    backend = MemoryBackend(backend_config(tmp_path / "data", partitions=1))
    backend.open(hooks)
    try:
        partition = backend.partitions[0]
        assert partition.step(prepare(b"t1", increment("x", {"n": 1}))) == Vote(True)
        # Guarded fields make increments exclusive.
        vote = partition.step(prepare(b"t2", increment("x", {"n": 1})))
        assert isinstance(vote, Vote)
        assert not vote.yes
        with pytest.raises(InvalidArgument, match="above the maximum"):
            partition.step(apply(increment("y", {"n": 2})))
    finally:
        backend.close()
