"""Hazelcast alternatives: the client's own transactions, an entry processor on the member, a
compare-and-set of one record per key, or a lock per partition around plain reads and writes.

* ``txn``: a TWO_PHASE ``TransactionContext``; ``get_for_update`` locks each key (in key order,
  so two transactions never wait on each other in a cycle) and the commit writes them all. For
  ``3pc-2p`` the one Hazelcast transaction over both keys replaces Shoal's protocol.
* ``processor``: each step one ``execute_on_key`` of ``StepProcessor`` (Java, built into the
  member's classpath by deploy/local/hazelcast.sh): the step's logic on the key's record runs
  on the owning partition's thread, atomic, one round trip.
* ``cas``: the key's record holds value, version, lock and staged write (``EntryRecord``); each
  step reads it and swaps it with ``replace_if_same`` (``put_if_absent`` when new), repeating a
  lost race. The status record is swapped the same way.
* ``lock``: each step takes the partition's lock (``IMap.lock`` on ``p<n>``), reads and writes
  the key's entry, lock and staged write as separate entries, and unlocks. Atomic for other
  steps, not for a crash: a coordinator that dies inside a step leaves it half written.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from hazelcast.client import HazelcastClient
from hazelcast.serialization.api import IdentifiedDataSerializable
from hazelcast.transaction import TWO_PHASE

from loadtests.bench.steps.protocol import (
    RecordSteps,
    one_phase,
    three_phase,
    three_phase_concurrent,
)
from loadtests.bench.steps.workload import Commit, Pick
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME

VARIANTS = ("txn", "processor", "processor-phases", "cas", "lock")
# deploy/local/hazelcast/src/dev/shoal/hazelcast: the member-side factory and processor.
FACTORY_ID = 7001
STEP_PROCESSOR_CLASS_ID = 1
ONE_PHASE, PREPARE, PRECOMMIT, COMMIT, ABORT, STATUS = range(1, 7)
_clients: dict[str, HazelcastClient] = {}


def client_for(address: str) -> HazelcastClient:
    """One client per member address, shared by every worker thread (it is thread-safe; a
    transaction is bound to the thread that began it)."""
    if address not in _clients:
        _clients[address] = HazelcastClient(
            cluster_members=[address],
            cluster_name=HAZELCAST_CLUSTER_NAME,
            cluster_connect_timeout=30.0,
        )
    return _clients[address]


def prepare_server(address: str) -> None:
    client = client_for(address)
    for name in ("shoal.e", "shoal.p", "shoal.c", "shoal.l", "shoal.s", "shoal.t", "shoal.pl"):
        client.get_map(name).blocking().clear()


def finish() -> None:
    for client in _clients.values():
        client.shutdown()
    _clients.clear()


def versioned(version: int, value: bytes) -> bytes:
    return struct.pack(">Q", version) + value


def version_of(raw: bytes | None) -> int:
    return 0 if raw is None else int(struct.unpack(">Q", raw[:8])[0])


def transaction_commit(client: HazelcastClient) -> Commit:
    def commit(chosen: Pick) -> int:
        transaction = client.new_transaction(timeout=10, type=TWO_PHASE)
        transaction.begin()
        try:
            entries = transaction.get_map("shoal.e")
            for _, key in sorted(chosen.keys, key=lambda pair: pair[1]):
                current = entries.get_for_update(key)
                entries.set(key, versioned(version_of(current) + 1, chosen.value))
            transaction.commit()
        except BaseException:
            transaction.rollback()
            raise
        return 0

    return commit


class StepProcessor(IdentifiedDataSerializable):
    """The client's half of the member's ``StepProcessor``: which step, a text and bytes."""

    def __init__(self, op: int = 0, text: str = "", data: bytes = b"") -> None:
        self.op = op
        self.text = text
        self.data = data

    def write_data(self, object_data_output: Any) -> None:
        object_data_output.write_int(self.op)
        object_data_output.write_string(self.text)
        object_data_output.write_byte_array(bytearray(self.data))

    def read_data(self, object_data_input: Any) -> None:
        self.op = object_data_input.read_int()
        self.text = object_data_input.read_string()
        self.data = bytes(object_data_input.read_byte_array() or b"")

    def get_factory_id(self) -> int:
        return FACTORY_ID

    def get_class_id(self) -> int:
        return STEP_PROCESSOR_CLASS_ID


class ProcessorSteps:
    """Each step one ``execute_on_key`` of the member's StepProcessor: the step's logic runs
    on the member, on the partition thread that owns the key, in one round trip."""

    def __init__(self, client: HazelcastClient) -> None:
        self.retries = 0
        self.records: Any = client.get_map("shoal.p").blocking()
        self.statuses: Any = client.get_map("shoal.t").blocking()

    def _run(self, key: str, op: int, text: str = "", data: bytes = b"") -> bool:
        return bool(self.records.execute_on_key(key, StepProcessor(op, text, data)))

    def one_phase(self, partition: int, key: str, value: bytes) -> bool:
        return self._run(key, ONE_PHASE, "", value)

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool:
        return self._run(key, PREPARE, txn, value)

    def precommit(self, partition: int, key: str, txn: str) -> None:
        self._run(key, PRECOMMIT, txn)

    def commit(self, partition: int, key: str, txn: str) -> None:
        self._run(key, COMMIT, txn)

    def abort(self, partition: int, key: str, txn: str) -> None:
        self._run(key, ABORT, txn)

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        processor = StepProcessor(STATUS, expected, new.encode())
        return bool(self.statuses.execute_on_key(txn, processor))


class PhasedProcessorSteps(ProcessorSteps):
    """The entry processor, with each 3PC phase sent to all partitions at once (the client's
    calls are futures: one wait per phase)."""

    def __init__(self, client: HazelcastClient) -> None:
        super().__init__(client)
        self.async_records: Any = client.get_map("shoal.p")

    def _all(self, keys: Sequence[tuple[int, str]], op: int, txn: str, data: bytes) -> list[bool]:
        futures = [
            self.async_records.execute_on_key(key, StepProcessor(op, txn, data)) for _, key in keys
        ]
        return [bool(future.result()) for future in futures]

    def prepare_all(self, keys: Sequence[tuple[int, str]], txn: str, value: bytes) -> list[bool]:
        return self._all(keys, PREPARE, txn, value)

    def precommit_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None:
        self._all(keys, PRECOMMIT, txn, b"")

    def commit_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None:
        self._all(keys, COMMIT, txn, b"")

    def abort_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None:
        self._all(keys, ABORT, txn, b"")


class LockedSteps:
    """Each step under the partition's map lock, with plain gets and sets inside."""

    def __init__(self, client: HazelcastClient) -> None:
        self.retries = 0
        self.partition_locks: Any = client.get_map("shoal.pl").blocking()
        self.entries: Any = client.get_map("shoal.e").blocking()
        self.locks: Any = client.get_map("shoal.l").blocking()
        self.staged: Any = client.get_map("shoal.s").blocking()
        self.statuses: Any = client.get_map("shoal.t").blocking()

    def _locked(self, partition: int, body: Callable[[], bool]) -> bool:
        name = f"p{partition}"
        # A lease, so a coordinator that dies holding the lock does not stop the partition.
        self.partition_locks.lock(name, lease_time=10)
        try:
            return body()
        finally:
            self.partition_locks.unlock(name)

    def one_phase(self, partition: int, key: str, value: bytes) -> bool:
        def body() -> bool:
            if self.locks.contains_key(key):
                return False
            current = self.entries.get(key)
            self.entries.set(key, versioned(version_of(current) + 1, value))
            return True

        return self._locked(partition, body)

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool:
        def body() -> bool:
            holder = self.locks.get(key)
            if holder is not None and holder != txn:
                return False
            self.locks.set(key, txn)
            self.staged.set(f"{txn}:{key}", b"prepared:" + value)
            return True

        return self._locked(partition, body)

    def precommit(self, partition: int, key: str, txn: str) -> None:
        def body() -> bool:
            staged = self.staged.get(f"{txn}:{key}")
            if staged is not None and staged.startswith(b"prepared:"):
                self.staged.set(f"{txn}:{key}", b"pre_committed:" + staged.split(b":", 1)[1])
            return True

        self._locked(partition, body)

    def commit(self, partition: int, key: str, txn: str) -> None:
        def body() -> bool:
            staged = self.staged.get(f"{txn}:{key}")
            if staged is None:
                return True
            current = self.entries.get(key)
            self.entries.set(key, versioned(version_of(current) + 1, staged.split(b":", 1)[1]))
            self.locks.delete(key)
            self.staged.delete(f"{txn}:{key}")
            return True

        self._locked(partition, body)

    def abort(self, partition: int, key: str, txn: str) -> None:
        def body() -> bool:
            if self.locks.get(key) == txn:
                self.locks.delete(key)
            self.staged.delete(f"{txn}:{key}")
            return True

        self._locked(partition, body)

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        def body() -> bool:
            current = self.statuses.get(txn) or ""
            if current != expected:
                return False
            self.statuses.set(txn, new)
            return True

        return self._locked(partition, body)


def commit_factory(address: str, variant: str, shape: str) -> Callable[[], Commit]:
    def make() -> Commit:
        client = client_for(address)
        if variant == "txn":
            return transaction_commit(client)
        if variant == "processor-phases":
            phased = PhasedProcessorSteps(client)
            return one_phase(phased) if shape == "1-key" else three_phase_concurrent(phased)
        steps: RecordSteps | LockedSteps | ProcessorSteps
        if variant == "processor":
            steps = ProcessorSteps(client)
        elif variant == "cas":
            records: Any = client.get_map("shoal.c").blocking()
            statuses: Any = client.get_map("shoal.t").blocking()
            steps = RecordSteps(records, statuses)
        else:
            steps = LockedSteps(client)
        return one_phase(steps) if shape == "1-key" else three_phase(steps)

    return make
