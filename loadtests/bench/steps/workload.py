"""The participant-step workload every backend alternative runs, and the loop that times it.

Two shapes, the same on every store:

* ``1-key``: one partition's step for a single-key commit (Shoal's one-phase commit): refuse
  when the key is locked by a prepared transaction, otherwise write the value with its version
  plus one, all or nothing.
* ``3pc-2p``: a transaction writing one key in each of two partitions, as Shoal's three-phase
  commit drives it: status record created (pending), prepare on both partitions (lock the key,
  stage the value), status pending -> pre_committed, pre-commit on both, status -> committed,
  commit on both (apply the staged value with version plus one, release the lock). Nine steps,
  each atomic. A prepare that finds the key locked votes no: the transaction aborts (status
  pending -> aborted, prepared partitions released) and is retried; the retries are counted.
  Where a store's own distributed transaction replaces the protocol (Hazelcast's and Ignite's
  transactions), ``3pc-2p`` is that one transaction over both keys, which is the alternative
  being measured.

Keys are spread over ``PARTITIONS`` partitions of ``KEYS_PER_PARTITION`` keys; worker threads
pick them at random, so several threads do meet on a key now and then.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

PARTITIONS = 8
KEYS_PER_PARTITION = 16
VALUE_BYTES = 100
SHAPES = ("1-key", "3pc-2p")


class StepRefused(Exception):
    """A step found its key locked (a no vote, or a refused one-phase write)."""


@dataclass(frozen=True)
class Pick:
    """The keys one commit touches: (partition, key) pairs in distinct partitions."""

    keys: tuple[tuple[int, str], ...]
    value: bytes
    txn_id: str


def pick(rng: random.Random, shape: str) -> Pick:
    count = 1 if shape == "1-key" else 2
    partitions = rng.sample(range(PARTITIONS), count)
    keys = tuple(
        (partition, f"k{partition}-{rng.randrange(KEYS_PER_PARTITION)}") for partition in partitions
    )
    value = bytes(rng.getrandbits(8) for _ in range(8)).hex().encode() * (VALUE_BYTES // 16)
    return Pick(keys=keys, value=value, txn_id=uuid.UUID(int=rng.getrandbits(128)).hex)


@dataclass
class EntryRecord:
    """A key's stored record where the lock and the staged write live with the value.

    Used by the per-key compare-and-set alternatives (Hazelcast ``replace_if_same``, Ignite SQL
    rows): a step is then one compare-and-set of one record, and the transaction's status record
    decides what a staged write becomes (the Percolator shape).
    """

    version: int = 0
    value: str = ""
    lock: str = ""
    state: str = ""
    staged: str = ""

    def encode(self) -> bytes:
        return orjson.dumps(
            {"v": self.version, "d": self.value, "l": self.lock, "s": self.state, "w": self.staged}
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> EntryRecord:
        if raw is None:
            return cls()
        fields = orjson.loads(raw)
        return cls(fields["v"], fields["d"], fields["l"], fields["s"], fields["w"])


Commit = Callable[[Pick], int]
"""Runs one whole commit (retrying internally when the alternative is optimistic); returns how
many attempts failed before it succeeded."""


@dataclass
class Measurement:
    backend: str
    variant: str
    shape: str
    threads: int
    seconds: float
    commits: int
    retries: int
    latencies_ms: list[float] = field(repr=False)

    @property
    def commits_per_s(self) -> float:
        return self.commits / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    backend: str,
    variant: str,
    shape: str,
    make_commit: Callable[[], Commit],
    threads: int,
    seconds: float,
    seed: int,
) -> Measurement:
    """Runs ``threads`` workers, each with its own commit function (its own connection), for
    ``seconds``; every commit is timed from its first attempt to its success."""
    commits = [make_commit() for _ in range(threads)]
    lock = threading.Lock()
    latencies: list[float] = []
    totals = {"commits": 0, "retries": 0}
    errors: list[BaseException] = []
    start_line = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def work(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        commit = commits[index]
        mine: list[float] = []
        retries = 0
        start_line.wait()
        try:
            while time.perf_counter() < stop_at[0]:
                chosen = pick(rng, shape)
                began = time.perf_counter()
                retries += commit(chosen)
                mine.append((time.perf_counter() - began) * 1000.0)
        except BaseException as error:  # reported after the run, not swallowed
            errors.append(error)
        with lock:
            latencies.extend(mine)
            totals["commits"] += len(mine)
            totals["retries"] += retries

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_line.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return Measurement(
        backend, variant, shape, threads, elapsed, totals["commits"], totals["retries"], latencies
    )


@dataclass(frozen=True)
class Summary:
    """Several runs of one (backend, variant, shape, threads): medians and spread."""

    backend: str
    variant: str
    shape: str
    threads: int
    runs: int
    commits_per_s: float
    commits_per_s_min: float
    commits_per_s_max: float
    p50_ms: float
    p99_ms: float
    retries_per_commit: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def summarize(runs: list[Measurement]) -> Summary:
    first = runs[0]
    rates = [run.commits_per_s for run in runs]
    commits = sum(run.commits for run in runs)
    return Summary(
        backend=first.backend,
        variant=first.variant,
        shape=first.shape,
        threads=first.threads,
        runs=len(runs),
        commits_per_s=statistics.median(rates),
        commits_per_s_min=min(rates),
        commits_per_s_max=max(rates),
        p50_ms=statistics.median(run.percentile_ms(0.50) for run in runs),
        p99_ms=statistics.median(run.percentile_ms(0.99) for run in runs),
        retries_per_commit=sum(run.retries for run in runs) / commits if commits else 0.0,
    )
