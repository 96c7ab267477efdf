"""Redis alternatives for a partition's participant step: the step's logic in a Lua script
(EVALSHA) or a Redis Function (FCALL); the logic in Python between a read and a Lua
compare-and-set of the key's record (``cas``); optimistic WATCH/MULTI/EXEC; and the cost of a
shared commit counter (``lua+counter``: INCR, then the script).

Every key of partition n carries the hash tag ``{pn}`` so that one partition is one Cluster slot
and a step may touch all its keys: ``{pn}:e:<key>`` (a hash: version ``v``, document ``d``),
``{pn}:l:<key>`` (the lock: the holder's transaction id), ``{pn}:s:<txn>:<key>`` (the staged
write: ``state``, ``value``) and ``{pn}:t:<txn>`` (a status record).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.client import Pipeline

from loadtests.bench.steps.protocol import (
    RecordSteps,
    one_phase,
    three_phase,
    three_phase_concurrent,
)
from loadtests.bench.steps.workload import Commit

# The step bodies, written once; the Lua variant runs them as scripts, the Function variant
# registers the same text as a library (KEYS/ARGV become the function's arguments).
ONE_PHASE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local version = tonumber(ARGV[2]) or (tonumber(redis.call('HGET', KEYS[1], 'v') or '0') + 1)
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[1])
return 1
"""
PREPARE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'prepared', 'value', ARGV[2])
return 1
"""
PRECOMMIT = """
if redis.call('HGET', KEYS[1], 'state') == 'prepared' then
  redis.call('HSET', KEYS[1], 'state', 'pre_committed')
end
return 1
"""
COMMIT = """
local value = redis.call('HGET', KEYS[3], 'value')
if not value then return 0 end
local version = tonumber(ARGV[2]) or (tonumber(redis.call('HGET', KEYS[1], 'v') or '0') + 1)
redis.call('HSET', KEYS[1], 'v', version, 'd', value)
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[3])
return 1
"""
ABORT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
return 1
"""
# A compare-and-set of one string: what the "cas" variant's Python steps swap records with.
SWAP = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
STATUS = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
BODIES = {
    "one_phase": ONE_PHASE,
    "prepare": PREPARE,
    "precommit": PRECOMMIT,
    "commit": COMMIT,
    "abort": ABORT,
    "status": STATUS,
}
LIBRARY = "shoalbench"
COUNTER_KEY = "shoal:commit-seq"


def library_source() -> str:
    parts = [f"#!lua name={LIBRARY}"]
    for name, body in BODIES.items():
        text = body.replace("KEYS[", "keys[").replace("ARGV[", "args[")
        parts.append(
            f"redis.register_function('{LIBRARY}_{name}', function(keys, args)\n{text}\nend)"
        )
    return "\n".join(parts)


def entry_key(partition: int, key: str) -> str:
    return f"{{p{partition}}}:e:{key}"


def lock_key(partition: int, key: str) -> str:
    return f"{{p{partition}}}:l:{key}"


def staged_key(partition: int, key: str, txn: str) -> str:
    return f"{{p{partition}}}:s:{txn}:{key}"


def status_key(partition: int, txn: str) -> str:
    return f"{{p{partition}}}:t:{txn}"


class ScriptedSteps:
    """Each step one server-side call: EVALSHA of a script, or FCALL of a function.

    With ``counter`` the commit version comes from one shared counter (INCR, its own round trip
    and its own Cluster slot) instead of the key's version plus one.
    """

    def __init__(self, client: redis.Redis, use_functions: bool, counter: bool) -> None:
        self.retries = 0
        self.counter = counter
        self.client = client
        self.calls: dict[str, Callable[[list[str], list[Any]], Any]] = {}
        for name, body in BODIES.items():
            if use_functions:
                self.calls[name] = self._function(f"{LIBRARY}_{name}")
            else:
                script = client.register_script(body)
                self.calls[name] = self._script(script)

    def _function(self, name: str) -> Callable[[list[str], list[Any]], Any]:
        def call(keys: list[str], args: list[Any]) -> Any:
            return self.client.fcall(name, len(keys), *keys, *args)

        return call

    @staticmethod
    def _script(script: Any) -> Callable[[list[str], list[Any]], Any]:
        def call(keys: list[str], args: list[Any]) -> Any:
            return script(keys=keys, args=args)

        return call

    def _version(self) -> str:
        return str(self.client.incr(COUNTER_KEY)) if self.counter else ""

    def one_phase(self, partition: int, key: str, value: bytes) -> bool:
        keys = [entry_key(partition, key), lock_key(partition, key)]
        return bool(self.calls["one_phase"](keys, [value, self._version()]))

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool:
        keys = [lock_key(partition, key), staged_key(partition, key, txn)]
        return bool(self.calls["prepare"](keys, [txn, value]))

    def precommit(self, partition: int, key: str, txn: str) -> None:
        self.calls["precommit"]([staged_key(partition, key, txn)], [])

    def commit(self, partition: int, key: str, txn: str) -> None:
        entry, lock = entry_key(partition, key), lock_key(partition, key)
        self.calls["commit"]([entry, lock, staged_key(partition, key, txn)], [txn, self._version()])

    def abort(self, partition: int, key: str, txn: str) -> None:
        self.calls["abort"]([lock_key(partition, key), staged_key(partition, key, txn)], [txn])

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        return bool(self.calls["status"]([status_key(partition, txn)], [expected, new]))


def _text(raw: bytes | str | None) -> str:
    return raw.decode() if isinstance(raw, bytes) else (raw or "")


Queue = Callable[[Pipeline], Any]
"""What a WATCHed step queues between MULTI and EXEC, decided from what it read."""


class PipelinedSteps(ScriptedSteps):
    """The Lua steps, with each 3PC phase sent to all partitions in one pipeline (EVALSHA of
    scripts loaded beforehand, so the pipeline needs no SCRIPT EXISTS of its own)."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client, use_functions=False, counter=False)
        self.shas = {name: client.script_load(body) for name, body in BODIES.items()}

    def _pipelined(self, name: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.shas[name], len(keys), *keys, *args)
        return list(pipe.execute())

    def prepare_all(self, keys: Sequence[tuple[int, str]], txn: str, value: bytes) -> list[bool]:
        calls = [
            ([lock_key(partition, key), staged_key(partition, key, txn)], [txn, value])
            for partition, key in keys
        ]
        return [bool(reply) for reply in self._pipelined("prepare", calls)]

    def precommit_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None:
        calls: list[tuple[list[str], list[Any]]] = [
            ([staged_key(partition, key, txn)], []) for partition, key in keys
        ]
        self._pipelined("precommit", calls)

    def commit_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None:
        calls: list[tuple[list[str], list[Any]]] = [
            (
                [
                    entry_key(partition, key),
                    lock_key(partition, key),
                    staged_key(partition, key, txn),
                ],
                [txn, ""],
            )
            for partition, key in keys
        ]
        self._pipelined("commit", calls)

    def abort_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None:
        calls: list[tuple[list[str], list[Any]]] = [
            ([lock_key(partition, key), staged_key(partition, key, txn)], [txn])
            for partition, key in keys
        ]
        self._pipelined("abort", calls)


class SwappedRecords:
    """``RecordStore`` on Redis: GET, and a Lua compare-and-set (SWAP) of the whole record.

    Records live at ``{pn}:r:<key>`` for entries and ``{pn}:t:<txn>`` for status records; the
    partition is parsed from the key name the steps use (``k<n>-<i>``)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.swap = client.register_script(SWAP)

    def _name(self, key: str) -> str:
        partition = key[1:].split("-", 1)[0] if key.startswith("k") else "0"
        return f"{{p{partition}}}:{self.prefix}:{key}"

    def get(self, key: str) -> Any:
        return self.client.get(self._name(key))

    def put_if_absent(self, key: str, value: Any) -> Any:
        stored = self.swap(keys=[self._name(key)], args=["", value])
        return None if stored else self.get(key)

    def replace_if_same(self, key: str, old: Any, new: Any) -> bool:
        return bool(self.swap(keys=[self._name(key)], args=[old, new]))


class WatchedSteps:
    """Each step WATCH, reads, then MULTI/EXEC of the writes; a lost race repeats the step."""

    def __init__(self, client: redis.Redis) -> None:
        self.retries = 0
        self.client = client

    def _watched(self, keys: list[str], body: Callable[[Pipeline], Queue]) -> Any:
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*keys)
                    queue = body(pipe)
                    pipe.multi()
                    queue(pipe)
                    return pipe.execute()
                except redis.WatchError:
                    self.retries += 1

    def one_phase(self, partition: int, key: str, value: bytes) -> bool:
        entry, lock = entry_key(partition, key), lock_key(partition, key)
        refused = [False]

        def body(pipe: Pipeline) -> Callable[[Pipeline], Any]:
            refused[0] = bool(pipe.exists(lock))
            version = int(pipe.hget(entry, "v") or 0) + 1
            if refused[0]:
                return lambda queued: None
            return lambda queued: queued.hset(entry, mapping={"v": version, "d": value})

        self._watched([entry, lock], body)
        return not refused[0]

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool:
        lock, staged = lock_key(partition, key), staged_key(partition, key, txn)
        granted = [True]

        def body(pipe: Pipeline) -> Callable[[Pipeline], Any]:
            holder = pipe.get(lock)
            granted[0] = holder is None or _text(holder) == txn
            if not granted[0]:
                return lambda queued: None

            def queue(queued: Pipeline) -> None:
                queued.set(lock, txn)
                queued.hset(staged, mapping={"state": "prepared", "value": value})

            return queue

        self._watched([lock], body)
        return granted[0]

    def precommit(self, partition: int, key: str, txn: str) -> None:
        staged = staged_key(partition, key, txn)

        def body(pipe: Pipeline) -> Callable[[Pipeline], Any]:
            if pipe.hget(staged, "state") != b"prepared":
                return lambda queued: None
            return lambda queued: queued.hset(staged, "state", "pre_committed")

        self._watched([staged], body)

    def commit(self, partition: int, key: str, txn: str) -> None:
        entry = entry_key(partition, key)
        lock, staged = lock_key(partition, key), staged_key(partition, key, txn)

        def body(pipe: Pipeline) -> Callable[[Pipeline], Any]:
            value = pipe.hget(staged, "value")
            version = int(pipe.hget(entry, "v") or 0) + 1
            holder = pipe.get(lock)
            if value is None:
                return lambda queued: None

            def queue(queued: Pipeline) -> None:
                queued.hset(entry, mapping={"v": version, "d": value})
                if holder is not None and _text(holder) == txn:
                    queued.delete(lock)
                queued.delete(staged)

            return queue

        self._watched([entry, lock, staged], body)

    def abort(self, partition: int, key: str, txn: str) -> None:
        lock, staged = lock_key(partition, key), staged_key(partition, key, txn)

        def body(pipe: Pipeline) -> Callable[[Pipeline], Any]:
            holder = pipe.get(lock)

            def queue(queued: Pipeline) -> None:
                if holder is not None and _text(holder) == txn:
                    queued.delete(lock)
                queued.delete(staged)

            return queue

        self._watched([lock, staged], body)

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        status = status_key(partition, txn)
        swapped = [False]

        def body(pipe: Pipeline) -> Callable[[Pipeline], Any]:
            current = pipe.get(status)
            swapped[0] = _text(current) == expected
            if not swapped[0]:
                return lambda queued: None
            return lambda queued: queued.set(status, new)

        self._watched([status], body)
        return swapped[0]


VARIANTS = ("lua", "lua-phases", "function", "cas", "watch", "lua+counter")


def prepare_server(url: str) -> None:
    """Empties the database and loads the Function library (FUNCTION LOAD REPLACE)."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        client.function_load(library_source(), replace=True)
    finally:
        client.close()


_opened: list[redis.Redis] = []


def finish() -> None:
    """Closes every worker's connection pool."""
    while _opened:
        _opened.pop().close()


def commit_factory(url: str, variant: str, shape: str) -> Callable[[], Commit]:
    def make() -> Commit:
        client = redis.Redis.from_url(url)
        _opened.append(client)
        if variant == "lua-phases":
            phased = PipelinedSteps(client)
            return one_phase(phased) if shape == "1-key" else three_phase_concurrent(phased)
        steps: ScriptedSteps | WatchedSteps | RecordSteps
        if variant == "watch":
            steps = WatchedSteps(client)
        elif variant == "cas":
            steps = RecordSteps(SwappedRecords(client, "r"), SwappedRecords(client, "t"))
        else:
            steps = ScriptedSteps(
                client, use_functions=variant == "function", counter=variant == "lua+counter"
            )
        return one_phase(steps) if shape == "1-key" else three_phase(steps)

    return make
