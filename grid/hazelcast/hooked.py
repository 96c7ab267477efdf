"""Steps that need a Python hook on Hazelcast: read, resolve in Python, compare-and-apply.

The resolution is grid/redis/hooked.py's (one implementation of increments, appends, sketch
adds and their checks for every shared store); only what it reads comes from Hazelcast: one
read-only entry processor gives the records a step names (value, version, lock holders,
reference count) or a transaction's staged writes, and the compare-and-apply is the member's
``apply_resolved``, ``prepare_resolved`` or ``commit_resolved`` step (PartitionSteps.java),
which applies only if every record is still as it was read. ``replace_if_same`` of single
records would not do: a step writes several records of a partition, all or none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grid.entry import pack
from grid.memory.records import Op
from grid.protocol import Write
from grid.redis.hooked import HookedSteps, KeyRecords


class HazelcastHookedSteps(HookedSteps):
    def __init__(
        self,
        call: Callable[..., list[Any]],
        get: Callable[[str, str], bytes | None],
        read: Callable[..., list[Any]],
    ) -> None:
        # No Redis client or key layout: the readers are the member's, and the member's steps
        # declare no keys.
        super().__init__(None, None, call, get)
        self._read_partition = read

    def staged_writes(self, txn: str) -> list[Write] | None:
        found = self._read_partition("staged_writes", txn)
        if found[0] < 0:
            return None
        return [
            Write(
                Op[found[position]],
                found[position + 1],
                found[position + 2],
                bytes(found[position + 3]),
            )
            for position in range(1, len(found), 4)
        ]

    def read_records(self, targets: list[tuple[str, str]]) -> KeyRecords:
        arguments: list[Any] = [len(targets)]
        for map_name, key in targets:
            arguments += [map_name, key]
        found = self._read_partition("records", *arguments)
        entries: dict[tuple[str, str], bytes | None] = {}
        holders: dict[tuple[str, str], dict[str, str]] = {}
        counts: dict[tuple[str, str], int] = {}
        position = 0
        for target in targets:
            value, version, holder_count = found[position : position + 3]
            position += 3
            entries[target] = pack(bytes(value), version) if version else None
            holders[target] = {
                found[position + 2 * index]: found[position + 2 * index + 1]
                for index in range(holder_count)
            }
            position += 2 * holder_count
            counts[target] = int(found[position])
            position += 1
        return entries, holders, counts
