"""Bank procedures: the transfers of the benchmark and of the bank workload, run in the
coordinator (``shoal serve --procedures loadtests/procedures``).

``transfer`` is the benchmark's two-account transfer (the map ``accounts``, values
``{"balance": n}``), the same work as the Redis Lua transfer it is measured against: read
both balances, refuse an overdraft, write both. ``bank_transfer`` is the bank workload's
transfer with its ledger entries (loadtests/locust/bank.py), with the transfer id chosen
by the client so that an acknowledged transfer can be found afterwards.
"""

from __future__ import annotations

from typing import Any

from loadtests.locust.bank import InsufficientFundsError, transfer_with_id
from shoal.procedures import ProcedureTransaction, procedure


@procedure(name="transfer")
def transfer(tx: ProcedureTransaction, src: str, dst: str, amount: int) -> int:
    """Moves amount from src to dst in the map accounts; returns src's new balance."""
    source = tx.get("accounts", src)
    target = tx.get("accounts", dst)
    if source is None or target is None:
        raise KeyError(f"no account {src if source is None else dst}")
    balance = int(source["balance"]) - amount
    if balance < 0:
        raise ValueError(f"{src} holds {source['balance']}, less than {amount}")
    tx.put("accounts", src, {"balance": balance})
    tx.put("accounts", dst, {"balance": int(target["balance"]) + amount})
    return balance


@procedure(name="bank_transfer")
def bank_transfer(
    tx: Any,
    accounts_map: str,
    ledger_map: str,
    source: str,
    target: str,
    amount: int,
    transfer_id: str,
) -> str | None:
    """The bank workload's transfer with a ledger entry beside each account; None when
    declined (the source holds less than the amount), which commits nothing."""
    try:
        return transfer_with_id(tx, accounts_map, ledger_map, source, target, amount, transfer_id)
    except InsufficientFundsError:
        return None
