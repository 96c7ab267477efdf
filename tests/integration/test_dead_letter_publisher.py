"""The dead-letter publisher against the real broker: what an earlier owner published is
found and not published again; what it left in an open transaction is published once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer

from coordinator.pipelines.deadletter import HEADER_SOURCE, DeadLetter, reasons_of
from coordinator.pipelines.metrics import PipelineMetrics
from coordinator.pipelines.publisher import DeadLetterPublisher
from coordinator.pipelines.validation import Rejection
from tests.support.kafka import create_topic, read_topic, unique

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def letter(topic: str, offset: int) -> DeadLetter:
    return DeadLetter(
        pipeline="p",
        topic=topic,
        partition=1,
        offset=offset,
        timestamp_ms=1_700_000_000_000 + offset,
        key=f"k{offset}".encode(),
        value=b'{"amount": -1}',
        headers=(("origin", b"test"),),
        rejection=Rejection("validate", "min", "amount", "-1 is below the minimum 0"),
    )


def test_a_new_owner_publishes_only_what_is_missing(kafka_bootstrap):
    topic, group = unique("source"), unique("group")
    dead_letter_topic = f"{topic}.dlq"
    create_topic(kafka_bootstrap, dead_letter_topic, 2)
    letters = [letter(topic, offset) for offset in range(10)]

    async def scenario() -> list[tuple[list[int], int | None]]:
        # An earlier owner committed six dead letters, then began a transaction with the
        # other four and died before committing it.
        earlier = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap,
            transactional_id=f"shoal-dlq.{group}.{topic}.1",
        )
        await earlier.start()
        try:
            async with earlier.transaction():
                for item in letters[:6]:
                    await earlier.send(
                        dead_letter_topic,
                        item.value,
                        key=item.key,
                        headers=item.kafka_headers(),
                        partition=1,
                    )
            await earlier.begin_transaction()
            for item in letters[6:]:
                await earlier.send(
                    dead_letter_topic,
                    item.value,
                    key=item.key,
                    headers=item.kafka_headers(),
                    partition=1,
                )
            await earlier.flush()
        finally:
            await earlier.stop()

        confirmed: list[tuple[list[int], int | None]] = []
        done = asyncio.Event()

        async def confirm(key, offsets, floor):
            confirmed.append((offsets, floor))
            if sum(len(items) for items, _ in confirmed) >= len(letters):
                done.set()

        publisher = DeadLetterPublisher(
            pipeline="p",
            group=group,
            topic=dead_letter_topic,
            bootstrap=kafka_bootstrap,
            client_id="test",
            confirm=confirm,
            metrics=PipelineMetrics("p"),
        )
        try:
            publisher.reset((topic, 1), letters, None)
            await asyncio.wait_for(done.wait(), 60)
        finally:
            await publisher.close()
        return confirmed

    confirmed = asyncio.run(scenario())
    assert confirmed[0][0] == [0, 1, 2, 3, 4, 5]
    assert confirmed[1][0] == [6, 7, 8, 9]
    records = read_topic(kafka_bootstrap, dead_letter_topic)
    sources = Counter(reasons_of(record.headers)[HEADER_SOURCE] for record in records)
    assert sources == Counter({f"{topic}/1/{offset}": 1 for offset in range(10)})
    assert {record.partition for record in records} == {1}
    # The floor is the position after the last dead letter: a later scan starts there.
    assert confirmed[1][1] == max(record.offset for record in records) + 1
