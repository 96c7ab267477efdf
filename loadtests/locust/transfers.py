"""Transactional tasks: the bank transfer, and a read-only audit of a few balances.

A transfer is ``bank.transfer`` (the tests' bank workload runs it too): it reads two
accounts, moves an amount and writes a ledger entry beside each, in one serializable
transaction that ``transact`` retries on conflict. Each reported request is one whole
``transact``, retries included, which is the latency a service sees.
"""

from __future__ import annotations

import uuid
from typing import Any

from loadtests.locust.bank import InsufficientFundsError, account_key
from loadtests.locust.bank import transfer as bank_transfer
from loadtests.locust.features import BANK_PROCEDURE
from loadtests.locust.session import Session
from shoal import Transaction

TRANSFER = "txn.transfer"
PROCEDURE_TRANSFER = "txn.transfer_procedure"
AUDIT = "txn.audit"
AMOUNT_MAX = 20


def _transfer_or_decline(
    tx: Transaction, accounts: str, ledger: str, source: str, target: str, amount: int
) -> str | None:
    """A declined transfer (insufficient funds) is a normal business outcome, not a failure."""
    try:
        return bank_transfer(tx, accounts, ledger, source, target, amount)
    except InsufficientFundsError:
        return None


def _balances(tx: Transaction, accounts: str, keys: list[str]) -> int:
    found: dict[str, Any] = tx.get_many(accounts, keys)
    return sum(value["balance"] for value in found.values())


def transfer(session: Session) -> None:
    source, target = session.accounts.distinct(2)
    session.client.named(TRANSFER).transact(
        _transfer_or_decline,
        session.maps.accounts,
        session.maps.ledger,
        account_key(source),
        account_key(target),
        session.rng.randint(1, AMOUNT_MAX),
    )


def procedure_transfer(session: Session) -> None:
    """The same transfer as the procedure `bank_transfer`, run in the coordinator: one
    round trip, retried on conflict by the server."""
    source, target = session.accounts.distinct(2)
    # A declined transfer (insufficient funds) answers None: not a failure.
    session.client.named(PROCEDURE_TRANSFER).call(
        BANK_PROCEDURE,
        session.maps.accounts,
        session.maps.ledger,
        account_key(source),
        account_key(target),
        session.rng.randint(1, AMOUNT_MAX),
        uuid.uuid4().hex,
    )


def audit(session: Session) -> None:
    keys = [account_key(index) for index in session.accounts.distinct(session.settings.batch)]
    session.client.named(AUDIT).transact(_balances, session.maps.accounts, keys)
