"""The bank workload: random transfers between accounts whose total never changes.

Each transfer also writes a ledger entry next to each of its two accounts (a
`{account}` hash tag puts it in the account's partition), so after a crash every
transfer must have both its ledger entries or neither.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from loadtests.locust.bank import BALANCE_START, InsufficientFundsError, account_key, transfer
from shoal import Client, ConflictError, ShoalError, Transaction

# The transfer itself is the load test's (one function for both); re-exported here.
__all__ = [
    "BALANCE_START",
    "BankRun",
    "InsufficientFundsError",
    "Transfers",
    "account_key",
    "balances",
    "ledger_is_atomic",
    "run_bank",
    "setup_bank",
    "transfer",
    "transfer_until",
]


def setup_bank(client: Client, accounts_map: str, ledger_map: str, accounts: int = 100) -> int:
    client.create_map(accounts_map, schema={"balance": {"type": "int", "min": 0}})
    client.create_map(ledger_map)
    client.put_many(
        accounts_map, {account_key(index): {"balance": BALANCE_START} for index in range(accounts)}
    )
    return accounts * BALANCE_START


def balances(client: Client, accounts_map: str, accounts: int) -> dict[str, int]:
    """Every balance, read in one serializable (read-only) transaction."""

    def read(tx: Transaction) -> dict[str, Any]:
        return tx.get_many(accounts_map, [account_key(index) for index in range(accounts)])

    found = client.transact(read)
    return {key: value["balance"] for key, value in found.items()}


@dataclass
class BankRun:
    transfers: int = 0
    conflicts_retried: int = 0
    insufficient: int = 0
    sums: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def run_bank(
    target: str,
    accounts_map: str,
    ledger_map: str,
    *,
    accounts: int,
    clients: int,
    stop: threading.Event,
    seed: int = 7,
    reader: bool = True,
) -> tuple[BankRun, list[threading.Thread]]:
    """Starts transfer threads (and a reader summing balances); returns at once."""
    run = BankRun()
    lock = threading.Lock()

    def transfers(worker: int) -> None:
        rng = random.Random(seed * 1000 + worker)
        client = Client(target, timeout_s=15)
        try:
            while not stop.is_set():
                source, target_account = rng.sample(range(accounts), 2)
                try:
                    client.transact(
                        transfer,
                        accounts_map,
                        ledger_map,
                        account_key(source),
                        account_key(target_account),
                        rng.randint(1, 50),
                    )
                    with lock:
                        run.transfers += 1
                except InsufficientFundsError:
                    with lock:
                        run.insufficient += 1
                except ConflictError:
                    with lock:
                        run.conflicts_retried += 1
        except ShoalError as error:
            with lock:
                run.errors.append(error)
        finally:
            client.close()

    def read_sums() -> None:
        client = Client(target, timeout_s=15)
        try:
            while not stop.is_set():
                found = balances(client, accounts_map, accounts)
                with lock:
                    run.sums.append(sum(found.values()))
        except ShoalError as error:
            with lock:
                run.errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=transfers, args=(i,), daemon=True) for i in range(clients)]
    if reader:
        threads.append(threading.Thread(target=read_sums, daemon=True))
    for thread in threads:
        thread.start()
    return run, threads


@dataclass
class Transfers:
    """What a workload under faults saw: the transfers acknowledged, and the calls that failed."""

    acknowledged: list[str] = field(default_factory=list)
    failed: int = 0
    # How many calls failed with each status (UNAVAILABLE, ABORTED, ...).
    codes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed_with(self, error: ShoalError) -> None:
        with self.lock:
            self.failed += 1
            self.codes[error.code] = self.codes.get(error.code, 0) + 1


def transfer_until(
    targets: str, stop: threading.Event, seed: int, done: Transfers, accounts: int
) -> None:
    """Transfers until stopped; a transfer whose commit failed (its coordinator killed, its
    store failing over) is not acknowledged and may or may not have happened: only
    acknowledged ones are checked."""
    rng = random.Random(seed)
    client = Client(targets, timeout_s=10)
    try:
        while not stop.is_set():
            source, destination = rng.sample(range(accounts), 2)
            try:
                transfer_id = client.transact(
                    transfer,
                    "accounts",
                    "ledger",
                    account_key(source),
                    account_key(destination),
                    rng.randint(1, 20),
                )
            except (InsufficientFundsError, ConflictError):
                continue
            except ShoalError as error:
                done.failed_with(error)
                time.sleep(0.05)
                continue
            with done.lock:
                done.acknowledged.append(transfer_id)
    finally:
        client.close()


def ledger_is_atomic(client: Client, ledger_map: str) -> list[str]:
    """Transfer ids that have one ledger entry but not the other."""
    seen: dict[str, int] = {}
    for key, _ in client.scan(ledger_map):
        transfer_id = key.rsplit(":", 1)[1]
        seen[transfer_id] = seen.get(transfer_id, 0) + 1
    return sorted(transfer_id for transfer_id, count in seen.items() if count != 2)
