"""Kafka pipelines as code: the ``@pipeline`` decorator, the event object and event schemas.

A pipeline is a function ``apply(event, tx)`` that the coordinator calls for every event
of its topics, with ``tx`` offering the SDK's transaction calls against the grid::

    from shoal.pipelines import pipeline, register_schema

    register_schema("order_event", {"order_id": {"type": "string", "required": True}, ...})

    @pipeline(topic="orders", group="orders-to-grid", schema="order_event")
    def apply(event, tx):
        tx.put("orders", event["order_id"], event)
        tx.increment("revenue_by_region", event["region"], "total", event["amount"])

The coordinator loads such modules (``shoal serve --pipelines pipelines/ --kafka ...``);
this module only describes pipelines, so it imports nothing but the standard library.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "MODES",
    "ON_ERROR",
    "Event",
    "PipelineSpec",
    "PipelineTransaction",
    "pipeline",
    "register_schema",
    "registered_schemas",
]

EXACTLY_ONCE = "exactly_once"
AT_LEAST_ONCE = "at_least_once"
MODES = (EXACTLY_ONCE, AT_LEAST_ONCE)
ON_ERROR = ("dead_letter", "stop")
STARTS = ("earliest", "latest")
# Kafka's own rule for topic names (and a reasonable one for group and pipeline names).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class PipelineTransaction(Protocol):
    """What ``apply`` receives as ``tx``: the SDK's transaction calls, run in the coordinator.

    Reads see the batch's own writes; everything commits with the batch (in exactly-once
    mode together with the consumed offsets). Values are plain Python values, as in the SDK.
    """

    def get(self, map_name: str, key: str) -> Any: ...

    def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]: ...

    def put(
        self,
        map_name: str,
        key: str,
        value: Any,
        *,
        if_version: int | None = None,
        if_absent: bool = False,
        if_exists: bool = False,
    ) -> None: ...

    def delete(
        self, map_name: str, key: str, *, if_version: int | None = None, if_exists: bool = False
    ) -> None: ...

    def increment(
        self, map_name: str, key: str, field: str | dict[str, Any], amount: int | float = 1
    ) -> None: ...

    def append(self, map_name: str, key: str, field: str, items: Iterable[Any]) -> None: ...

    def sketch_add(self, map_name: str, key: str, items: Any) -> None: ...


class Event(Mapping[str, Any]):
    """One Kafka record as a pipeline sees it: mapping access to its JSON payload, and
    where it came from (``topic``, ``partition``, ``offset``, ``timestamp``, ``key``,
    ``headers``)."""

    __slots__ = (
        "_header_items",
        "_key_bytes",
        "offset",
        "partition",
        "timestamp_ms",
        "topic",
        "value",
    )

    def __init__(
        self,
        value: Any,
        *,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        # The decoded JSON payload (after the event schema filled in its defaults).
        self.value = value
        self.topic = topic
        self.partition = partition
        self.offset = offset
        # The record's Kafka timestamp, milliseconds since the epoch.
        self.timestamp_ms = timestamp_ms
        self._key_bytes = key
        self._header_items = tuple(headers)

    def __getitem__(self, name: str) -> Any:
        return self.value[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    @property
    def key(self) -> str | None:
        """The record key as text (UTF-8), or None when the record has no key."""
        if self._key_bytes is None:
            return None
        return self._key_bytes.decode("utf-8", errors="replace")

    @property
    def key_bytes(self) -> bytes | None:
        return self._key_bytes

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def headers(self) -> dict[str, bytes]:
        """The record headers by name (the last one wins when a name repeats)."""
        return dict(self._header_items)

    @property
    def header_items(self) -> tuple[tuple[str, bytes], ...]:
        """Every header in record order, repeats included."""
        return self._header_items

    def to_dict(self) -> dict[str, Any]:
        """The payload as a plain dict (what ``tx.put(map, key, event)`` stores)."""
        return dict(self.value)

    def __repr__(self) -> str:
        return f"Event({self.topic}/{self.partition}@{self.offset} {self.value!r})"


ApplyFunction = Callable[[Event, PipelineTransaction], Any]


@dataclass(frozen=True)
class PipelineSpec:
    """Everything ``@pipeline`` declares about one pipeline."""

    name: str
    topics: tuple[str, ...]
    group: str
    function: ApplyFunction = field(compare=False, repr=False)
    # An event schema's registered name, a map name whose schema applies, an inline
    # schema, or None for schemaless events.
    schema: str | Mapping[str, Any] | None = None
    batch_max: int = 5000
    batch_ms: int = 100
    mode: str = EXACTLY_ONCE
    dead_letter_topic: str = ""
    max_in_flight: int = 2
    on_error: str = "dead_letter"
    dedup_key: str | None = None
    dedup_window: int = 10_000
    start: str = "earliest"
    module: str = ""
    # The principal the pipeline acts as, and the map patterns it may write (`orders*`);
    # with auth on, the principal must hold `write` on each and `pipelines` on the name,
    # checked when the pipeline loads. Empty writes: any map (auth off only).
    owner: str = ""
    writes: tuple[str, ...] = ()


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ValueError(f"{what} must match {NAME_PATTERN.pattern}, got {value!r}")
    return value


def _check_int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer of at least {minimum}, got {value!r}")
    return value


def _check_choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def pipeline(
    *,
    topic: str | Sequence[str],
    group: str,
    schema: str | Mapping[str, Any] | None = None,
    batch_max: int = 5000,
    batch_ms: int = 100,
    mode: str = EXACTLY_ONCE,
    dead_letter_topic: str | None = None,
    max_in_flight: int = 2,
    on_error: str = "dead_letter",
    dedup_key: str | None = None,
    dedup_window: int = 10_000,
    name: str | None = None,
    start: str = "earliest",
    owner: str = "",
    writes: str | Sequence[str] = (),
) -> Callable[[ApplyFunction], ApplyFunction]:
    """Declares ``apply(event, tx)`` a pipeline of ``topic`` consumed by Kafka group ``group``.

    ``batch_max`` events or ``batch_ms`` milliseconds (whichever comes first) make a
    micro-batch; in ``exactly_once`` mode each batch is one grid transaction holding its
    effects and its offsets, in ``at_least_once`` mode a batch may be applied again after a
    crash. ``dedup_key`` names the payload field that identifies an event: a repeat within
    ``dedup_window`` events of the same Kafka partition is skipped. Rejected events go to
    ``dead_letter_topic`` (default ``<topic>.dlq``); ``on_error="stop"`` stops the pipeline
    on an exception of ``apply`` instead of dead-lettering the event. ``max_in_flight``
    bounds the batches fetched but not yet committed. ``name`` defaults to ``group``;
    ``start`` is where a partition without stored offsets begins. ``owner`` is the
    principal the pipeline acts as and ``writes`` the map patterns it may write
    (``"orders*"``): a write elsewhere rejects the event, and with auth on the server
    refuses to load a pipeline whose owner lacks ``write`` on them (README "Security").
    """
    topics = (topic,) if isinstance(topic, str) else tuple(topic)
    if not topics:
        raise ValueError("topic must name at least one topic")
    for item in topics:
        _check_name(item, "topic")
    _check_name(group, "group")
    pipeline_name = _check_name(group if name is None else name, "name")
    if schema is not None and not isinstance(schema, str | Mapping):
        raise ValueError("schema must be a schema name, a schema mapping or None")
    dead_letters = f"{topics[0]}.dlq" if dead_letter_topic is None else dead_letter_topic
    _check_name(dead_letters, "dead_letter_topic")
    if dead_letters in topics:
        raise ValueError("dead_letter_topic must differ from the pipeline's topics")
    if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key):
        raise ValueError("dedup_key must name a field of the event payload")
    batch_max = _check_int(batch_max, "batch_max", 1)
    batch_ms = _check_int(batch_ms, "batch_ms", 1)
    mode = _check_choice(mode, "mode", MODES)
    max_in_flight = _check_int(max_in_flight, "max_in_flight", 1)
    on_error = _check_choice(on_error, "on_error", ON_ERROR)
    dedup_window = _check_int(dedup_window, "dedup_window", 1)
    start = _check_choice(start, "start", STARTS)
    written = (writes,) if isinstance(writes, str) else tuple(writes)
    for pattern in written:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"writes must be map names or patterns, got {pattern!r}")
    if not isinstance(owner, str):
        raise ValueError(f"owner must be a principal's name, got {owner!r}")

    def decorate(function: ApplyFunction) -> ApplyFunction:
        if not callable(function):
            raise TypeError("@pipeline decorates a function apply(event, tx)")
        try:
            inspect.signature(function).bind(None, None)
        except TypeError:
            raise TypeError(
                f"pipeline function {getattr(function, '__name__', function)!r} must take "
                "two arguments: (event, tx)"
            ) from None
        spec = PipelineSpec(
            name=pipeline_name,
            topics=topics,
            group=group,
            function=function,
            schema=schema,
            batch_max=batch_max,
            batch_ms=batch_ms,
            mode=mode,
            dead_letter_topic=dead_letters,
            max_in_flight=max_in_flight,
            on_error=on_error,
            dedup_key=dedup_key,
            dedup_window=dedup_window,
            start=start,
            module=getattr(function, "__module__", "") or "",
            owner=owner,
            writes=written,
        )
        function.__shoal_pipeline__ = spec  # type: ignore[attr-defined]
        for collector in _collectors():
            collector.pipelines.append(spec)
        return function

    return decorate


# Event schemas ---------------------------------------------------------------------

_schemas: dict[str, dict[str, Any]] = {}
_schemas_lock = threading.Lock()


def register_schema(name: str, schema: Mapping[str, Any]) -> None:
    """Registers an event schema under ``name`` for ``@pipeline(schema=name)``.

    The schema is written like a map's schema (see the README): field name to a type
    name or a description with ``required``, ``min``/``max``, ``pattern``, ``enum``,
    ``ref`` (the value must be an existing key of that map) and so on. Registering the
    same name again with a different schema is an error.
    """
    _check_name(name, "schema name")
    if not isinstance(schema, Mapping):
        raise ValueError("an event schema must be a mapping of field name to description")
    try:
        # A JSON round trip makes a private copy and refuses what a schema cannot hold.
        copied = json.loads(json.dumps(schema))
    except (TypeError, ValueError) as error:
        raise ValueError(f"event schema {name!r} is not JSON-compatible: {error}") from None
    with _schemas_lock:
        existing = _schemas.get(name)
        if existing is not None and existing != copied:
            raise ValueError(f"event schema {name!r} is already registered differently")
        _schemas[name] = copied
    for collector in _collectors():
        collector.schemas[name] = copied


def registered_schemas() -> dict[str, dict[str, Any]]:
    """Every event schema registered in this process, by name."""
    with _schemas_lock:
        return {name: json.loads(json.dumps(schema)) for name, schema in _schemas.items()}


# Collection of definitions while the coordinator imports pipeline modules ----------


@dataclass
class Definitions:
    """What a set of pipeline modules declared while they were imported."""

    pipelines: list[PipelineSpec] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)


_local = threading.local()


def _collectors() -> list[Definitions]:
    stack: list[Definitions] | None = getattr(_local, "stack", None)
    return [] if stack is None else stack


@contextmanager
def collecting() -> Iterator[Definitions]:
    """Gathers the pipelines and schemas declared by modules imported inside the block
    (on this thread); the coordinator's discovery uses it."""
    stack: list[Definitions] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    definitions = Definitions()
    stack.append(definitions)
    try:
        yield definitions
    finally:
        stack.remove(definitions)
