"""Which offsets a replay covers: a time window or offsets per partition, resolved once.

A window [from, to) becomes, per partition, [first offset at or after `from`, first offset
at or after `to`) by Kafka's offsets-for-times lookup (the end of the log where no record
is that late). Offsets given per partition are checked against the log: a start before
the log's beginning is moved to it (those records are gone), an end past the log's end
is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from grid.errors import FailedPrecondition, InvalidArgument, NotFound

LOOKUP_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class RangeRequest:
    topic: str
    from_ms: int | None = None
    to_ms: int | None = None
    from_offsets: Mapping[int, int] | None = None
    to_offsets: Mapping[int, int] | None = None


def check_request(request: RangeRequest) -> None:
    """What can be refused without asking Kafka."""
    by_time = request.from_ms is not None or request.to_ms is not None
    by_offsets = bool(request.from_offsets) or bool(request.to_offsets)
    if by_time and by_offsets:
        raise InvalidArgument(
            "give a time window (from, to) or offsets (from_offsets, to_offsets), not both",
            field="from",
        )
    if not by_time and not by_offsets:
        raise InvalidArgument(
            "give a time window (from, to) or offsets (from_offsets, to_offsets)", field="from"
        )
    if by_time:
        if request.from_ms is None:
            raise InvalidArgument("the window has no start", field="from")
        if request.to_ms is None:
            raise InvalidArgument("the window has no end", field="to")
        check_window(request.from_ms, request.to_ms)
        return
    if not request.from_offsets:
        raise InvalidArgument("to_offsets needs from_offsets", field="from_offsets")
    for partition, offset in request.from_offsets.items():
        if offset < 0:
            raise InvalidArgument(
                f"partition {partition}: offset {offset} is negative", field="from_offsets"
            )
    for partition, offset in (request.to_offsets or {}).items():
        if partition not in request.from_offsets:
            raise InvalidArgument(
                f"partition {partition} has a to offset but no from offset", field="to_offsets"
            )
        if offset < request.from_offsets[partition]:
            raise InvalidArgument(
                f"partition {partition}: to offset {offset} is before from offset "
                f"{request.from_offsets[partition]}",
                field="to_offsets",
            )


def when(ms: int) -> str:
    """A time of a window as operators wrote it: ISO 8601 in UTC, and the milliseconds."""
    try:
        text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return f"{text.replace('+00:00', 'Z')} ({ms} ms)"


def check_window(from_ms: int, to_ms: int) -> None:
    """A window [from, to) must hold some time: `--to` after `--from`."""
    if to_ms < from_ms:
        raise InvalidArgument(
            f"the window ends at {when(to_ms)}, before it starts at {when(from_ms)}", field="to"
        )
    if to_ms == from_ms:
        raise InvalidArgument(
            f"the window is empty: it starts and ends at {when(from_ms)}", field="to"
        )


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """The topic's partitions (a consumer's own metadata may not know the topic yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="shoal-operator")
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(int(item["partition"]) for item in described.get("partitions", []))
    if described.get("error_code", 0) or not partitions:
        raise NotFound(f"Kafka has no topic '{topic}'", field="topic")
    return partitions


async def resolve(
    consumer: AIOKafkaConsumer, bootstrap: str, request: RangeRequest
) -> dict[int, tuple[int, int]]:
    """Partition -> [start, end) offsets; FailedPrecondition when the range holds nothing."""
    check_request(request)
    partitions = await topic_partitions(bootstrap, request.topic)
    if request.from_offsets:
        unknown = sorted(set(request.from_offsets) - set(partitions))
        if unknown:
            raise InvalidArgument(
                f"topic '{request.topic}' has no partition {unknown[0]} (it has {len(partitions)})",
                field="from_offsets",
            )
        partitions = sorted(request.from_offsets)
    tps = [TopicPartition(request.topic, partition) for partition in partitions]
    beginnings = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    ranges: dict[int, tuple[int, int]] = {}
    if request.from_ms is not None and request.to_ms is not None:
        starts = await consumer.offsets_for_times({tp: request.from_ms for tp in tps})
        stops = await consumer.offsets_for_times({tp: request.to_ms for tp in tps})
        for tp in tps:
            found_start, found_stop = starts.get(tp), stops.get(tp)
            start = ends[tp] if found_start is None else found_start.offset
            stop = ends[tp] if found_stop is None else found_stop.offset
            ranges[tp.partition] = (start, max(start, stop))
        where = f"from {when(request.from_ms)} to {when(request.to_ms)}"
    else:
        assert request.from_offsets is not None
        given_ends = request.to_offsets or {}
        for tp in tps:
            start = max(request.from_offsets[tp.partition], beginnings[tp])
            stop = given_ends.get(tp.partition, ends[tp])
            if stop > ends[tp]:
                raise InvalidArgument(
                    f"partition {tp.partition}: to offset {stop} is past the end of the log "
                    f"({ends[tp]})",
                    field="to_offsets",
                )
            ranges[tp.partition] = (min(start, stop), stop)
        where = "in the offsets given"
    if not any(end > start for start, end in ranges.values()):
        raise FailedPrecondition(f"topic '{request.topic}' holds no events {where}", field="from")
    return ranges
