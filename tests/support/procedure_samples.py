"""Procedures for the tests: ones that fail, run for ever, or reach outside the grid."""

from __future__ import annotations

from typing import Any

from shoal.procedures import procedure


class Refused(Exception):
    """What `refuse` raises: a business rule of the procedure, not a server failure."""


@procedure(name="refuse")
def refuse(tx: Any, map_name: str, key: str) -> None:
    """Writes a key, then raises: nothing must be committed."""
    tx.put(map_name, key, {"written": True})
    raise Refused(f"no writes to {key} today")


@procedure(name="spin")
def spin(tx: Any, map_name: str, key: str) -> None:
    """Writes a key, then never returns: the time limit must stop it."""
    tx.put(map_name, key, {"written": True})
    while True:
        pass


@procedure(name="count")
def count(tx: Any, map_name: str, key: str) -> int:
    """Read-modify-write of one counter: concurrent calls conflict and are retried."""
    current = tx.get(map_name, key)
    value = (current or {"n": 0})["n"] + 1
    tx.put(map_name, key, {"n": value})
    return int(value)


@procedure(name="noop")
def noop(tx: Any) -> None:
    """Does nothing: the cost of a call itself."""
