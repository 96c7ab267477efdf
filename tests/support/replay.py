"""Replay tests' helpers: timestamped events in Kafka, a grid for a replay to write into,
and checksums of every map of a grid."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaProducer

from shoal import Client
from tests.support.kafka import Message
from tests.support.pipeline_workload import CUSTOMERS
from tests.support.server_process import ServerProcess


async def _produce_timestamped(
    bootstrap: str, topic: str, messages: Sequence[Message], timestamps_ms: Sequence[int]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5, request_timeout_ms=60_000
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                message.value,
                key=message.key,
                partition=message.partition,
                timestamp_ms=timestamp_ms,
            )
            for message, timestamp_ms in zip(messages, timestamps_ms, strict=True)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def produce_timestamped(
    bootstrap: str, topic: str, messages: Sequence[Message], timestamps_ms: Sequence[int]
) -> None:
    """Sends messages in order, each with its own record timestamp."""
    asyncio.run(_produce_timestamped(bootstrap, topic, messages, timestamps_ms))


def start_target_grid(data_dir: Path, *, extra: list[str] | None = None) -> ServerProcess:
    """A second coordinator holding what the orders pipeline references (the customers),
    as a sandbox seeded from production would."""
    server = ServerProcess(data_dir, ["--log-level", "INFO", *(extra or [])]).start()
    seed_orders_maps(server.target)
    return server


def seed_orders_maps(target: str) -> None:
    with Client(target) as client:
        for name in ("orders", "revenue", "customers"):
            client.create_map(name, if_not_exists=True)
        client.put_many("customers", {f"c{number}": {"n": number} for number in range(CUSTOMERS)})


def grid_checksums(target: str) -> dict[str, str]:
    """Every user map of a grid -> a digest of its sorted keys and values."""
    with Client(target, timeout_s=60) as client:
        digests = {}
        for info in client.list_maps():
            items = sorted(client.scan(info.name))
            digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
            digests[info.name] = f"{len(items)}:{digest[:16]}"
        return digests
