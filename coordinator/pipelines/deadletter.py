"""The dead-letter format: what a rejected event becomes in the grid's outbox and in Kafka.

A rejected event is first written to the system map `__deadletters` (the outbox) in the
same grid transaction as its batch, then published to the dead-letter topic. The Kafka
record keeps the original key, value and headers and adds reason headers:

=========================  ==================================================
``shoal-dlq-pipeline``     the pipeline's name
``shoal-dlq-stage``        decode, dedup, validate, apply or commit
``shoal-dlq-rule``         the rule broken (``required``, ``min``, ``ref``, ``json``,
                           ``exception``, ...)
``shoal-dlq-field``        the field at fault (empty when none)
``shoal-dlq-message``      a sentence saying what is wrong
``shoal-dlq-source``       ``<topic>/<partition>/<offset>`` of the original record
``shoal-dlq-timestamp``    the original record's timestamp (ms since the epoch)
=========================  ==================================================
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from coordinator.pipelines.validation import Rejection

DEAD_LETTERS_MAP = "__deadletters"
HEADER_PIPELINE = "shoal-dlq-pipeline"
HEADER_STAGE = "shoal-dlq-stage"
HEADER_RULE = "shoal-dlq-rule"
HEADER_FIELD = "shoal-dlq-field"
HEADER_MESSAGE = "shoal-dlq-message"
HEADER_SOURCE = "shoal-dlq-source"
HEADER_TIMESTAMP = "shoal-dlq-timestamp"
REASON_HEADERS = (
    HEADER_PIPELINE,
    HEADER_STAGE,
    HEADER_RULE,
    HEADER_FIELD,
    HEADER_MESSAGE,
    HEADER_SOURCE,
    HEADER_TIMESTAMP,
)


def source_id(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


def outbox_key(group: str, topic: str, partition: int, offset: int) -> str:
    return f"{group}/{topic}/{partition}/{offset:020d}"


@dataclass(frozen=True)
class DeadLetter:
    """One rejected record, with everything needed to publish it again after a crash."""

    pipeline: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    rejection: Rejection

    @property
    def source(self) -> str:
        return source_id(self.topic, self.partition, self.offset)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (any old reason headers replaced) and the reasons."""
        reason = self.rejection
        kept = [(name, value) for name, value in self.headers if name not in REASON_HEADERS]
        return [
            *kept,
            (HEADER_PIPELINE, self.pipeline.encode()),
            (HEADER_STAGE, reason.stage.encode()),
            (HEADER_RULE, reason.rule.encode()),
            (HEADER_FIELD, reason.field.encode()),
            (HEADER_MESSAGE, reason.message.encode()),
            (HEADER_SOURCE, self.source.encode()),
            (HEADER_TIMESTAMP, str(self.timestamp_ms).encode()),
        ]

    def to_json(self) -> bytes:
        reason = self.rejection
        return orjson.dumps(
            {
                "pipeline": self.pipeline,
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "timestamp": self.timestamp_ms,
                "key": _b64(self.key),
                "value": _b64(self.value),
                "headers": [[name, _b64(value)] for name, value in self.headers],
                "stage": reason.stage,
                "rule": reason.rule,
                "field": reason.field,
                "message": reason.message,
            }
        )

    @staticmethod
    def from_json(document: Any) -> DeadLetter:
        return DeadLetter(
            pipeline=document["pipeline"],
            topic=document["topic"],
            partition=document["partition"],
            offset=document["offset"],
            timestamp_ms=document["timestamp"],
            key=_unb64(document["key"]),
            value=_unb64(document["value"]),
            headers=tuple((name, _unb64(value) or b"") for name, value in document["headers"]),
            rejection=Rejection(
                document["stage"], document["rule"], document["field"], document["message"]
            ),
        )


def reasons_of(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The reason headers of a dead-letter record, by name (for tools and tests)."""
    return {
        name: value.decode("utf-8", errors="replace")
        for name, value in headers
        if name in REASON_HEADERS
    }


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)
