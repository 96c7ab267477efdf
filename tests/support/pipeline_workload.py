"""An orders workload for pipeline tests and benchmarks: events with duplicates and invalid
ones, the pipeline module that applies them, and the expected outcome computed from what
was produced (independently of the pipeline's code)."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.kafka import Message

REGIONS = ("eu", "us", "apac")
CUSTOMERS = 100
SCHEMA = {
    "id": {"type": "string", "required": True},
    "order": {"type": "string", "required": True},
    "region": {"type": "string", "enum": list(REGIONS)},
    "amount": {"type": "int", "min": 0},
    "customer": {"type": "string", "ref": "customers"},
}
INVALID_KINDS = ("json", "min", "enum", "required", "ref", "type")

PIPELINE_MODULE = """
from shoal.pipelines import pipeline, register_schema

register_schema({schema_name!r}, {schema!r})


@pipeline(topic={topic!r}, group={group!r}, schema={schema_name!r}, batch_max={batch_max},
          batch_ms={batch_ms}, mode={mode!r}, dedup_key="id", max_in_flight={max_in_flight})
def apply(event, tx):
    tx.put("orders", event["order"], event)
    tx.increment("revenue", event["region"], {{"total": event["amount"], "count": 1}})
"""


def write_pipeline(
    folder: Path,
    *,
    topic: str,
    group: str,
    batch_max: int = 2000,
    batch_ms: int = 50,
    mode: str = "exactly_once",
    max_in_flight: int = 2,
    module: str = "orders",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(
        PIPELINE_MODULE.format(
            schema_name=f"{group}_event",
            schema=SCHEMA,
            topic=topic,
            group=group,
            batch_max=batch_max,
            batch_ms=batch_ms,
            mode=mode,
            max_in_flight=max_in_flight,
        )
    )
    return folder


def partition_of(key: str, partitions: int) -> int:
    """Producers pick the partition from the event id, so a repeat lands with its original."""
    return zlib.crc32(key.encode()) % partitions


@dataclass
class Expected:
    orders: set[str] = field(default_factory=set)
    revenue: dict[str, dict[str, int]] = field(default_factory=dict)
    # Record key of every rejected event -> the rule it breaks.
    dead: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0


@dataclass
class Workload:
    messages: list[Message]
    expected: Expected


def _document(number: int, rng: random.Random) -> dict[str, object]:
    return {
        "id": f"e{number}",
        "order": f"o{number}",
        "region": rng.choice(REGIONS),
        "amount": rng.randint(1, 10_000),
        "customer": f"c{rng.randrange(CUSTOMERS)}",
    }


def _invalid(document: dict[str, object], kind: str, rng: random.Random) -> bytes:
    if kind == "json":
        return b'{"id": "' + str(document["id"]).encode() + b'", broken'
    if kind == "min":
        document["amount"] = -rng.randint(1, 100)
    elif kind == "enum":
        document["region"] = "mars"
    elif kind == "required":
        del document["order"]
    elif kind == "ref":
        document["customer"] = "c-missing"
    elif kind == "type":
        document["amount"] = str(document["amount"])
    return json.dumps(document).encode()


def generate(
    count: int,
    *,
    partitions: int = 4,
    seed: int = 7,
    invalid_fraction: float = 0.01,
    duplicate_fraction: float = 0.03,
    duplicate_distance: int = 2000,
) -> Workload:
    """`count` messages in production order: fresh events, some invalid, and repeats of
    earlier ones (valid or not, never malformed JSON) a little later."""
    rng = random.Random(seed)
    messages: list[Message] = []
    repeats: dict[int, list[Message]] = {}
    number = 0
    while len(messages) < count:
        for repeat in repeats.pop(len(messages), []):
            if len(messages) < count:
                messages.append(repeat)
        if len(messages) >= count:
            break
        number += 1
        document = _document(number, rng)
        key = str(document["id"])
        if rng.random() < invalid_fraction:
            kind = INVALID_KINDS[number % len(INVALID_KINDS)]
            value = _invalid(document, kind, rng)
        else:
            kind = ""
            value = json.dumps(document).encode()
        message = Message(partition_of(key, partitions), key.encode(), value)
        messages.append(message)
        if kind != "json" and rng.random() < duplicate_fraction:
            due = len(messages) + rng.randint(1, duplicate_distance)
            repeats.setdefault(due, []).append(message)
    return Workload(messages, expected_of(messages))


def expected_of(messages: list[Message]) -> Expected:
    """What applying the messages exactly once must give, computed without the pipeline."""
    expected = Expected()
    seen: set[bytes] = set()
    for message in messages:
        try:
            document = json.loads(message.value)
        except json.JSONDecodeError:
            assert message.key is not None
            expected.dead[message.key.decode()] = "json"
            continue
        if message.key in seen:
            expected.duplicates += 1
            continue
        assert message.key is not None
        seen.add(message.key)
        rule = _broken_rule(document)
        if rule:
            expected.dead[message.key.decode()] = rule
            continue
        expected.orders.add(document["order"])
        totals = expected.revenue.setdefault(document["region"], {"total": 0, "count": 0})
        totals["total"] += document["amount"]
        totals["count"] += 1
    return expected


def _broken_rule(document: dict[str, object]) -> str:
    if "order" not in document:
        return "required"
    if document.get("region") not in REGIONS:
        return "enum"
    amount = document.get("amount")
    if not isinstance(amount, int):
        return "type"
    if amount < 0:
        return "min"
    if document.get("customer") == "c-missing":
        return "ref"
    return ""
