"""One-phase steps that need a Python hook on Redis: read, resolve in Python, compare-and-apply.

Increments, appends and sketch adds compute their new value from the stored one with code
that cannot run in Lua (the field-update rules, the schema validators, DataSketches). So the
step reads the records it names (values, versions, lock holders, in one MULTI), resolves the
writes in Python exactly as the participant does, and sends the resolved PUT/DELETE entries to
the ``apply_resolved`` step of grid/redis/steps.lua, which applies them only if every version
and lock it was told about is still what was read. A lost race reads again; the step is the
one the participant would have taken on the state the write lands on
(docs/ARCHITECTURE.md, "One participant, run against the store").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis

from grid.backend import ParticipantHooks
from grid.entry import value_of, version_of
from grid.errors import Conflict, FailedPrecondition
from grid.field_updates import apply_field_update
from grid.locks import COMPATIBLE, lock_modes
from grid.memory.records import Op
from grid.protocol import Applied, ApplyOnePhase, Condition, Write
from grid.redis.layout import PartitionLayout

# How often a step reads again after another step changed what it read, before it reports a
# conflict (the SDK then retries the whole transaction with backoff).
ATTEMPTS_MAX = 16
HOOKED_OPS = (Op.INCREMENT, Op.APPEND, Op.SKETCH_ADD)


def needs_hooks(writes: Sequence[Write]) -> bool:
    return any(write.op in HOOKED_OPS for write in writes)


def _lock_field(map_name: str, key: str) -> str:
    return f"{map_name}\0{key}"


def _check_condition(write: Write, current_version: int) -> None:
    condition: Condition | None = write.condition
    if condition is None:
        return
    where, target = f"{write.map}/{write.key}", (write.map, write.key)
    if condition.kind == "if_absent" and current_version != 0:
        raise FailedPrecondition(
            f"'{where}' exists (condition if_absent)", field="key", target=target
        )
    if condition.kind == "if_exists" and current_version == 0:
        raise FailedPrecondition(
            f"'{where}' does not exist (condition if_exists)", field="key", target=target
        )
    if condition.kind == "if_version" and current_version != condition.version:
        raise FailedPrecondition(
            f"'{where}' is at version {current_version}, not {condition.version} "
            "(condition if_version)",
            field="key",
            target=target,
        )


class HookedOnePhase:
    def __init__(
        self,
        client: redis.Redis,
        layout: PartitionLayout,
        call: Callable[..., list[Any]],
        get: Callable[[str, str], bytes | None],
    ) -> None:
        self._client = client
        self._layout = layout
        self._call = call
        self._get = get

    def apply(self, event: ApplyOnePhase, hooks: ParticipantHooks) -> Applied | list[Any]:
        """The step's answer, or the script's refusal or replay to decode."""
        targets = list(
            dict.fromkeys(
                [(r.map, r.key) for r in event.reads] + [(w.map, w.key) for w in event.writes]
            )
        )
        modes = lock_modes(event.reads, event.writes, hooks.guarded_field)
        for _ in range(ATTEMPTS_MAX):
            entries, holders = self._read(targets)
            for read in event.reads:
                entry = entries[(read.map, read.key)]
                current = 0 if entry is None else version_of(entry)
                if current != read.version:
                    raise Conflict(
                        f"'{read.map}/{read.key}' changed since it was read "
                        f"(read version {read.version}, now {current})",
                        field="key",
                        target=(read.map, read.key),
                    )
            for target, mode in modes.items():
                for held in holders[target].values():
                    if held not in COMPATIBLE[mode]:
                        raise Conflict(
                            f"'{target[0]}/{target[1]}' is locked by a transaction in flight",
                            field="key",
                            target=target,
                        )
            resolved, template, removed = self._resolve(event.writes, entries, holders, hooks)
            arguments: list[Any] = [event.request_id.hex(), event.version, event.horizon]
            arguments.append(len(targets))
            for map_name, key in targets:
                entry = entries[(map_name, key)]
                raw_holders = holders[(map_name, key)]
                arguments += [
                    map_name,
                    key,
                    0 if entry is None else version_of(entry),
                    orjson.dumps(raw_holders).decode() if raw_holders else "",
                ]
            arguments.append(len(resolved))
            for op, map_name, key, value in resolved:
                arguments += [op, map_name, key, value, "", 0]
            arguments += [orjson.dumps(template), orjson.dumps(removed)]
            reply = self._call("apply_resolved", *arguments)
            if reply[0] not in (b"retry", "retry"):
                return reply
        raise Conflict("the keys changed under every attempt of the step; retry", field="key")

    def _read(
        self, targets: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], bytes | None], dict[tuple[str, str], dict[str, str]]]:
        layout = self._layout
        pipe = self._client.pipeline(transaction=True)
        for map_name, key in targets:
            pipe.hget(layout.entries(map_name), key)
            pipe.hget(layout.versions(map_name), key)
            pipe.hget(layout.prefix + "l", _lock_field(map_name, key))
        replies = pipe.execute()
        entries: dict[tuple[str, str], bytes | None] = {}
        holders: dict[tuple[str, str], dict[str, str]] = {}
        for position, target in enumerate(targets):
            value, version, raw = replies[3 * position : 3 * position + 3]
            entries[target] = None if value is None else value + int(version).to_bytes(8, "little")
            holders[target] = orjson.loads(raw) if raw else {}
        return entries, holders

    def _resolve(
        self,
        writes: Sequence[Write],
        entries: dict[tuple[str, str], bytes | None],
        holders: dict[tuple[str, str], dict[str, str]],
        hooks: ParticipantHooks,
    ) -> tuple[list[tuple[str, str, str, bytes]], list[str], list[int]]:
        """As Participant._resolve: the PUT/DELETE entries, which writes get the version ('v')
        or none ('0'), and the deletes that removed a value."""
        pending: dict[tuple[str, str], bytes | None] = {}
        resolved: list[tuple[str, str, str, bytes]] = []
        template: list[str] = []
        removed: list[int] = []
        for position, write in enumerate(writes):
            target = (write.map, write.key)
            if target in pending:
                current_value = pending[target]
                # Written earlier in this step: at the step's version, not known before the
                # script runs, so an if_version condition on it cannot hold.
                current_version = -1 if current_value is not None else 0
            else:
                stored = entries[target]
                current_value = None if stored is None else value_of(stored)
                current_version = 0 if stored is None else version_of(stored)
            _check_condition(write, current_version)
            new_value: bytes | None
            if write.op == Op.PUT:
                new_value = write.value
            elif write.op == Op.DELETE:
                new_value = None
                if current_value is not None:
                    removed.append(position)
            elif write.op == Op.SKETCH_ADD:
                new_value = hooks.sketch_apply(write.map, current_value, write.value)
            else:
                # Transactions prepared on Redis stage only puts and deletes (exclusive locks),
                # so no increment of this key is in flight: the check sees none.
                in_flight: dict[str, tuple[int, int]] | None = (
                    {} if write.op == Op.INCREMENT else None
                )
                new_value = apply_field_update(write, current_value, in_flight=in_flight)
                validator = hooks.validators(write.map)
                if validator is not None:
                    validator.validate(orjson.loads(new_value), write.key)
            pending[target] = new_value
            template.append("0" if new_value is None else "v")
            if new_value is None:
                resolved.append(("DELETE", write.map, write.key, b""))
            else:
                resolved.append(("PUT", write.map, write.key, new_value))
        return resolved, template, removed
