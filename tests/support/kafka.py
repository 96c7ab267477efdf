"""Producing to and reading from the test Kafka broker, with aiokafka and with kcat."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

KCAT = shutil.which("kcat") or "/usr/bin/kcat"


@dataclass(frozen=True)
class Message:
    partition: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(run())


async def produce_async(bootstrap: str, topic: str, messages: Sequence[Message]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=60_000,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                message.value,
                key=message.key,
                partition=message.partition,
                headers=list(message.headers) or None,
            )
            for message in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def produce(bootstrap: str, topic: str, messages: Sequence[Message]) -> None:
    asyncio.run(produce_async(bootstrap, topic, messages))


def produce_with_kcat(bootstrap: str, topic: str, messages: Sequence[Message]) -> None:
    """Sends messages with kcat (librdkafka), one kcat run per partition; keys and values
    must not hold tabs or newlines."""
    by_partition: dict[int, list[Message]] = {}
    for message in messages:
        by_partition.setdefault(message.partition, []).append(message)
    with tempfile.TemporaryDirectory(prefix="kcat-") as folder:
        for partition, items in sorted(by_partition.items()):
            path = Path(folder) / f"p{partition}.txt"
            lines = []
            for item in items:
                assert item.key is not None and not item.headers
                lines.append(item.key + b"\t" + item.value)
            path.write_bytes(b"\n".join(lines) + b"\n")
            subprocess.run(
                [
                    KCAT,
                    "-P",
                    "-b",
                    bootstrap,
                    "-t",
                    topic,
                    "-p",
                    str(partition),
                    "-K",
                    "\t",
                    "-X",
                    "enable.idempotence=true",
                    "-X",
                    "message.timeout.ms=120000",
                    "-l",
                    str(path),
                ],
                check=True,
                capture_output=True,
                timeout=180,
            )


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(item["partition"] for item in described["partitions"])


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 60.0) -> list[Consumed]:
    """Every committed record of a topic, up to its end when called."""

    async def run() -> list[Consumed]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        found: list[Consumed] = []
        try:
            partitions = [
                TopicPartition(topic, number) for number in await partitions_of(bootstrap, topic)
            ]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            # An explicit seek: seek_to_beginning can lose a race with the reset that
            # assign() starts (aiokafka 0.14).
            for tp, offset in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, offset)
            deadline = time.monotonic() + timeout_s
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic} timed out")
                fetched = await consumer.getmany(timeout_ms=500)
                for tp, records in fetched.items():
                    found.extend(
                        Consumed(
                            tp.partition,
                            record.offset,
                            record.key,
                            record.value,
                            tuple(record.headers),
                            record.timestamp,
                        )
                        for record in records
                    )
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())


def wait_until(
    condition: Callable[[], Any], *, timeout_s: float, interval_s: float = 0.2, what: str = ""
) -> Any:
    """Polls until `condition()` is truthy and returns it; fails the test on timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}: {last!r}")
