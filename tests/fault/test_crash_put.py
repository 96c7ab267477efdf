"""Crash and restart: acknowledged puts survive kill -9, a graceful stop checkpoints, and a
torn last log record is dropped without losing anything acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal import Client, Versioned
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.fault

KEYS = 300
MAP = "crash"


def put_keys(target: str, count: int, *, prefix: str = "key") -> dict[str, Versioned]:
    """Puts `count` keys one call at a time; returns what each acknowledgement promised."""
    acknowledged = {}
    with Client(target) as client:
        client.create_map(MAP, if_not_exists=True)
        for index in range(count):
            key = f"{prefix}-{index:04d}"
            value = {"index": index, "payload": f"value {index} " * (index % 7), "ok": True}
            acknowledged[key] = Versioned(value, client.put(MAP, key, value))
        # Some keys change again, so their versions are not all the first ones.
        for index in range(0, count, 10):
            key = f"{prefix}-{index:04d}"
            value = {"index": index, "rewritten": True}
            acknowledged[key] = Versioned(value, client.put(MAP, key, value))
    return acknowledged


def assert_all_present(target: str, acknowledged: dict[str, Versioned]) -> None:
    with Client(target) as client:
        keys = list(acknowledged)
        found = {}
        for key in keys:
            versioned = client.get_versioned(MAP, key)
            assert versioned is not None, f"acknowledged key {key} is lost"
            found[key] = versioned
        assert found == acknowledged
        assert client.describe_map(MAP).entries == len(acknowledged)


def wal_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "partitions").glob("p*/wal-*.log"))


def log_since(server: ServerProcess, offset: int) -> str:
    assert server.log_path is not None
    return server.log_path.read_text(errors="replace")[offset:]


def log_size(server: ServerProcess) -> int:
    assert server.log_path is not None
    return len(server.log_path.read_text(errors="replace")) if server.log_path.exists() else 0


@pytest.mark.parametrize("fsync", ["always", "batch"])
def test_acknowledged_puts_survive_kill_9(fresh_server: ServerProcess, fsync: str) -> None:
    # Under batch the log reaches the operating system before the acknowledgement, so a
    # crash of the process (not of the machine) loses nothing either.
    fresh_server.extra_args = ["--fsync", fsync]
    fresh_server.start()
    acknowledged = put_keys(fresh_server.target, KEYS)
    assert len(acknowledged) == KEYS

    fresh_server.kill()
    # Nothing was checkpointed: recovery must come from the logs.
    assert sum(path.stat().st_size for path in wal_files(fresh_server.data_dir)) > 0
    assert not list((fresh_server.data_dir / "partitions").glob("p*/checkpoint-*"))
    fresh_server.start()

    assert_all_present(fresh_server.target, acknowledged)
    with Client(fresh_server.target) as client:
        assert client.cluster_info().fsync == fsync
        # Versions keep increasing after recovery.
        key, before = next(iter(acknowledged.items()))
        assert client.put(MAP, key, {"after": "restart"}) > before.version


def test_graceful_stop_checkpoints_and_restarts_without_replay(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    acknowledged = put_keys(fresh_server.target, KEYS)

    assert fresh_server.stop() == 0
    data_dir = fresh_server.data_dir
    checkpoints = list((data_dir / "partitions").glob("p*/checkpoint-*"))
    assert checkpoints, "a graceful stop writes checkpoints"
    # Everything is in the checkpoints: the logs after them are empty.
    assert all(path.stat().st_size == 0 for path in wal_files(data_dir))

    # A fast restart is one that loads checkpoints and replays nothing; its wall time is
    # the machine's, so the log says what the restart did rather than a stopwatch.
    offset = log_size(fresh_server)
    fresh_server.start()
    assert " 0 log records replayed" in log_since(fresh_server, offset)
    assert f"{len(acknowledged)} entries" in log_since(fresh_server, offset)
    assert_all_present(fresh_server.target, acknowledged)


def test_torn_last_log_record_is_dropped(fresh_server: ServerProcess) -> None:
    fresh_server.extra_args = ["--fsync", "always"]
    fresh_server.start()
    acknowledged = put_keys(fresh_server.target, 200)
    fresh_server.kill()

    written = [path for path in wal_files(fresh_server.data_dir) if path.stat().st_size > 0]
    assert len(written) >= 3
    newest = max(written, key=lambda path: path.stat().st_mtime_ns)
    others = [path for path in written if path != newest][:2]
    sizes = {path: path.stat().st_size for path in [newest, *others]}
    tails = {
        # Garbage: a header whose length runs far past the end of the file.
        newest: b"\xde\xad\xbe\xef" * 9 + b"!",
        # A header promising 100 bytes followed by only a few of them.
        others[0]: (100).to_bytes(4, "little") + (12345).to_bytes(4, "little") + b"partial",
        # A whole frame whose checksum does not match its payload.
        others[1]: (5).to_bytes(4, "little") + (0).to_bytes(4, "little") + b"hello",
    }
    for path, tail in tails.items():
        with path.open("ab") as handle:
            handle.write(tail)

    offset = log_size(fresh_server)
    fresh_server.start()
    assert log_since(fresh_server, offset).count("dropping a torn record") == len(tails)
    for path, size in sizes.items():
        assert path.stat().st_size == size, f"{path} was not truncated to its last whole record"
    assert_all_present(fresh_server.target, acknowledged)

    # Records appended after the repair are read back after another crash: the torn bytes
    # are gone, so they do not turn into corruption in the middle of the log.
    acknowledged.update(put_keys(fresh_server.target, 200, prefix="after"))
    fresh_server.kill()
    fresh_server.start()
    assert_all_present(fresh_server.target, acknowledged)
