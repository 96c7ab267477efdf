"""Micro-batching by count and time, and the flow-control rule; pure (the clock is passed in).

Records arrive in chunks per Kafka partition; a batch closes when it holds `batch_max`
records or when its first record has waited `batch_ms`. Every chunk carries the epoch of
its partition at fetch time, so records fetched before a seek can be told apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

TopicPartitionKey = tuple[str, int]
Part = TypeVar("Part")


class SourceRecord(Protocol):
    """What a pipeline reads of a Kafka record (aiokafka's ConsumerRecord has these)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass
class Chunk:
    """Consecutive records of one Kafka partition, fetched at one epoch of it."""

    topic: str
    partition: int
    epoch: int
    records: list[SourceRecord]

    @property
    def key(self) -> TopicPartitionKey:
        return (self.topic, self.partition)


@dataclass
class Batch:
    batch_id: int
    chunks: list[Chunk] = field(default_factory=list)
    # When the batch's first record was added (monotonic seconds).
    opened_s: float = 0.0

    @property
    def size(self) -> int:
        return sum(len(chunk.records) for chunk in self.chunks)

    def partitions(self) -> set[TopicPartitionKey]:
        return {chunk.key for chunk in self.chunks}


class Batcher:
    """Collects chunks into batches of at most `batch_max` records, or `batch_ms` old."""

    def __init__(self, batch_max: int, batch_ms: int) -> None:
        self.batch_max = batch_max
        self.batch_ms = batch_ms
        self._chunks: list[Chunk] = []
        self._size = 0
        self._opened_s = 0.0
        self._next_id = 1

    @property
    def size(self) -> int:
        return self._size

    @property
    def room(self) -> int:
        """How many more records the open batch takes."""
        return self.batch_max - self._size

    def add(self, chunk: Chunk, now_s: float) -> None:
        if not chunk.records:
            return
        if len(chunk.records) > self.room:
            raise ValueError(f"{len(chunk.records)} records exceed the room of {self.room}")
        if not self._chunks:
            self._opened_s = now_s
        self._chunks.append(chunk)
        self._size += len(chunk.records)

    def ready(self, now_s: float) -> bool:
        if not self._size:
            return False
        return self._size >= self.batch_max or self.wait_s(now_s) <= 0

    def wait_s(self, now_s: float) -> float:
        """How long until the open batch is due by time (the full period when empty)."""
        if not self._size:
            return self.batch_ms / 1000
        return max(0.0, self._opened_s + self.batch_ms / 1000 - now_s)

    def take(self) -> Batch:
        batch = Batch(self._next_id, self._chunks, self._opened_s)
        self._next_id += 1
        self._chunks = []
        self._size = 0
        return batch

    def drop(self, partitions: Iterable[TopicPartitionKey]) -> int:
        """Forgets the open batch's records of these partitions; returns how many."""
        gone = set(partitions)
        kept = [chunk for chunk in self._chunks if chunk.key not in gone]
        dropped = self._size - sum(len(chunk.records) for chunk in kept)
        self._chunks = kept
        self._size -= dropped
        return dropped


def fair_shares(room: int, partitions: Sequence[Part], start: int) -> list[tuple[Part, int]]:
    """How many records to take from each partition, starting at `start` (mod the count),
    so that one fetch shares the open batch's room evenly (the first ones take the rest).

    The Kafka client drains its prefetched records partition by partition, in the order
    the fetches came back, and holds up to `max_partition_fetch_bytes` of each: asked for
    a batch's room at once, it fills batch after batch from one partition (tens of
    thousands of records) while the others wait, so partitions advance one at a time and
    each stalls for as long as the others take. Asking each partition for its share, in a
    turn that moves on every fetch, keeps them advancing together.
    """
    if not partitions or room <= 0:
        return []
    count = len(partitions)
    share, rest = divmod(room, count)
    ordered = [partitions[(start + index) % count] for index in range(count)]
    return [
        (partition, share + (1 if index < rest else 0))
        for index, partition in enumerate(ordered)
        if share or index < rest
    ]


def should_fetch(*, in_flight: int, max_in_flight: int, paused: bool, room: int) -> bool:
    """Flow control: fetch only while the batches not yet committed stay under the bound
    and the open batch has room; otherwise the consumer pauses its partitions, so a slow
    grid slows consumption instead of growing memory."""
    return not paused and in_flight < max_in_flight and room > 0
