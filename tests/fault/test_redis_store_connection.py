"""Losing the connection to Redis: calls are retried, then answered UNAVAILABLE, and nothing
is ever half-applied.

A TCP gate between the coordinator and Redis (tests/support/tcp_gate.py) shuts the store off,
opens it again, or loses a reply after Redis ran the command.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grid.catalog import Catalog
from grid.errors import Unavailable
from grid.memory.records import Op
from grid.protocol import Applied, ApplyOnePhase, Write
from grid.redis.backend import RedisBackend, RedisBackendConfig
from shoal import Client, ConflictError, RetryPolicy, ShoalError, UnavailableError
from tests.support.bank import (
    InsufficientFundsError,
    account_key,
    balances,
    ledger_is_atomic,
    setup_bank,
    transfer,
)
from tests.support.server_process import ServerProcess
from tests.support.shared_store import drop_namespace, fresh_namespace
from tests.support.tcp_gate import TcpGate

pytestmark = [pytest.mark.fault, pytest.mark.redis]


@pytest.fixture
def gate(redis_url: str) -> Iterator[TcpGate]:
    host, _, port = redis_url.removeprefix("redis://").rpartition(":")
    opened = TcpGate(host, int(port)).start()
    yield opened
    opened.stop()


def test_a_step_retries_a_lost_reply_once_and_answers_unavailable_when_the_store_is_gone(
    gate: TcpGate, redis_url: str
) -> None:
    namespace = fresh_namespace()
    backend = RedisBackend(RedisBackendConfig(f"redis://{gate.address}", namespace, 2))
    try:
        Catalog(backend.catalog_store).create("m", None, now_ms=0)
        partition = backend.partitions[0]
        write = (Write(Op.PUT, "m", "k", b'{"v": 1}'),)
        # Redis runs the step; its answer is lost; the retry answers as the first attempt.
        gate.lose_next_reply()
        reply = partition.step(ApplyOnePhase(b"once", (), write, 7))
        assert gate.replies_lost == 1
        assert isinstance(reply, Applied) and reply.versions == (7,) and reply.replayed
        again = partition.step(ApplyOnePhase(b"once", (), write, 9))
        assert isinstance(again, Applied) and again.versions == (7,)
        gate.shut()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            partition.step(ApplyOnePhase(b"later", (), write, 11))
        assert time.monotonic() - started < 30
        gate.open()
        entry = partition.get("m", "k")
        assert entry is not None and entry.endswith((7).to_bytes(8, "little"))
        reply = partition.step(ApplyOnePhase(b"later", (), write, 11))
        assert isinstance(reply, Applied) and reply.versions == (11,)
    finally:
        gate.open()
        backend.close()
        drop_namespace(redis_url, namespace)


def test_the_bank_through_a_coordinator_whose_store_connection_fails_stays_whole(
    tmp_path: Path, gate: TcpGate, redis_url: str
) -> None:
    namespace = fresh_namespace()
    server = ServerProcess(
        tmp_path / "data",
        [
            "--backend",
            f"redis://{gate.address}/{namespace}",
            "--partitions",
            "8",
            "--txn-lease-ms",
            "2000",
            "--txn-sweep-interval-ms",
            "200",
        ],
    ).start()
    accounts = 20
    try:
        client = Client(server.target, timeout_s=20)
        total = setup_bank(client, "accounts", "ledger", accounts=accounts)
        stop = threading.Event()
        failures: list[BaseException] = []
        done = [0]

        def transfers(seed: int) -> None:
            rng = random.Random(seed)
            worker = Client(server.target, timeout_s=20)
            while not stop.is_set():
                source, target = rng.sample(range(accounts), 2)
                try:
                    worker.transact(
                        transfer,
                        "accounts",
                        "ledger",
                        account_key(source),
                        account_key(target),
                        rng.randint(1, 10),
                    )
                    done[0] += 1
                except (InsufficientFundsError, ConflictError, UnavailableError):
                    continue
                except ShoalError as error:
                    failures.append(error)
            worker.close()

        threads = [threading.Thread(target=transfers, args=(seed,)) for seed in range(3)]
        for thread in threads:
            thread.start()
        rng = random.Random(5)
        for _ in range(6):
            time.sleep(rng.uniform(0.3, 0.8))
            gate.lose_next_reply()
            time.sleep(rng.uniform(0.3, 0.8))
            gate.shut()
            time.sleep(rng.uniform(0.2, 4.0))
            gate.open()
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(60)
        # Outages are answered UNAVAILABLE (or a conflict), never another error.
        assert [repr(error) for error in failures] == []
        # Three of the outages (3.2, 3.7 and 3.8 s, from the seed) outlast the retries.
        assert server.log_path is not None
        assert "Redis unreachable" in server.log_path.read_text()
        assert done[0] >= 10
        deadline = time.monotonic() + 20
        while True:
            try:
                final = balances(client, "accounts", accounts)
                if sum(final.values()) == total and ledger_is_atomic(client, "ledger") == []:
                    break
            except ShoalError:
                pass
            assert time.monotonic() < deadline, "the grid did not come back whole"
            time.sleep(0.2)
        client.close()
    finally:
        server.kill()
        gate.open()
        drop_namespace(redis_url, namespace)


def test_a_coordinator_cut_off_from_the_catalog_refuses_writes_and_holds_the_change_once_back(
    tmp_path: Path, gate: TcpGate, redis_url: str
) -> None:
    """Coordinator B reaches Redis through the gate, A directly. While B is cut off (longer than
    a lease), A narrows a schema; B answers UNAVAILABLE naming the catalog rather than check a
    write against the schema it last saw, and the moment it is back it refuses what the new
    schema refuses, with no wait for its watcher."""
    namespace = fresh_namespace()
    arguments = ["--partitions", "8", "--txn-lease-ms", "2000"]
    direct = ServerProcess(
        tmp_path / "direct", ["--backend", f"{redis_url}/{namespace}", *arguments]
    ).start()
    gated = ServerProcess(
        tmp_path / "gated", ["--backend", f"redis://{gate.address}/{namespace}", *arguments]
    ).start()
    first = Client(direct.target, timeout_s=30)
    # One attempt per call: the coordinator's own retries are what the test waits for.
    second = Client(gated.target, timeout_s=30, retry=RetryPolicy(attempts=1))
    try:
        for round_number in range(1):
            name = f"orders{round_number}"
            first.create_map(name, schema={"total": "int"})
            second.put(name, "before", {"total": 50})
            first.create_map(f"{name}_empty", schema={"total": "int"})
            gate.shut()
            # An empty map takes any schema: narrowed, 50 is refused from now on.
            first.alter_schema(f"{name}_empty", {"total": {"type": "int", "max": 10}})
            with pytest.raises(UnavailableError, match="catalog"):
                second.put(f"{name}_empty", "k", {"total": 50})
            gate.open()
            with pytest.raises(ShoalError, match="total"):
                second.put(f"{name}_empty", "k", {"total": 50})
            second.put(f"{name}_empty", "k", {"total": 5})
            assert first.get(f"{name}_empty", "k") == {"total": 5}
    finally:
        gate.open()
        first.close()
        second.close()
        direct.kill()
        gated.kill()
        drop_namespace(redis_url, namespace)
