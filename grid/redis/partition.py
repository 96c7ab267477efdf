"""One partition kept in Redis: each participant step is one call of grid/redis/steps.lua.

Every step, whoever sends it, runs atomically on the partition's records in Redis, so any number
of coordinators share the partition. What this first version supports: one-phase writes and
transactions of PUT, DELETE and REFERENCE (conditions, read validation, lock checks, idempotent
retries by request id), the three-phase commit steps, status records by compare-and-set,
dropping a map, overwritten states kept for reads at older versions (until the horizon passes
them, forgotten at most 512 per step; no byte budget yet), the last 4,096 answers and decisions
remembered for retries. Increments, appends and sketch adds, in one-phase steps and in
transactions, run through grid/redis/hooked.py. The design they follow is
docs/architecture/shared-stores.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis

from grid.backend import (
    MapSize,
    MapState,
    ParticipantHooks,
    StagedView,
    StatusView,
    SweepStatuses,
)
from grid.entry import pack
from grid.errors import (
    Conflict,
    FailedPrecondition,
    GridError,
    ReadVersionTooOld,
    StaleVersion,
    Unavailable,
)
from grid.memory.records import Op
from grid.protocol import (
    FINAL_STATES,
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
    Read,
    ReadOutcome,
    ReadStatus,
    Reply,
    StatusReply,
    Vote,
    Write,
)
from grid.redis.hooked import HookedSteps, needs_hooks
from grid.redis.layout import (
    ABORT_RECORDS,
    APPLY_RECORDS,
    COMMIT_RECORDS,
    EXPIRING,
    LOCKS,
    META,
    OUTCOMES,
    PREPARE_RECORDS,
    STATUS_RECORDS,
    PartitionLayout,
)
from grid.redis.library import StepsLibrary
from grid.redis.replicas import ReplicaWait
from grid.redis.retrying import retried
from grid.versions import VersionStats

SUPPORTED_OPS = (Op.PUT, Op.DELETE, Op.REFERENCE)
# Steps that change nothing, so they need no replica's confirmation.
READ_ONLY_EVENTS = (ReadStatus, ReadOutcome)
# How often a step is called again with the keys it asked for (a staged transaction this
# coordinator did not prepare, kept states to forget) before it answers UNAVAILABLE.
REDECLARE_MAX = 4
REDECLARING = frozenset({"commit", "drop_map"})
# Prepared transactions whose keys this coordinator remembers for their commit, at most.
PREPARED_MAX = 10_000


def _no_sketches(map_name: str, current: bytes | None, items: bytes) -> bytes:
    raise FailedPrecondition(f"map '{map_name}' is not a sketch map here", field="map")


class UnsupportedByBackend(FailedPrecondition):
    """A write this backend cannot run yet (see the module's docstring)."""


def _reads(reads: Sequence[Read]) -> list[Any]:
    arguments: list[Any] = [len(reads)]
    for read in reads:
        arguments += [read.map, read.key, read.version]
    return arguments


def _writes(writes: Sequence[Write]) -> list[Any]:
    arguments: list[Any] = [len(writes)]
    for write in writes:
        if write.op not in SUPPORTED_OPS:
            raise UnsupportedByBackend(
                f"the redis backend does not run {write.op.name} writes yet", field="op"
            )
        condition = write.condition
        arguments += [
            write.op.name,
            write.map,
            write.key,
            write.value,
            condition.kind if condition is not None else "",
            condition.version if condition is not None else 0,
        ]
    return arguments


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _refusal(reply: list[Any]) -> GridError:
    kind, message = _text(reply[0]), _text(reply[1])
    map_name, key = _text(reply[2]), _text(reply[3])
    target = (map_name, key) if key else None
    field = "key" if key else "map"
    if kind == "stale":
        return StaleVersion(message, field=field, target=target)
    if kind == "conflict":
        return Conflict(message, field=field, target=target)
    return FailedPrecondition(message, field=field, target=target)


def _applied(encoded: bytes, replayed: bool) -> Applied:
    answer = orjson.loads(encoded)
    # cjson encodes an empty table as {}: no versions or nothing removed.
    versions = answer["versions"] if isinstance(answer["versions"], list) else []
    removed = answer["removed"] if isinstance(answer["removed"], list) else []
    return Applied(tuple(versions), replayed=replayed, removed=tuple(removed))


# Replies of steps.lua's steps (and of their Java twin on the Hazelcast member), read alike by
# both stores' dispatch.


def applied_answer(reply: list[Any]) -> Applied:
    """A one-phase step's answer; its refusal raised as the error it stands for."""
    if _text(reply[0]) != "applied":
        raise _refusal(reply)
    return _applied(reply[2], bool(reply[1]))


def hooked_answer(reply: Applied | list[Any]) -> Applied:
    """grid/redis/hooked.py's one-phase answer: decided in Python, or a step's reply."""
    return reply if isinstance(reply, Applied) else applied_answer(reply)


def vote_of(reply: list[Any]) -> Vote:
    """A prepare's vote: yes, or no with the refusal it stands for when the step names one
    (['no', message, kind, map, key])."""
    if _text(reply[0]) == "yes":
        return Vote(True)
    if len(reply) >= 5:
        refused = _refusal([reply[2], reply[1], reply[3], reply[4]])
        return Vote(False, str(refused), refused)
    return Vote(False, _text(reply[1]))


def commit_answer(reply: list[Any]) -> Reply:
    """A commit's answer: what it applied, or whether the transaction was known here."""
    if _text(reply[0]) == "applied":
        return _applied(reply[2], False)
    return Ack(known=bool(reply[1]))


def outcome_of(reply: list[Any]) -> Reply:
    """A remembered one-phase answer, replayed, or Ack(known=False)."""
    if _text(reply[0]) == "applied":
        return _applied(reply[2], True)
    return Ack(known=False)


def status_of(reply: list[Any]) -> StatusReply:
    """A status step's reply: ['status', state, participants, lease, swapped]."""
    state = _text(reply[1])
    return StatusReply(
        state or None,
        tuple(orjson.loads(reply[2]) or ()),
        int(reply[3]),
        swapped=bool(reply[4]),
    )


def dropped(reply: list[Any]) -> Ack:
    """A map dropped here; a refusal (keys locked by transactions in flight) raised."""
    if _text(reply[0]) != "ack":
        raise _refusal(reply)
    return Ack()


class RedisPartition:
    """A ``grid.backend.PartitionStore`` whose records live in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        layout: PartitionLayout,
        steps: StepsLibrary,
        replicas: ReplicaWait | None = None,
    ) -> None:
        self.index = layout.index
        # After a step that may have changed the store, before its answer: its replica has it.
        self._replicas = replicas or ReplicaWait(client, 0)
        self._client = client
        self._layout = layout
        self.layout = layout
        self._steps = steps
        self._hooked = HookedSteps(client, layout, self._call_unused, self.get, self._call)
        # txn -> the keys its commit writes, from its prepare here (another coordinator's
        # sweeper committing it learns them from the step: 'redeclare').
        self._prepared: dict[str, list[str]] = {}
        # Set by RedisBackend.open: what steps with a Python hook consult.
        self.hooks = ParticipantHooks(
            validators=lambda map_name: None,
            guarded_field=lambda map_name, field_name: False,
            sketch_apply=_no_sketches,
        )

    def _call(self, step: str, keys: list[str], *arguments: Any) -> list[Any]:
        """Runs a step of steps.lua declaring ``keys``; a step that finds it needs more (their
        names are known only in Redis) answers 'redeclare' before any write, and is called
        again with them."""
        args = [self._layout.prefix, step, *arguments]
        for _ in range(REDECLARE_MAX):
            reply: list[Any] = self._steps(keys, args)
            # Only these steps redeclare (a read's first item may be any value).
            if step not in REDECLARING or reply[0] != b"redeclare":
                return reply
            keys = [*keys, *(_text(key) for key in reply[1:])]
        raise Unavailable(f"step {step} kept asking for more keys; retry")

    @staticmethod
    def _call_unused(step: str, *arguments: Any) -> list[Any]:
        raise AssertionError("Redis steps declare their keys (call_declared)")

    def _keys(self, names: Sequence[str], maps: Sequence[str] = ()) -> list[str]:
        keys = self._layout.own(*names)
        for map_name in maps:
            keys += self._layout.map_keys(map_name)
        return keys

    def _writing(
        self, names: Sequence[str], reads: Sequence[Read], writes: Sequence[Write]
    ) -> list[str]:
        """The records a step that applies ``writes`` touches (see steps.lua install)."""
        layout = self._layout
        keys = layout.own(*names)
        for read in reads:
            keys.append(layout.map_keys(read.map)[1])
        for write in writes:
            keys += layout.map_keys(write.map)
            keys.append(layout.history(write.map, write.key))
        return keys

    @retried
    def step(self, event: Event) -> Reply:
        reply = self._step(event)
        if not isinstance(event, READ_ONLY_EVENTS):
            # Also a replayed answer: the first attempt may have timed out waiting.
            self._replicas.after_write(self._layout.prefix)
        return reply

    def _step(self, event: Event) -> Reply:
        if isinstance(event, ApplyOnePhase) and needs_hooks(event.writes):
            return hooked_answer(self._hooked.apply(event, self.hooks))
        if isinstance(event, ApplyOnePhase):
            return applied_answer(self._call("apply", *self._one_phase(event)))
        if isinstance(event, Prepare) and needs_hooks(event.writes):
            return self._hooked.prepare(event, self.hooks)
        if isinstance(event, Prepare):
            try:
                writes = _writes(event.writes)
            except UnsupportedByBackend as unsupported:
                return Vote(False, str(unsupported), unsupported)
            txn = event.txn_id.hex()
            layout = self._layout
            keys = layout.own(*PREPARE_RECORDS, f"x:{txn}")
            for read in event.reads:
                keys.append(layout.map_keys(read.map)[1])
            for write in event.writes:
                keys += layout.map_keys(write.map)[1:3]
            reply = self._call(
                "prepare",
                keys,
                txn,
                event.lease_expires_ms,
                event.status_partition,
                "1" if event.durable else "0",
                *_reads(event.reads),
                *writes,
            )
            vote = vote_of(reply)
            if vote.yes:
                self._remember_prepared(txn, event.writes)
            return vote
        if isinstance(event, PreCommit):
            txn = event.txn_id.hex()
            keys = self._layout.own(META, f"x:{txn}")
            return Ack(known=bool(self._call("pre_commit", keys, txn)[1]))
        if isinstance(event, Commit):
            txn = event.txn_id.hex()
            keys = self._layout.own(*COMMIT_RECORDS, f"x:{txn}")
            keys += self._prepared.get(txn, ())
            reply = self._call("commit", keys, txn, event.version, event.horizon)
            if _text(reply[0]) == "hooked":
                reply = self._hooked.commit(event, self.hooks)
            self._prepared.pop(txn, None)
            return commit_answer(reply)
        if isinstance(event, Abort):
            txn = event.txn_id.hex()
            self._prepared.pop(txn, None)
            keys = self._layout.own(*ABORT_RECORDS, f"x:{txn}")
            return Ack(known=bool(self._call("abort", keys, txn)[1]))
        if isinstance(event, CreateStatus):
            participants = orjson.dumps(list(event.participants))
            return status_of(
                self._call(
                    "create_status",
                    self._layout.own(*STATUS_RECORDS),
                    event.txn_id.hex(),
                    participants,
                    event.lease_expires_ms,
                    event.now_ms,
                )
            )
        if isinstance(event, CasStatus):
            return status_of(
                self._call(
                    "cas_status",
                    self._layout.own(*STATUS_RECORDS),
                    event.txn_id.hex(),
                    event.expected,
                    event.new,
                    event.now_ms,
                    event.lease_expires_ms,
                )
            )
        if isinstance(event, ReadStatus):
            raw = self._client.hget(self._layout.statuses, event.txn_id.hex())
            return self._status_from(raw, swapped=False)
        if isinstance(event, ReadOutcome):
            return outcome_of(
                self._call("read_outcome", self._layout.own(OUTCOMES), event.request_id.hex())
            )
        if isinstance(event, ForgetStatus):
            keys = self._layout.own(*STATUS_RECORDS)
            return Ack(known=bool(self._call("forget_status", keys, event.txn_id.hex())[1]))
        if isinstance(event, DropMap):
            return dropped(
                self._call("drop_map", self._keys((META, LOCKS), (event.map,)), event.map)
            )
        if isinstance(event, ForgetVersions):
            return Ack(known=bool(self._forget_versions(event.horizon)[1]))
        raise TypeError(f"unknown participant event {type(event).__name__}")

    def _remember_prepared(self, txn: str, writes: Sequence[Write]) -> None:
        """The keys the transaction's commit will write, so that it declares them at once."""
        if len(self._prepared) >= PREPARED_MAX:
            # Transactions decided by another coordinator's sweeper are never popped here.
            self._prepared.clear()
        layout = self._layout
        keys: list[str] = []
        for write in writes:
            keys += layout.map_keys(write.map)
            keys.append(layout.history(write.map, write.key))
        self._prepared[txn] = keys

    def _forget_versions(self, horizon: int) -> list[Any]:
        """Forgets the oldest kept states past the horizon, whichever keys they are of: the
        step names their keys ('redeclare'); its last call forgets those declared."""
        keys = self._layout.own(META, EXPIRING)
        for attempt in range(REDECLARE_MAX):
            final = "1" if attempt == REDECLARE_MAX - 1 else "0"
            args = [self._layout.prefix, "forget_versions", horizon, final]
            reply: list[Any] = self._steps(keys, args)
            if reply[0] != b"redeclare":
                return reply
            keys = [*keys, *(_text(key) for key in reply[1:])]
        raise AssertionError("unreachable: the final call forgets what it declared")

    @staticmethod
    def _status_from(raw: Any, *, swapped: bool) -> StatusReply:
        if raw is None:
            return StatusReply(None)
        record = orjson.loads(raw)
        return StatusReply(
            record["state"], tuple(record["participants"] or ()), record["lease"], swapped
        )

    def _one_phase(self, event: ApplyOnePhase) -> tuple[list[str], *tuple[Any, ...]]:
        """The declared keys and the arguments of a one-phase step (steps.lua apply)."""
        keys = self._writing(APPLY_RECORDS, event.reads, event.writes)
        return (
            keys,
            event.request_id.hex(),
            event.version,
            event.horizon,
            event.deadline_ms,
            *_reads(event.reads),
            *_writes(event.writes),
        )

    @retried
    def apply_then(self, event: ApplyOnePhase, command: list[Any]) -> tuple[Reply, bool] | None:
        """A one-phase step with ``command`` sent right behind it on the same connection, in
        one round trip (the commit number's release: ``RedisCommitSequence.release_command``);
        the answer, and whether ``command`` ran. None for a step with a Python hook, which
        takes several round trips of its own (the caller then applies it alone).

        The connection runs the two in order, so ``command`` runs only once the step is over,
        whatever its answer; retried, both are sent again (the step answers from memory by
        its request id). A step that found the script gone (a restarted Redis) wrote nothing,
        but the command may have run: it answers ``StaleVersion`` so the commit is applied
        again with a new number."""
        if needs_hooks(event.writes):
            return None
        keys, *arguments = self._one_phase(event)
        # redis-py's pipeline is untyped: Any keeps mypy strict about the rest.
        pipe: Any = self._client.pipeline(transaction=False)
        self._steps.pipe_call(pipe, keys, [self._layout.prefix, "apply", *arguments])
        pipe.execute_command(*command)
        reply, ran = pipe.execute(raise_on_error=False)
        if isinstance(reply, redis.exceptions.ResponseError) and self._steps.missing(reply):
            self._steps.reload()
            raise StaleVersion("the steps were loaded again into Redis; numbered again")
        if isinstance(reply, Exception):
            raise reply
        return applied_answer(reply), not isinstance(ran, Exception)

    def apply(self, event: Event) -> tuple[Reply, Callable[[], None]]:
        # Redis made the step as durable as its configuration makes writes (appendfsync).
        return self.step(event), lambda: None

    @retried
    def commit_version(self) -> int:
        return int(self._client.hget(self._layout.meta, "version") or 0)

    @retried
    def map_state(self, map_name: str) -> MapState:
        newest, changes = self._client.hmget(
            self._layout.meta, [f"map:{map_name}", f"changes:{map_name}"]
        )
        return MapState(int(changes or 0), int(newest or 0))

    @retried
    def map_size(self, map_name: str) -> MapSize:
        entries = self._layout.entries(map_name)
        pipe = self._client.pipeline(transaction=False)
        pipe.hlen(entries)
        pipe.memory_usage(entries)
        count, used = pipe.execute()
        return MapSize(int(count), int(used or 0))

    @retried
    def version_stats(self) -> VersionStats:
        return VersionStats(kept=int(self._client.zcard(self._layout.expiring)))

    def _reading(self, map_name: str, *names: str) -> list[str]:
        """A read step's keys: the partition's records named, and the map's hashes."""
        return [*self._layout.own(*names), *self._layout.map_keys(map_name)]

    @retried
    def get(self, map_name: str, key: str) -> bytes | None:
        # One step: the value and its version at one instant, wherever the slot is.
        _, value, version = self._call("read_many", self._reading(map_name, META), map_name, key)
        if value is None:
            return None
        return pack(value, int(version))

    @retried
    def get_at(self, map_name: str, key: str, version: int) -> bytes | None:
        """As grid.versions reads: the latest entry when it is old enough, else the first kept
        state that ended after the version, if it had begun by then; all read in one step."""
        keys = self._reading(map_name, META)
        keys.append(self._layout.history(map_name, key))
        value, latest, map_version, floor, states = self._call(
            "read_at", keys, map_name, key, version
        )
        if value is not None and int(latest) <= version:
            return pack(value, int(latest))
        if value is None and int(map_version or 0) <= version:
            return None
        return self._from_history(states, version, int(floor or 0))

    @staticmethod
    def _from_history(states: list[bytes], version: int, floor: int) -> bytes | None:
        if version < floor:
            raise ReadVersionTooOld(version, floor)
        if not states:
            return None
        begin, _, value = states[0].partition(b"|")
        # A state starts at its own version; before it the key was absent.
        return pack(value, int(begin)) if int(begin) <= version else None

    def _image(self, map_name: str) -> tuple[dict[Any, bytes], dict[Any, bytes], int, list[Any]]:
        """A map's values and versions here, its newest version and its keys with kept states,
        read at one instant."""
        flat_values, flat_versions, map_version, kept = self._call(
            "image", self._reading(map_name, META), map_name
        )
        values = dict(zip(flat_values[::2], flat_values[1::2], strict=True))
        versions = dict(zip(flat_versions[::2], flat_versions[1::2], strict=True))
        return values, versions, int(map_version or 0), kept

    @retried
    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        layout = self._layout
        values, versions, map_version, kept = self._image(map_name)
        if map_version <= version:
            return self._packed(values, versions)
        items: list[tuple[str, bytes]] = []
        older: list[str] = []
        for raw_key, value in values.items():
            if int(versions[raw_key]) <= version:
                items.append((_text(raw_key), pack(value, int(versions[raw_key]))))
            else:
                older.append(_text(raw_key))
        # Keys deleted after the version existed then: only their kept states know them.
        older += [_text(raw_key) for raw_key in kept if raw_key not in values]
        if older:
            keys = layout.own(META)
            keys += [layout.history(map_name, key) for key in older]
            *found, floor = self._call("states_at", keys, map_name, version, *older)
            for key, states in zip(older, found, strict=True):
                entry = self._from_history(states, version, int(floor or 0))
                if entry is not None:
                    items.append((key, entry))
        return sorted(items)

    @staticmethod
    def _packed(values: dict[Any, bytes], versions: dict[Any, bytes]) -> list[tuple[str, bytes]]:
        return sorted(
            (_text(key), pack(value, int(versions[key]))) for key, value in values.items()
        )

    @retried
    def items(self, map_name: str) -> list[tuple[str, bytes]]:
        values, versions, _, _ = self._image(map_name)
        return self._packed(values, versions)

    @retried
    def status_records(self) -> list[StatusView]:
        return self._views(sorted(self._client.hgetall(self._layout.statuses).items()))

    @retried
    def undecided_statuses(self) -> list[StatusView]:
        return self._records(self._client.smembers(self._layout.undecided_statuses))

    @retried
    def status_record(self, txn_id: bytes) -> StatusView | None:
        views = self._records([txn_id.hex()])
        return views[0] if views else None

    @retried
    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[StatusView]:
        txns = self._client.zrangebyscore(
            self._layout.decided_statuses, "-inf", updated_by_ms, start=0, num=limit
        )
        return self._records(txns)

    def index_statuses(self) -> None:
        self._call("index_statuses", self._layout.own(*STATUS_RECORDS))

    def _records(self, txns: Any) -> list[StatusView]:
        """The records of some transactions, those still there (one HMGET)."""
        names = [_text(txn) for txn in txns]
        if not names:
            return []
        found = self._client.hmget(self._layout.statuses, names)
        return self._views([(name, raw) for name, raw in zip(names, found, strict=True) if raw])

    @staticmethod
    def _views(raws: list[tuple[Any, Any]]) -> list[StatusView]:
        views = []
        for txn, raw in raws:
            record = orjson.loads(raw)
            views.append(
                StatusView(
                    txn_id=bytes.fromhex(_text(txn)),
                    state=record["state"],
                    participants=tuple(record["participants"] or ()),
                    lease_expires_ms=int(record["lease"]),
                    updated_ms=int(record["updated"]),
                )
            )
        return views

    @retried
    def sweep_statuses(
        self, staged: Sequence[bytes], updated_by_ms: int, limit: int
    ) -> SweepStatuses:
        # Two round trips: the indexes (and the staged transactions' records), then the
        # records the indexes name.
        layout = self._layout
        asked = [txn_id.hex() for txn_id in staged]
        pipe = self._client.pipeline(transaction=False)
        pipe.smembers(layout.undecided_statuses)
        pipe.zrangebyscore(layout.decided_statuses, "-inf", updated_by_ms, start=0, num=limit)
        if asked:
            pipe.hmget(layout.statuses, asked)
        undecided_txns, due_txns, *found = pipe.execute()
        undecided = self._records(undecided_txns)
        known = {record.txn_id for record in undecided}
        held = self._views(
            [(txn, raw) for txn, raw in zip(asked, found[0] if found else [], strict=True) if raw]
        )
        return SweepStatuses(
            undecided=undecided,
            staged=[
                record
                for record in held
                if record.txn_id not in known and record.state in FINAL_STATES
            ],
            due=self._records(due_txns),
        )

    @retried
    def staged_transactions(self) -> list[StagedView]:
        views = []
        for txn in sorted(self._client.smembers(self._layout.staged_set)):
            name = _text(txn)
            state, lease, status_partition = self._client.hmget(
                self._layout.staged(name), ["state", "lease", "status_partition"]
            )
            if state is None:
                continue
            views.append(
                StagedView(
                    txn_id=bytes.fromhex(name),
                    state=_text(state),
                    lease_expires_ms=int(_text(lease)),
                    status_partition=int(_text(status_partition)),
                )
            )
        return views
