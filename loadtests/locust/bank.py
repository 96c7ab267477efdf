"""The bank transfer: two accounts and a ledger entry beside each, in one transaction.

The load test's ``txn.transfer`` and the tests' bank workload (tests/support/bank.py)
run this same function, so the invariant the tests check (the total never changes, and
every transfer has both ledger entries or neither) is the one the load test exercises.
Each ledger entry carries its account as a ``{account}`` hash tag, so it lives in the
account's partition.
"""

from __future__ import annotations

import uuid
from typing import Any

from shoal import Transaction

BALANCE_START = 1_000


class InsufficientFundsError(Exception):
    """The source account holds less than the amount: a declined transfer, not a failure."""


def account_key(index: int) -> str:
    return f"acct-{index:03d}"


def transfer(
    tx: Transaction, accounts_map: str, ledger_map: str, source: str, target: str, amount: int
) -> str:
    """Moves `amount` from `source` to `target`; returns the transfer's id."""
    return transfer_with_id(tx, accounts_map, ledger_map, source, target, amount, uuid.uuid4().hex)


def transfer_with_id(
    tx: Transaction | Any,
    accounts_map: str,
    ledger_map: str,
    source: str,
    target: str,
    amount: int,
    transfer_id: str,
) -> str:
    """The transfer under an id chosen by the caller (the procedure `bank_transfer` runs
    it in the coordinator, and the client keeps the id to find the transfer after a crash).
    `tx` is a client transaction or a procedure's."""
    source_account = tx.get(accounts_map, source)
    target_account = tx.get(accounts_map, target)
    if source_account["balance"] < amount:
        raise InsufficientFundsError(source)
    tx.put(accounts_map, source, {"balance": source_account["balance"] - amount})
    tx.put(accounts_map, target, {"balance": target_account["balance"] + amount})
    tx.put(ledger_map, f"{{{source}}}:{transfer_id}", {"amount": -amount})
    tx.put(ledger_map, f"{{{target}}}:{transfer_id}", {"amount": amount})
    return transfer_id
