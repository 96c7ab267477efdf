"""Grid SQL snapshot consistency: queries never see part of a cross-partition transaction.

The bank workload moves money between 100 accounts in 3PC transactions (8 clients) for
about 8 seconds; meanwhile SQL keeps asking for the total balance, the ledger's size
and, across both maps at once, whether every balance equals its start plus its ledger
entries. Every answer must be exact: a torn transaction would show as a wrong total,
an odd number of ledger entries, or an account out of step with its ledger.
"""

from __future__ import annotations

import threading
import time

import pytest

from shoal import Client
from tests.support.bank import BALANCE_START, account_key, run_bank, setup_bank

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNTS = 100
CLIENTS = 8
RUN_S = 8.0


def test_sql_sees_whole_transactions_only(shoal_server: str, client: Client, map_name: str) -> None:
    accounts_map, ledger_map = f"{map_name}_accounts", f"{map_name}_ledger"
    total = setup_bank(client, accounts_map, ledger_map, accounts=ACCOUNTS)
    all_keys = [account_key(index) for index in range(ACCOUNTS)]

    sum_query = f"SELECT sum(balance) FROM {accounts_map}"
    # The same total through the point-lookup path: 100 keys on many partitions.
    lookup_query = (
        f"SELECT sum(balance) FROM {accounts_map} WHERE __key IN ({', '.join('?' * ACCOUNTS)})"
    )
    ledger_query = f"SELECT count(*) FROM {ledger_map}"
    # One snapshot of two maps: each balance is its start plus its ledger entries. Ledger
    # keys are `{acct-NNN}:<transfer id>`.
    agreement_query = f"""
        WITH moved AS (
            SELECT substr(__key, 2, 8) AS account,
                   sum(CAST(json_extract(value, '$.amount') AS BIGINT)) AS delta,
                   count(*) AS entries
            FROM {ledger_map}
            GROUP BY 1
        )
        SELECT count(*) FILTER (WHERE a.balance <> {BALANCE_START} + coalesce(m.delta, 0)),
               sum(a.balance),
               coalesce(sum(m.entries), 0)
        FROM {accounts_map} a LEFT JOIN moved m ON m.account = a.__key
    """

    stop = threading.Event()
    run, threads = run_bank(
        shoal_server,
        accounts_map,
        ledger_map,
        accounts=ACCOUNTS,
        clients=CLIENTS,
        stop=stop,
        reader=False,
    )
    sums: list[int] = []
    lookups: list[int] = []
    ledger_counts: list[int] = []
    disagreements: list[tuple[int, int, int]] = []
    try:
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            sums.append(client.sql(sum_query).fetchall()[0][0])
            lookups.append(client.sql(lookup_query, all_keys).fetchall()[0][0])
            ledger_counts.append(client.sql(ledger_query).fetchall()[0][0])
            off, agreed_total, entries = client.sql(agreement_query).fetchall()[0]
            if off or agreed_total != total or entries % 2:
                disagreements.append((off, agreed_total, entries))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert run.errors == []

    # The workload really ran while the queries did.
    assert run.transfers >= 50, run
    assert len(sums) >= 10
    assert len(set(ledger_counts)) > 2, "the ledger should grow while queries run"

    assert [value for value in sums if value != total] == []
    assert [value for value in lookups if value != total] == []
    assert [count for count in ledger_counts if count % 2] == []
    assert disagreements == []

    # At rest, the last snapshot holds every transfer's two entries.
    assert client.sql(sum_query).fetchall() == [(total,)]
    assert client.sql(ledger_query).fetchall() == [(2 * run.transfers,)]
