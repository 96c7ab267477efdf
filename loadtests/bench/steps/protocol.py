"""Shoal's commit protocol over any store's participant steps: one-phase and three-phase commit.

A store alternative that keeps Shoal's protocol implements ``ParticipantSteps`` (each method one
atomic step of one partition, however the store makes it atomic); the two drivers here turn it
into the commits the workload times, so every alternative runs the very same protocol.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from loadtests.bench.steps.workload import Commit, EntryRecord, Pick


class ParticipantSteps(Protocol):
    """One partition's atomic steps. ``retries`` counts attempts an optimistic step had to
    repeat (a WATCH or compare-and-set that lost a race); the drivers add it to the figure."""

    retries: int

    def one_phase(self, partition: int, key: str, value: bytes) -> bool: ...

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool: ...

    def precommit(self, partition: int, key: str, txn: str) -> None: ...

    def commit(self, partition: int, key: str, txn: str) -> None: ...

    def abort(self, partition: int, key: str, txn: str) -> None: ...

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        """Compare-and-set of the transaction's status record ("" = absent)."""
        ...


def _take_retries(steps: ParticipantSteps) -> int:
    retries, steps.retries = steps.retries, 0
    return retries


def one_phase(steps: ParticipantSteps) -> Commit:
    def commit(chosen: Pick) -> int:
        ((partition, key),) = chosen.keys
        refused = 0
        while not steps.one_phase(partition, key, chosen.value):
            refused += 1
        return refused + _take_retries(steps)

    return commit


def three_phase(steps: ParticipantSteps, rng: random.Random | None = None) -> Commit:
    backoff = rng or random.Random(0)

    def commit(chosen: Pick) -> int:
        attempts = 0
        status_partition = chosen.keys[0][0]
        while True:
            txn = f"{chosen.txn_id}.{attempts}"
            steps.set_status(status_partition, txn, "", "pending")
            prepared: list[tuple[int, str]] = []
            for partition, key in chosen.keys:
                if not steps.prepare(partition, key, txn, chosen.value):
                    break
                prepared.append((partition, key))
            else:
                steps.set_status(status_partition, txn, "pending", "pre_committed")
                for partition, key in chosen.keys:
                    steps.precommit(partition, key, txn)
                steps.set_status(status_partition, txn, "pre_committed", "committed")
                for partition, key in chosen.keys:
                    steps.commit(partition, key, txn)
                return attempts + _take_retries(steps)
            steps.set_status(status_partition, txn, "pending", "aborted")
            for partition, key in prepared:
                steps.abort(partition, key, txn)
            attempts += 1
            # A no vote means another transaction holds the key: give it time to finish, as the
            # SDK's retry with backoff does.
            time.sleep(backoff.uniform(0.0005, 0.002 * min(attempts, 8)))

    return commit


class RecordStore(Protocol):
    """Compare-and-set of one value per key: Hazelcast's IMap, or a Lua script on Redis."""

    def get(self, key: str) -> Any: ...

    def put_if_absent(self, key: str, value: Any) -> Any:
        """None when it stored the value, else what the key holds."""
        ...

    def replace_if_same(self, key: str, old: Any, new: Any) -> bool: ...


class RecordSteps:
    """Each step one compare-and-set of the key's record (``EntryRecord``: value, version,
    lock and staged write together), so the logic of the step runs in Python between a read
    and the swap, and the swap makes it atomic; a lost race repeats the step."""

    def __init__(self, records: RecordStore, statuses: RecordStore) -> None:
        self.retries = 0
        self.records = records
        self.statuses = statuses

    def _swap(self, key: str, change: Callable[[EntryRecord], EntryRecord | None]) -> bool:
        """Applies ``change`` to the record by compare-and-set; False when it refuses."""
        while True:
            raw = self.records.get(key)
            changed = change(EntryRecord.decode(raw))
            if changed is None:
                return False
            if raw is None:
                swapped = self.records.put_if_absent(key, changed.encode()) is None
            else:
                swapped = self.records.replace_if_same(key, raw, changed.encode())
            if swapped:
                return True
            self.retries += 1

    def one_phase(self, partition: int, key: str, value: bytes) -> bool:
        def change(record: EntryRecord) -> EntryRecord | None:
            if record.lock:
                return None
            return EntryRecord(record.version + 1, value.decode())

        return self._swap(key, change)

    def prepare(self, partition: int, key: str, txn: str, value: bytes) -> bool:
        def change(record: EntryRecord) -> EntryRecord | None:
            if record.lock and record.lock != txn:
                return None
            return EntryRecord(record.version, record.value, txn, "prepared", value.decode())

        return self._swap(key, change)

    def precommit(self, partition: int, key: str, txn: str) -> None:
        def change(record: EntryRecord) -> EntryRecord | None:
            if record.lock != txn or record.state != "prepared":
                return None
            return EntryRecord(record.version, record.value, txn, "pre_committed", record.staged)

        self._swap(key, change)

    def commit(self, partition: int, key: str, txn: str) -> None:
        def change(record: EntryRecord) -> EntryRecord | None:
            if record.lock != txn:
                return None
            return EntryRecord(record.version + 1, record.staged)

        self._swap(key, change)

    def abort(self, partition: int, key: str, txn: str) -> None:
        def change(record: EntryRecord) -> EntryRecord | None:
            if record.lock != txn:
                return None
            return EntryRecord(record.version, record.value)

        self._swap(key, change)

    def set_status(self, partition: int, txn: str, expected: str, new: str) -> bool:
        if not expected:
            return self.statuses.put_if_absent(txn, new) is None
        return bool(self.statuses.replace_if_same(txn, expected, new))


class PhasedSteps(ParticipantSteps, Protocol):
    """Steps that can send one phase to several partitions at once (a Redis pipeline, the
    Hazelcast client's futures): one wait per phase instead of one per partition."""

    def prepare_all(
        self, keys: Sequence[tuple[int, str]], txn: str, value: bytes
    ) -> list[bool]: ...

    def precommit_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None: ...

    def commit_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None: ...

    def abort_all(self, keys: Sequence[tuple[int, str]], txn: str) -> None: ...


def three_phase_concurrent(steps: PhasedSteps, rng: random.Random | None = None) -> Commit:
    """``three_phase`` with each phase sent to all partitions at once."""
    backoff = rng or random.Random(0)

    def commit(chosen: Pick) -> int:
        attempts = 0
        status_partition = chosen.keys[0][0]
        keys = chosen.keys
        while True:
            txn = f"{chosen.txn_id}.{attempts}"
            steps.set_status(status_partition, txn, "", "pending")
            votes = steps.prepare_all(keys, txn, chosen.value)
            if all(votes):
                steps.set_status(status_partition, txn, "pending", "pre_committed")
                steps.precommit_all(keys, txn)
                steps.set_status(status_partition, txn, "pre_committed", "committed")
                steps.commit_all(keys, txn)
                return attempts + _take_retries(steps)
            steps.set_status(status_partition, txn, "pending", "aborted")
            steps.abort_all([key for key, vote in zip(keys, votes, strict=True) if vote], txn)
            attempts += 1
            time.sleep(backoff.uniform(0.0005, 0.002 * min(attempts, 8)))

    return commit
