"""A Redis store killed with SIGKILL and restarted keeps every write the Redis backend
acknowledged, when it runs with ``appendfsync always`` (what docs/architecture/recovery.md,
"Failures of the store", asks of a shared backend's Redis).

A writer thread commits one-phase writes through the backend and records each acknowledged
version; the redis-server is killed mid-stream, restarted from its append-only file, and every
acknowledged write must be there with its version. Writes in flight at the kill may or may not
be there, never half (a step is one script, and Redis logs a script's effects as one MULTI).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
import redis

from grid.entry import value_of, version_of
from grid.errors import Unavailable
from grid.memory.records import Op
from grid.protocol import Applied, ApplyOnePhase, Write
from grid.redis.backend import RedisBackend, RedisBackendConfig
from tests.support.external_servers import run_redis_script

pytestmark = [pytest.mark.fault, pytest.mark.redis]

PORT = 6394


def _redis(action: str, cache_dir: Path) -> None:
    run_redis_script(
        action, PORT, {"REDIS_APPENDFSYNC": "always", "SHOAL_CACHE_DIR": str(cache_dir)}
    )


def test_acknowledged_writes_survive_a_redis_crash(tmp_path: Path) -> None:
    if os.environ.get("SHOAL_TEST_REDIS"):
        pytest.skip("needs a redis-server of its own to kill")  # an external server is not ours
    _redis("up", tmp_path)
    pid = int((tmp_path / f"redis-{PORT}" / "redis.pid").read_text())
    backend = RedisBackend(
        RedisBackendConfig(f"redis://127.0.0.1:{PORT}", f"crash-{uuid.uuid4().hex[:8]}", 4)
    )
    acknowledged: dict[str, int] = {}
    stop = threading.Event()

    def write() -> None:
        index = 0
        while not stop.is_set():
            key = f"k{index}"
            put = Write(Op.PUT, "m", key, orjson.dumps({"i": index}))
            try:
                applied = backend.partitions[index % 4].step(ApplyOnePhase(b"", (), (put,)))
            except (redis.ConnectionError, Unavailable):
                # The store went away (the backend retries, then answers UNAVAILABLE): this
                # write's outcome is unknown.
                return
            assert isinstance(applied, Applied)
            acknowledged[key] = applied.versions[0]
            index += 1

    writer = threading.Thread(target=write)
    try:
        writer.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 200:
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        writer.join(timeout=60)
        stop.set()
        _redis("up", tmp_path)
        backend.close()
        backend = RedisBackend(backend.config)
        for key, version in acknowledged.items():
            entry = backend.partitions[int(key[1:]) % 4].get("m", key)
            assert entry is not None, f"acknowledged {key} is lost"
            assert version_of(entry) == version
            assert orjson.loads(value_of(entry)) == {"i": int(key[1:])}
    finally:
        stop.set()
        writer.join(timeout=30)
        backend.close()
        _redis("down", tmp_path)
