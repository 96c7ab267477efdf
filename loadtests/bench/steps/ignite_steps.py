"""Ignite alternatives through pyignite: pessimistic or optimistic transactions on a
TRANSACTIONAL cache, or SQL statements that compare-and-set one row each.

* ``pessimistic``: ``tx_start(PESSIMISTIC, REPEATABLE_READ)``; each ``get`` locks its key (in key
  order, so transactions never wait in a cycle), the puts follow, then commit. For ``3pc-2p``
  the one Ignite transaction over both keys replaces Shoal's protocol.
* ``optimistic``: ``tx_start(OPTIMISTIC, SERIALIZABLE)``: no locks until commit, which fails when
  another transaction changed a key that was read; the whole transaction is then repeated.
* ``sql``: Shoal's protocol with every step one ``UPDATE ... WHERE k = ? AND <condition>`` on a
  row that holds value, version, lock and staged write (Ignite runs a DML row update as an
  entry processor that re-checks the row, so one statement is a compare-and-set of one row);
  the status record is a row of its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pyignite import Client
from pyignite.datatypes.transactions import TransactionConcurrency, TransactionIsolation
from pyignite.exceptions import CacheError, SQLError

from loadtests.bench.steps.protocol import one_phase, three_phase
from loadtests.bench.steps.workload import KEYS_PER_PARTITION, PARTITIONS, Commit, Pick

VARIANTS = ("pessimistic", "optimistic", "sql")
TX_TIMEOUT_MS = 10_000
OPTIMISTIC_ATTEMPTS_MAX = 1000
ROWS_TABLE = """
CREATE TABLE IF NOT EXISTS shoal_rows (
  k VARCHAR PRIMARY KEY, ver BIGINT, val VARCHAR, lk VARCHAR, st VARCHAR, staged VARCHAR
) WITH "template=partitioned,backups=0,atomicity=transactional,cache_name=shoal.rows"
"""
STATUS_TABLE = """
CREATE TABLE IF NOT EXISTS shoal_status (t VARCHAR PRIMARY KEY, st VARCHAR)
WITH "template=partitioned,backups=0,atomicity=transactional,cache_name=shoal.status"
"""


_opened: list[Client] = []


def connect(host: str, port: int) -> Client:
    """A connected client: pyignite's Client is not thread-safe, so one per worker thread."""
    client = Client(timeout=30.0)
    client.connect(host, port)
    _opened.append(client)
    return client


def run_sql(client: Client, statement: str, *arguments: Any) -> list[list[Any]]:
    with client.sql(statement, query_args=list(arguments)) as cursor:
        return [list(row) for row in cursor]


def prepare_server(host: str, port: int) -> None:
    client = Client(timeout=30.0)
    client.connect(host, port)
    try:
        client.get_or_create_cache("shoal.e").clear()
        run_sql(client, ROWS_TABLE)
        run_sql(client, STATUS_TABLE)
        run_sql(client, "DELETE FROM shoal_rows")
        run_sql(client, "DELETE FROM shoal_status")
        for partition in range(PARTITIONS):
            for index in range(KEYS_PER_PARTITION):
                run_sql(
                    client,
                    "INSERT INTO shoal_rows (k, ver, val) VALUES (?, 0, '')",
                    f"k{partition}-{index}",
                )
    finally:
        client.close()


def finish() -> None:
    """Closes every worker's client."""
    while _opened:
        _opened.pop().close()


def versioned(version: int, value: bytes) -> bytes:
    return struct.pack(">Q", version) + value


def version_of(raw: bytes | None) -> int:
    return 0 if raw is None else int(struct.unpack(">Q", bytes(raw[:8]))[0])


def transaction_commit(client: Client, concurrency: int, isolation: int) -> Commit:
    entries = client.get_or_create_cache("shoal.e")

    def commit(chosen: Pick) -> int:
        failed = 0
        while True:
            try:
                with client.tx_start(
                    concurrency=concurrency, isolation=isolation, timeout=TX_TIMEOUT_MS
                ) as transaction:
                    for _, key in sorted(chosen.keys, key=lambda pair: pair[1]):
                        current = entries.get(key)
                        entries.put(key, versioned(version_of(current) + 1, chosen.value))
                    transaction.commit()
                return failed
            except CacheError:
                # An optimistic SERIALIZABLE commit fails when a key it read changed meanwhile.
                failed += 1
                if failed >= OPTIMISTIC_ATTEMPTS_MAX:
                    raise

    return commit


class SqlSteps:
    """Each step one SQL statement that updates one row only if its condition still holds."""

    def __init__(self, client: Client) -> None:
        self.retries = 0
        self.client = client

    def _count(self, statement: str, *arguments: Any) -> int:
        rows = run_sql(self.client, statement, *arguments)
        return int(rows[0][0]) if rows else 0

    def one_phase(self, partition: int, key: str, value: bytes) -> bool:
        return (
            self._count(
                "UPDATE shoal_rows SET ver = ver + 1, val = ? WHERE k = ? AND lk IS NULL",
                value.decode(),
                key,
            )
            == 1
        )

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool:
        return (
            self._count(
                "UPDATE shoal_rows SET lk = ?, st = 'prepared', staged = ? "
                "WHERE k = ? AND (lk IS NULL OR lk = ?)",
                txn,
                value.decode(),
                key,
                txn,
            )
            == 1
        )

    def precommit(self, partition: int, key: str, txn: str) -> None:
        self._count(
            "UPDATE shoal_rows SET st = 'pre_committed' WHERE k = ? AND lk = ? AND st = 'prepared'",
            key,
            txn,
        )

    def commit(self, partition: int, key: str, txn: str) -> None:
        self._count(
            "UPDATE shoal_rows SET ver = ver + 1, val = staged, lk = NULL, st = NULL, "
            "staged = NULL WHERE k = ? AND lk = ?",
            key,
            txn,
        )

    def abort(self, partition: int, key: str, txn: str) -> None:
        self._count(
            "UPDATE shoal_rows SET lk = NULL, st = NULL, staged = NULL WHERE k = ? AND lk = ?",
            key,
            txn,
        )

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        if not expected:
            try:
                return self._count("INSERT INTO shoal_status (t, st) VALUES (?, ?)", txn, new) == 1
            except SQLError:
                return False  # the record exists already: someone else decided first
        return (
            self._count("UPDATE shoal_status SET st = ? WHERE t = ? AND st = ?", new, txn, expected)
            == 1
        )


def commit_factory(host: str, port: int, variant: str, shape: str) -> Callable[[], Commit]:
    def make() -> Commit:
        client = connect(host, port)
        if variant == "pessimistic":
            return transaction_commit(
                client, TransactionConcurrency.PESSIMISTIC, TransactionIsolation.REPEATABLE_READ
            )
        if variant == "optimistic":
            return transaction_commit(
                client, TransactionConcurrency.OPTIMISTIC, TransactionIsolation.SERIALIZABLE
            )
        steps = SqlSteps(client)
        return one_phase(steps) if shape == "1-key" else three_phase(steps)

    return make
