"""Lock modes of the participant, and the lock each key of a transaction needs.

S (read) shares with S and R; I (commutative update) with I and R; R (a reference,
which keeps the key from being deleted) with S, I and R; X (overwrite) with nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from grid.memory.records import Op
from grid.protocol import Read, Write

NumericGuard = Callable[[str, str], bool]

SHARED = "S"
EXCLUSIVE = "X"
COMMUTATIVE = "I"
REFERENCING = "R"
COMPATIBLE = {
    SHARED: frozenset({SHARED, REFERENCING}),
    COMMUTATIVE: frozenset({COMMUTATIVE, REFERENCING}),
    REFERENCING: frozenset({SHARED, COMMUTATIVE, REFERENCING}),
    EXCLUSIVE: frozenset(),
}
COMMUTATIVE_OPS = (Op.INCREMENT, Op.APPEND, Op.SKETCH_ADD)


def combine_modes(held: str, wanted: str) -> str:
    """One lock mode that grants both: the one whose compatible set is the smaller."""
    if held == wanted:
        return held
    if {held, wanted} == {SHARED, REFERENCING}:
        return SHARED
    if {held, wanted} == {COMMUTATIVE, REFERENCING}:
        return COMMUTATIVE
    return EXCLUSIVE


def lock_modes(
    reads: Iterable[Read], writes: Iterable[Write], guarded_field: NumericGuard
) -> dict[tuple[str, str], str]:
    """The lock each key needs, combining everything the transaction does to it."""
    modes: dict[tuple[str, str], str] = {}
    for read in reads:
        modes[(read.map, read.key)] = SHARED
    for write in writes:
        target = (write.map, write.key)
        if write.op == Op.REFERENCE:
            wanted = REFERENCING
        elif write.op in COMMUTATIVE_OPS and not needs_exclusive(write, guarded_field):
            wanted = COMMUTATIVE
        else:
            wanted = EXCLUSIVE
        if write.condition is not None:
            wanted = EXCLUSIVE
        held = modes.get(target)
        modes[target] = wanted if held is None else combine_modes(held, wanted)
    return modes


def needs_exclusive(write: Write, guarded_field: NumericGuard) -> bool:
    """An update of a field with range or length rules cannot commute: order decides."""
    if write.op == Op.SKETCH_ADD:
        return False
    try:
        fields = orjson.loads(write.value)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(fields, dict):
        return True
    return any(guarded_field(write.map, name) for name in fields)
