"""The bank through procedures, with the server killed (-9) under load: the total is
conserved, every transfer has both ledger entries or neither, and every transfer a
client saw acknowledged is there after recovery."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal import Client, ShoalError
from tests.support.bank import account_key, balances, ledger_is_atomic, setup_bank
from tests.support.server_process import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.fault

ACCOUNTS = 30
CLIENTS = 4
KILLS = 2
PROCEDURES = str(REPO_ROOT / "loadtests" / "procedures")


@dataclass
class Acknowledged:
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Transfer id -> (source, target, amount), for every call answered with its id.
    transfers: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    declined: int = 0
    unknown: int = 0

    def count(self) -> int:
        with self.lock:
            return len(self.transfers)


def transfers(target: str, seed: int, stop: threading.Event, seen: Acknowledged) -> None:
    rng = random.Random(seed)
    client = Client(target, timeout_s=10)
    try:
        while not stop.is_set():
            source, destination = (account_key(index) for index in rng.sample(range(ACCOUNTS), 2))
            amount = rng.randint(1, 400)
            transfer_id = uuid.uuid4().hex
            try:
                answer = client.call(
                    "bank_transfer", "accounts", "ledger", source, destination, amount, transfer_id
                )
            except ShoalError:
                # The server died under the call (or is restarting): the outcome is unknown.
                with seen.lock:
                    seen.unknown += 1
                time.sleep(0.05)
                continue
            with seen.lock:
                if answer is None:
                    seen.declined += 1
                else:
                    assert answer == transfer_id
                    seen.transfers[transfer_id] = (source, destination, amount)
    finally:
        client.close()


def wait_for(condition: object, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("the condition did not hold in time")


def test_bank_through_procedures_survives_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", ["--procedures", PROCEDURES]).start()
    seen = Acknowledged()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        with Client(server.target) as client:
            total = setup_bank(client, "accounts", "ledger", accounts=ACCOUNTS)
        threads = [
            threading.Thread(target=transfers, args=(server.target, seed, stop, seen), daemon=True)
            for seed in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for _ in range(KILLS):
            # Killed while transfers are in flight, after some were acknowledged.
            already = seen.count()
            wait_for(lambda already=already: seen.count() >= already + 40)
            server.kill()
            server.start()
        already = seen.count()
        wait_for(lambda: seen.count() >= already + 40)
        stop.set()
        for thread in threads:
            thread.join(60)

        with Client(server.target) as client:
            final = balances(client, "accounts", ACCOUNTS)
            assert sum(final.values()) == total
            assert min(final.values()) >= 0
            assert ledger_is_atomic(client, "ledger") == []
            for transfer_id, (source, destination, amount) in seen.transfers.items():
                entries = client.get_many(
                    "ledger", [f"{{{source}}}:{transfer_id}", f"{{{destination}}}:{transfer_id}"]
                )
                assert entries == {
                    f"{{{source}}}:{transfer_id}": {"amount": -amount},
                    f"{{{destination}}}:{transfer_id}": {"amount": amount},
                }, f"acknowledged transfer {transfer_id} is lost"
        assert seen.unknown > 0, "no call was cut by a kill: the test did not test a crash"
    finally:
        stop.set()
        server.kill()
