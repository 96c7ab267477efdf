"""Steps that need a Python hook on Redis: read, resolve in Python, compare-and-apply.

Increments, appends and sketch adds compute their new value from the stored one with code
that cannot run in Lua (the field-update rules, the schema validators, DataSketches). So the
step reads the records it names (values, versions, lock holders, in one MULTI), resolves the
writes in Python exactly as the participant does, and sends the result to a step of
grid/redis/steps.lua that applies it only if every version and lock it was told about is still
what was read: ``apply_resolved`` (a one-phase write), ``prepare_resolved`` (checks at prepare,
then the writes staged as they came, under the lock modes computed here: I for commutative
updates, so concurrent increments do not conflict) and ``commit_resolved`` (the staged writes
resolved on the value at commit). A lost race reads again; the step is the one the participant
would have taken on the state the write lands on (docs/architecture/shared-stores.md, "One
participant, run against the store").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis

from grid.backend import ParticipantHooks
from grid.entry import value_of, version_of
from grid.errors import Conflict, FailedPrecondition, InvalidArgument
from grid.field_updates import apply_field_update, increments_in_flight
from grid.locks import COMMUTATIVE, COMPATIBLE, lock_modes
from grid.memory.records import Op
from grid.participant import check_condition
from grid.protocol import Applied, ApplyOnePhase, Commit, Prepare, Vote, Write
from grid.redis.layout import (
    APPLY_RECORDS,
    COMMIT_RECORDS,
    LOCKS,
    PREPARE_RECORDS,
    PartitionLayout,
)

# How often a step reads again after another step changed what it read, before it reports a
# conflict (the SDK then retries the whole transaction with backoff). Between attempts a step
# waits a random moment that grows with the attempts, so steps racing on one hot key (a
# counter) take turns instead of colliding again and again.
ATTEMPTS_MAX = 64
BACKOFF_S_MAX = 0.005

# Per key of a step: its entry, its lock holders (holder -> mode) and how many values reference it.
KeyRecords = tuple[
    dict[tuple[str, str], bytes | None],
    dict[tuple[str, str], dict[str, str]],
    dict[tuple[str, str], int],
]


def _backoff(attempt: int) -> None:
    if attempt:
        time.sleep(random.uniform(0, min(BACKOFF_S_MAX, 0.0002 * attempt)))


HOOKED_OPS = (Op.INCREMENT, Op.APPEND, Op.SKETCH_ADD)


def needs_hooks(writes: Sequence[Write]) -> bool:
    return any(write.op in HOOKED_OPS for write in writes)


def _lock_field(map_name: str, key: str) -> str:
    return f"{map_name}\0{key}"


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def _kind(reply: list[Any]) -> str:
    return _text(reply[0])


def targets_of(reads: Sequence[Any], writes: Sequence[Write]) -> list[tuple[str, str]]:
    return list(
        dict.fromkeys([(read.map, read.key) for read in reads] + [(w.map, w.key) for w in writes])
    )


def _holders_text(holders: dict[str, str]) -> str:
    return orjson.dumps(holders).decode() if holders else ""


def check_reads(
    reads: Sequence[Any],
    modes: dict[tuple[str, str], str],
    entries: dict[tuple[str, str], bytes | None],
    holders: dict[tuple[str, str], dict[str, str]],
    txn: str,
) -> None:
    """As the participant: every read still current, every lock free for this transaction."""
    for read in reads:
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
        for holder, held in holders[target].items():
            if holder != txn and held not in COMPATIBLE[mode]:
                raise Conflict(
                    f"'{target[0]}/{target[1]}' is locked by a transaction in flight",
                    field="key",
                    target=target,
                )


def _expected(
    targets: list[tuple[str, str]],
    entries: dict[tuple[str, str], bytes | None],
    holders: dict[tuple[str, str], dict[str, str]],
    counts: dict[tuple[str, str], int],
) -> list[Any]:
    arguments: list[Any] = [len(targets)]
    for map_name, key in targets:
        entry = entries[(map_name, key)]
        version = 0 if entry is None else version_of(entry)
        target = (map_name, key)
        arguments += [map_name, key, version, _holders_text(holders[target]), counts[target]]
    return arguments


def _resolved(resolved: list[tuple[str, str, str, bytes]]) -> list[Any]:
    arguments: list[Any] = [len(resolved)]
    for op, map_name, key, value in resolved:
        arguments += [op, map_name, key, value, "", 0]
    return arguments


def _writes_as_given(writes: Sequence[Write]) -> list[Any]:
    """Staged as they came (resolved again at commit); conditions were checked here."""
    arguments: list[Any] = [len(writes)]
    for write in writes:
        arguments += [write.op.name, write.map, write.key, write.value, "", 0]
    return arguments


class HookedResolution:
    """The store-independent half of a step with a Python hook: resolving writes on the records
    read (conditions, references, increments with the increments in flight, appends, sketch
    adds, schemas), as the memory participant does. A store subclasses it with its two readers;
    grid/ignite/steps.py resolves inside its own transaction, HookedSteps below adds Redis's
    compare-and-apply steps (which the Hazelcast member runs too)."""

    def staged_writes(self, txn: str) -> list[Write] | None:
        """The writes a transaction staged on this partition, None when none are staged."""
        raise NotImplementedError

    def read_records(self, targets: list[tuple[str, str]]) -> KeyRecords:
        """Per key: its entry, its lock holders and how many values reference it, read as one
        instant of the partition."""
        raise NotImplementedError

    def _in_flight(
        self, target: tuple[str, str], holders: dict[str, str]
    ) -> dict[str, tuple[int, int]]:
        """The increments of the key by transactions prepared here (they hold its I lock)."""
        writes: list[Write] = []
        for txn, mode in holders.items():
            if mode != COMMUTATIVE:
                continue
            staged = self.staged_writes(txn) or []
            writes += [write for write in staged if (write.map, write.key) == target]
        return increments_in_flight(writes)

    def resolve(
        self,
        writes: Sequence[Write],
        entries: dict[tuple[str, str], bytes | None],
        holders: dict[tuple[str, str], dict[str, str]],
        counts: dict[tuple[str, str], int],
        hooks: ParticipantHooks,
        *,
        check: bool,
    ) -> tuple[list[tuple[str, str, str, bytes]], list[str], list[int]]:
        """As Participant._resolve: the PUT/DELETE entries, which writes get the version ('v')
        or none ('0'), and the deletes that removed a value."""
        pending: dict[tuple[str, str], bytes | None] = {}
        references: dict[tuple[str, str], int] = {}
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
            if check:
                check_condition(write, current_version)
            new_value: bytes | None
            if write.op == Op.REFERENCE:
                change = int(write.value)
                if check and change > 0 and current_value is None:
                    raise FailedPrecondition(
                        f"referenced key '{write.map}/{write.key}' does not exist",
                        field="key",
                        target=target,
                    )
                references[target] = references.get(target, 0) + change
                # The count changes, not the value: the answer is the key's version (the step's
                # own when an earlier write of this step made it).
                template.append("v" if current_version == -1 else str(current_version))
                resolved.append(("REFERENCE", write.map, write.key, str(change).encode()))
                continue
            if write.op == Op.PUT:
                new_value = write.value
            elif write.op == Op.DELETE:
                new_value = None
                count = counts.get(target, 0) + references.get(target, 0)
                if check and count > 0 and current_value is not None:
                    raise FailedPrecondition(
                        f"'{write.map}/{write.key}' is referenced by {count} value(s); "
                        "change or delete them first",
                        field="key",
                        target=target,
                    )
                if current_value is not None:
                    removed.append(position)
            elif write.op == Op.SKETCH_ADD:
                new_value = hooks.sketch_apply(write.map, current_value, write.value)
            else:
                in_flight = (
                    self._in_flight(target, holders[target])
                    if check and write.op == Op.INCREMENT
                    else None
                )
                new_value = apply_field_update(write, current_value, in_flight=in_flight)
                validator = hooks.validators(write.map) if check else None
                if validator is not None:
                    validator.validate(orjson.loads(new_value), write.key)
            pending[target] = new_value
            template.append("0" if new_value is None else "v")
            if new_value is None:
                resolved.append(("DELETE", write.map, write.key, b""))
            else:
                resolved.append(("PUT", write.map, write.key, new_value))
        return resolved, template, removed


class HookedSteps(HookedResolution):
    """Read, resolve, compare-and-apply (the module's docstring), with Redis's readers; a store
    whose steps are steps.lua's (the Hazelcast member's twin) overrides the readers and gives
    no client or layout: its steps then declare no keys."""

    def __init__(
        self,
        client: redis.Redis | None,
        layout: PartitionLayout | None,
        call: Callable[..., list[Any]],
        get: Callable[[str, str], bytes | None],
        call_declared: Callable[..., list[Any]] | None = None,
    ) -> None:
        self._client = client
        self._layout = layout
        self._call = call
        self._get = get
        # Redis: call_declared(step, keys, *arguments) declares the keys the step touches
        # (grid/redis/layout.py); other stores take call(step, *arguments).
        self._call_declared = call_declared

    def _send(self, step: str, keys: list[str], *arguments: Any) -> list[Any]:
        if self._call_declared is None:
            return self._call(step, *arguments)
        return self._call_declared(step, keys, *arguments)

    def _applying_keys(self, base: Sequence[str], targets: list[tuple[str, str]]) -> list[str]:
        """What a resolved apply or commit touches: the partition's records named in ``base``,
        and each target's version, reference, lock and kept-state records."""
        layout = self._layout
        if layout is None:
            return []
        keys = layout.own(*base)
        for map_name, key in targets:
            keys += layout.map_keys(map_name)
            keys.append(layout.history(map_name, key))
        return keys

    def apply(self, event: ApplyOnePhase, hooks: ParticipantHooks) -> Applied | list[Any]:
        """The step's answer, or the script's refusal or replay to decode."""
        targets = targets_of(event.reads, event.writes)
        modes = lock_modes(event.reads, event.writes, hooks.guarded_field)
        for attempt in range(ATTEMPTS_MAX):
            _backoff(attempt)
            entries, holders, counts = self.read_records(targets)
            try:
                check_reads(event.reads, modes, entries, holders, "")
                resolved, template, removed = self.resolve(
                    event.writes, entries, holders, counts, hooks, check=True
                )
            except (Conflict, FailedPrecondition):
                # A retried request (its coordinator died after the step, the SDK sent it
                # again) finds its own writes in the way: its answer is remembered, and
                # refusing it told the client "conflict" about a commit that happened.
                replayed = self._remembered(event, targets)
                if replayed is not None:
                    return replayed
                raise
            arguments: list[Any] = [
                event.request_id.hex(),
                event.version,
                event.horizon,
                event.deadline_ms,
            ]
            arguments += _expected(targets, entries, holders, counts)
            arguments += _resolved(resolved)
            arguments += [orjson.dumps(template), orjson.dumps(removed)]
            keys = self._applying_keys(APPLY_RECORDS, targets)
            reply = self._send("apply_resolved", keys, *arguments)
            if _kind(reply) != "retry":
                return reply
        raise Conflict("the keys changed under every attempt of the step; retry", field="key")

    def _remembered(self, event: ApplyOnePhase, targets: list[tuple[str, str]]) -> list[Any] | None:
        """The remembered answer of an applied request, None when it was not applied: the
        compare-and-apply step answers a remembered request before anything else, and is sent
        here with an expectation no key meets (version -1) and nothing to write, so it
        changes nothing whatever it finds."""
        if not event.request_id or not targets:
            return None
        map_name, key = targets[0]
        arguments: list[Any] = [
            event.request_id.hex(),
            event.version,
            event.horizon,
            event.deadline_ms,
            1,
            map_name,
            key,
            -1,
            "",
            0,
        ]
        arguments += _resolved([])
        arguments += [orjson.dumps({}), orjson.dumps([])]
        reply = self._send(
            "apply_resolved", self._applying_keys(APPLY_RECORDS, targets), *arguments
        )
        return reply if _kind(reply) == "applied" else None

    def prepare(self, event: Prepare, hooks: ParticipantHooks) -> Vote:
        targets = targets_of(event.reads, event.writes)
        modes = lock_modes(event.reads, event.writes, hooks.guarded_field)
        txn = event.txn_id.hex()
        layout = self._layout
        for attempt in range(ATTEMPTS_MAX):
            _backoff(attempt)
            entries, holders, counts = self.read_records(targets)
            try:
                check_reads(event.reads, modes, entries, holders, txn)
                # Resolving checks conditions, types and schemas against current state; the
                # locks keep that state until the decision.
                self.resolve(event.writes, entries, holders, counts, hooks, check=True)
            except (Conflict, FailedPrecondition, InvalidArgument) as error:
                return Vote(False, str(error), error)
            arguments: list[Any] = [
                txn,
                event.lease_expires_ms,
                event.status_partition,
                "1" if event.durable else "0",
                len(targets),
            ]
            for map_name, key in targets:
                entry = entries[(map_name, key)]
                arguments += [
                    map_name,
                    key,
                    0 if entry is None else version_of(entry),
                    _holders_text(holders[(map_name, key)]),
                    counts[(map_name, key)],
                    modes[(map_name, key)],
                ]
            arguments += _writes_as_given(event.writes)
            keys: list[str] = []
            if layout is not None:
                keys = layout.own(*PREPARE_RECORDS, f"x:{txn}")
                for map_name, _ in targets:
                    keys += layout.map_keys(map_name)[1:3]
            reply = self._send("prepare_resolved", keys, *arguments)
            kind = _kind(reply)
            if kind == "yes":
                return Vote(True)
            if kind == "no":
                return Vote(False, reply[1].decode() if isinstance(reply[1], bytes) else reply[1])
        return Vote(False, "the keys changed under every attempt of the prepare")

    def commit(self, event: Commit, hooks: ParticipantHooks) -> list[Any]:
        """Resolves a staged transaction's writes on the values at commit; the script's reply."""
        txn = event.txn_id.hex()
        attempt = 0
        while True:
            _backoff(min(attempt, ATTEMPTS_MAX))
            attempt += 1
            staged = self.staged_writes(txn)
            if staged is None:
                return [b"ack", 0]
            targets = targets_of((), staged)
            entries, holders, counts = self.read_records(targets)
            resolved, template, removed = self.resolve(
                staged, entries, holders, counts, hooks, check=False
            )
            arguments: list[Any] = [txn, event.version, event.horizon, len(targets)]
            for map_name, key in targets:
                entry = entries[(map_name, key)]
                arguments += [map_name, key, 0 if entry is None else version_of(entry)]
            arguments += _resolved(resolved)
            arguments += [orjson.dumps(template), orjson.dumps(removed)]
            keys = self._applying_keys((*COMMIT_RECORDS, f"x:{txn}"), targets)
            reply = self._send("commit_resolved", keys, *arguments)
            # A commit cannot be refused (prepare checked everything under the locks): another
            # commutative update landed first, so resolve again on the newer value.
            if _kind(reply) != "retry":
                return reply

    def staged_writes(self, txn: str) -> list[Write] | None:
        assert self._client is not None and self._layout is not None, "Redis's reader"
        staged = {
            _text(field): value
            for field, value in self._client.hgetall(self._layout.staged(txn)).items()
        }
        if "n" not in staged:
            return None
        return [
            Write(
                Op[_text(staged[f"op.{index}"])],
                _text(staged[f"map.{index}"]),
                _text(staged[f"key.{index}"]),
                _bytes(staged[f"value.{index}"]),
            )
            for index in range(1, int(staged["n"]) + 1)
        ]

    def read_records(self, targets: list[tuple[str, str]]) -> KeyRecords:
        """Per key: its entry, its lock holders and how many values reference it (one step:
        one instant of the partition)."""
        layout = self._layout
        assert layout is not None, "Redis's reader"
        keys = layout.own(LOCKS)
        arguments: list[Any] = []
        for map_name, key in targets:
            keys += layout.map_keys(map_name)[:3]
            arguments += [map_name, key]
        replies = self._send("read_targets", keys, *arguments)
        entries: dict[tuple[str, str], bytes | None] = {}
        holders: dict[tuple[str, str], dict[str, str]] = {}
        counts: dict[tuple[str, str], int] = {}
        for position, target in enumerate(targets):
            value, version, raw, count = replies[4 * position : 4 * position + 4]
            entries[target] = None if value is None else value + int(version).to_bytes(8, "little")
            holders[target] = orjson.loads(raw) if raw else {}
            counts[target] = int(count or 0)
        return entries, holders, counts
