"""Shoal's participant steps over a partition's records in Ignite (grid/ignite/records.py),
run by the coordinator inside one pessimistic transaction: the Python twin of
grid/redis/steps.lua. Ignite runs no code of ours, so every step reads its records, decides
here and writes; the decisions about keys (read validation, locks, conditions, references,
increments, appends, sketch adds, schemas) are grid/redis/hooked.py's, the same code the
Redis and Hazelcast backends run for steps with a Python hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from grid.backend import ParticipantHooks
from grid.entry import value_of, version_of
from grid.errors import Conflict, FailedPrecondition, InvalidArgument, StaleVersion
from grid.ignite.records import PartitionRecords
from grid.ignite.sequence import lease_key
from grid.ignite.statuses import status_step
from grid.locks import lock_modes
from grid.memory.records import Op
from grid.protocol import (
    Abort,
    Ack,
    Applied,
    ApplyOnePhase,
    CasStatus,
    Commit,
    CreateStatus,
    DropMap,
    Event,
    ForgetStatus,
    ForgetVersions,
    PreCommit,
    Prepare,
    ReadOutcome,
    ReadStatus,
    Reply,
    Vote,
    Write,
)
from grid.redis.hooked import HookedResolution, KeyRecords, check_reads, targets_of

# How many answers and decisions a partition remembers for retries, as the memory participant.
REMEMBERED_MAX = 4096
# Kept states forgotten per step at most, so that one step stays short.
FORGET_MAX = 512


def lock_field(map_name: str, key: str) -> str:
    return f"{map_name}\0{key}"


class _Resolver(HookedResolution):
    """grid/redis/hooked.py's resolution, reading through this step's records."""

    def __init__(self, records: PartitionRecords) -> None:
        self._records = records

    def staged_writes(self, txn: str) -> list[Write] | None:
        staged = self._records.get_json(f"x|{txn}")
        return None if staged is None else _writes_of(staged)

    def read_records(self, targets: list[tuple[str, str]]) -> KeyRecords:
        records = self._records
        entries = records.entries(targets)
        locks = records.get_json("l") or {}
        records.get_many([f"r|{map_name}|{key}" for map_name, key in targets])
        holders = {target: dict(locks.get(lock_field(*target), {})) for target in targets}
        counts = {target: int(records.get(f"r|{target[0]}|{target[1]}") or 0) for target in targets}
        return entries, holders, counts

    def resolve_read(
        self, writes: Sequence[Write], hooks: ParticipantHooks, *, check: bool
    ) -> tuple[list[tuple[str, str, str, bytes]], list[str], list[int]]:
        """``resolve`` on the records the writes name, read here."""
        entries, holders, counts = self.read_records(targets_of((), writes))
        return self.resolve(writes, entries, holders, counts, hooks, check=check)


def _writes_of(staged: dict[str, Any]) -> list[Write]:
    return [
        Write(Op[op], map_name, key, bytes.fromhex(value))
        for op, map_name, key, value in staged["writes"]
    ]


class IgniteSteps:
    """Runs one participant event on a partition's records (inside the caller's transaction)."""

    def __init__(self, records: PartitionRecords, hooks: ParticipantHooks) -> None:
        self.records = records
        self.meta = records.meta
        self.hooks = hooks
        self.resolver = _Resolver(records)

    def run(self, event: Event) -> Reply:
        if isinstance(event, ApplyOnePhase):
            return self.apply(event)
        if isinstance(event, Prepare):
            return self.prepare(event)
        if isinstance(event, PreCommit):
            return self.pre_commit(event.txn_id.hex())
        if isinstance(event, Commit):
            return self.commit(event)
        if isinstance(event, Abort):
            return self.abort(event.txn_id.hex())
        if isinstance(event, CreateStatus | CasStatus | ReadStatus | ForgetStatus):
            return self.status(event)
        if isinstance(event, ReadOutcome):
            answer = self.records.get(f"o|{event.request_id.hex()}")
            return Ack(known=False) if answer is None else _applied(answer, replayed=True)
        if isinstance(event, DropMap):
            return self.drop_map(event.map)
        if isinstance(event, ForgetVersions):
            self.forget(event.horizon)
            return Ack()
        raise TypeError(f"unknown participant event {type(event).__name__}")

    # Remembering --------------------------------------------------------------------

    def _remember(self, kind: str, name: str, value: str) -> None:
        """Keeps ``value`` under ``<kind>|<name>`` in a ring of REMEMBERED_MAX slots, forgetting
        what the slot held before (the oldest)."""
        records = self.records
        if records.get(f"{kind}|{name}") is not None:
            records.set(f"{kind}|{name}", value)
            return
        counter = "outcomes" if kind == "o" else "decided"
        slot = self.meta[counter] % REMEMBERED_MAX
        self.meta[counter] += 1
        previous = records.get(f"{kind}s|{slot}")
        if previous is not None:
            records.delete(f"{kind}|{previous}")
        records.set(f"{kind}s|{slot}", name)
        records.set(f"{kind}|{name}", value)

    def _next_lsn(self) -> int:
        self.meta["lsn"] += 1
        return int(self.meta["lsn"])

    # Versions -------------------------------------------------------------------------

    def _keep(self, map_name: str, key: str, old: bytes | None, end: int) -> None:
        if old is None:
            return
        records = self.records
        name = f"h|{map_name}|{key}"
        states = records.get_json(name) or []
        states.append([end, version_of(old), value_of(old).hex()])
        records.set_json(name, states)
        kept = records.get_json(f"hk|{map_name}") or []
        if key not in kept:
            records.set_json(f"hk|{map_name}", [*kept, key])
        expiring = records.get_json("hx") or []
        expiring.append([end, map_name, key])
        records.set_json("hx", expiring)

    def forget(self, horizon: int) -> None:
        """Drops kept states that ended at or before the horizon, at most FORGET_MAX."""
        if horizon <= 0:
            return
        records = self.records
        expiring = sorted(records.get_json("hx") or [])
        due = [item for item in expiring[:FORGET_MAX] if item[0] <= horizon]
        if not due:
            return
        for end, map_name, key in due:
            name = f"h|{map_name}|{key}"
            states = [state for state in records.get_json(name) or [] if state[0] > end]
            if states:
                records.set_json(name, states)
            else:
                records.delete(name)
                kept = [k for k in records.get_json(f"hk|{map_name}") or [] if k != key]
                records.set_json(f"hk|{map_name}", kept)
            self.meta["floor"] = max(self.meta["floor"], end)
        records.set_json("hx", expiring[len(due) :])

    def _map_changed(self, map_name: str, version: int) -> None:
        # Commits from several coordinators reach a partition out of number order, so the map's
        # version keeps the newest; its change count moves on every change.
        maps, changes = self.meta["maps"], self.meta["changes"]
        maps[map_name] = max(int(maps.get(map_name, 0)), version)
        changes[map_name] = int(changes.get(map_name, 0)) + 1

    def _refuse_if_stale(self, writes: Sequence[Write], version: int) -> None:
        """A one-phase step numbered older than a key's newest version (its value's or the
        end of its last kept state): another coordinator's later commit reached the key
        first, so the coordinator must take a new number (grid.errors.StaleVersion)."""
        if not version:
            return
        targets = [(w.map, w.key) for w in writes if w.op != Op.REFERENCE]
        entries = self.records.entries(targets)
        for map_name, key in targets:
            entry = entries[(map_name, key)]
            newest = 0 if entry is None else version_of(entry)
            states = self.records.get_json(f"h|{map_name}|{key}") or []
            newest = max([newest, *(state[0] for state in states)])
            if newest > version:
                raise StaleVersion(
                    f"'{map_name}/{key}' has a newer version than commit {version}",
                    field="key",
                    target=(map_name, key),
                )

    def _install(self, resolved: list[tuple[str, str, str, bytes]], version: int) -> None:
        records = self.records
        for op, map_name, key, value in resolved:
            if op == "REFERENCE":
                name = f"r|{map_name}|{key}"
                count = int(records.get(name) or 0) + int(value)
                if count <= 0:
                    records.delete(name)
                else:
                    records.set(name, count)
                continue
            old = records.entries([(map_name, key)])[(map_name, key)]
            self._keep(map_name, key, old, version)
            self._map_changed(map_name, version)
            records.set_entry(map_name, key, None if op == "DELETE" else value, version)
        self.meta["version"] = max(self.meta["version"], version)

    # Steps ----------------------------------------------------------------------------

    def _prefetch(self, names: list[str], writes: Sequence[Write] = ()) -> None:
        """Reads (and locks) in one round trip the records a step will look at: each read is a
        round trip of its own otherwise, and a step made a dozen."""
        slots = [f"os|{self.meta['outcomes'] % REMEMBERED_MAX}"]
        slots.append(f"ds|{self.meta['decided'] % REMEMBERED_MAX}")
        per_key = []
        for write in writes:
            per_key += [f"r|{write.map}|{write.key}", f"h|{write.map}|{write.key}"]
            per_key.append(f"hk|{write.map}")
        self.records.get_many(["l", "hx", *slots, *names, *per_key])

    def apply(self, event: ApplyOnePhase) -> Reply:
        request = event.request_id.hex()
        self._prefetch([f"o|{request}"] if request else [], event.writes)
        if request:
            answer = self.records.get(f"o|{request}")
            if answer is not None:
                return _applied(answer, replayed=True)
        targets = targets_of(event.reads, event.writes)
        entries, holders, _ = self.resolver.read_records(targets)
        modes = lock_modes(event.reads, event.writes, self.hooks.guarded_field)
        check_reads(event.reads, modes, entries, holders, "")
        if event.deadline_ms and not self.records.number_held(
            lease_key(self.records.namespace, event.version)
        ):
            # Past its lease (by the cluster's clock) another coordinator may release the
            # number, so the step must not apply with it: a new number, from the coordinator.
            raise StaleVersion("the commit number outlived its lease", field="version")
        self._refuse_if_stale(event.writes, event.version)
        resolved, template, removed = self.resolver.resolve_read(
            event.writes, self.hooks, check=True
        )
        lsn = self._next_lsn()
        version = event.version or lsn
        self._install(resolved, version)
        answer = _answer(template, version, removed)
        if request:
            self._remember("o", request, answer)
        self.forget(event.horizon)
        return _applied(answer, replayed=False)

    def prepare(self, event: Prepare) -> Vote:
        txn = event.txn_id.hex()
        records = self.records
        self._prefetch(["s", f"d|{txn}"], event.writes)
        if txn in (records.get_json("s") or []):
            return Vote(True)
        decided = records.get(f"d|{txn}")
        if decided is not None:
            return Vote(False, f"the transaction was already {decided} here")
        targets = targets_of(event.reads, event.writes)
        modes = lock_modes(event.reads, event.writes, self.hooks.guarded_field)
        try:
            entries, holders, _ = self.resolver.read_records(targets)
            check_reads(event.reads, modes, entries, holders, txn)
            # Resolving checks conditions, types and schemas; the locks keep that state.
            self.resolver.resolve_read(event.writes, self.hooks, check=True)
        except (Conflict, FailedPrecondition, InvalidArgument) as error:
            return Vote(False, str(error), error)
        locks = records.get_json("l") or {}
        for (map_name, key), mode in modes.items():
            locks.setdefault(lock_field(map_name, key), {})[txn] = mode
        records.set_json("l", locks)
        staged = {
            "state": "prepared",
            "lease": event.lease_expires_ms,
            "status_partition": event.status_partition,
            "durable": event.durable,
            "locks": [lock_field(*target) for target in modes],
            "writes": [[w.op.name, w.map, w.key, w.value.hex()] for w in event.writes],
        }
        records.set_json(f"x|{txn}", staged)
        records.set_json("s", sorted({*(records.get_json("s") or []), txn}))
        if event.durable:
            self._next_lsn()
        return Vote(True)

    def pre_commit(self, txn: str) -> Ack:
        staged = self.records.get_json(f"x|{txn}")
        if staged is None:
            return Ack(known=False)
        if staged["state"] != "pre_committed":
            staged["state"] = "pre_committed"
            self.records.set_json(f"x|{txn}", staged)
            self._next_lsn()
        return Ack()

    def _release(self, txn: str, staged: dict[str, Any]) -> None:
        records = self.records
        locks = records.get_json("l") or {}
        for field in staged["locks"]:
            holders = locks.get(field, {})
            holders.pop(txn, None)
            if not holders:
                locks.pop(field, None)
        records.set_json("l", locks)
        records.delete(f"x|{txn}")
        records.set_json("s", [other for other in records.get_json("s") or [] if other != txn])

    def commit(self, event: Commit) -> Reply:
        txn = event.txn_id.hex()
        self._prefetch([f"x|{txn}", "s", f"d|{txn}", f"o|{txn}"])
        staged = self.records.get_json(f"x|{txn}")
        if staged is None:
            return Ack(known=False)
        writes = _writes_of(staged)
        # The writes' own records (reference counts, kept states) in one more round trip.
        self._prefetch([], writes)
        resolved, template, removed = self.resolver.resolve_read(writes, self.hooks, check=False)
        self._release(txn, staged)
        self._remember("d", txn, "committed")
        if not staged["durable"]:
            return Ack()
        lsn = self._next_lsn()
        version = event.version or lsn
        self._install(resolved, version)
        answer = _answer(template, version, removed)
        self._remember("o", txn, answer)
        self.forget(event.horizon)
        return _applied(answer, replayed=False)

    def abort(self, txn: str) -> Ack:
        staged = self.records.get_json(f"x|{txn}")
        if staged is None:
            # An abort that overtook its prepare: remember it, so the prepare votes no.
            if self.records.get(f"d|{txn}") is None:
                self._remember("d", txn, "aborted")
            return Ack(known=False)
        self._release(txn, staged)
        self._remember("d", txn, "aborted")
        if staged["durable"]:
            self._next_lsn()
        return Ack()

    def status(self, event: CreateStatus | CasStatus | ReadStatus | ForgetStatus) -> Reply:
        # The records and their sweep indexes: grid/ignite/statuses.py.
        return status_step(self.records, event, self._next_lsn)

    def drop_map(self, map_name: str) -> Ack:
        records = self.records
        locks = records.get_json("l") or {}
        if any(field.startswith(map_name + "\0") for field in locks):
            raise FailedPrecondition(
                f"map '{map_name}' has keys locked by transactions in flight", field="map"
            )
        records.drop_entries(map_name)
        for key in records.get_json(f"hk|{map_name}") or []:
            records.delete(f"h|{map_name}|{key}")
        records.delete(f"hk|{map_name}")
        records.set_json(
            "hx", [item for item in records.get_json("hx") or [] if item[1] != map_name]
        )
        self.meta["maps"].pop(map_name, None)
        # Counted on, never reset: a map made again under the name has no image cached under it.
        changes = self.meta.setdefault("changes", {})
        changes[map_name] = int(changes.get(map_name, 0)) + 1
        self._next_lsn()
        return Ack()


def _answer(template: list[str], version: int, removed: list[int]) -> str:
    versions = [version if kind == "v" else int(kind) for kind in template]
    return orjson.dumps({"versions": versions, "removed": removed}).decode()


def _applied(answer: Any, *, replayed: bool) -> Applied:
    decoded = orjson.loads(answer)
    return Applied(tuple(decoded["versions"]), replayed=replayed, removed=tuple(decoded["removed"]))
