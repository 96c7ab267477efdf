"""Reports SDK calls to Locust's request event, the way Locust's HTTP clients report requests.

Each call fires ``request`` with ``request_type="grpc"``, a name, the response time in
milliseconds, the response size in bytes and the exception when it failed, so Locust's
statistics, charts, failure table and CSV files show gRPC calls as they show HTTP.
Nothing here imports locust: the event and the exception that ends a failed task are
passed in, which keeps this module usable (and testable) without gevent.

The response size is that of the returned value encoded as JSON (the SDK's wire format
for values), not the exact protobuf frame: the SDK does not expose reply messages.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

REQUEST_TYPE = "grpc"

# Client methods that start local work rather than a call: passed through unreported.
UNMETERED = frozenset({"close", "transaction"})
_PLAIN = (str, bytes, int, float, bool, list, tuple, dict, type(None))


class RequestEvent(Protocol):
    def fire(self, **kwargs: Any) -> None: ...


def payload_bytes(value: Any) -> int:
    """About how many bytes a returned value took on the wire."""
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    try:
        return len(json.dumps(value, separators=(",", ":"), default=str))
    except (TypeError, ValueError):
        return len(repr(value))


@dataclass
class Measurement:
    """What a measured block may set before it ends."""

    response_length: int = 0


class RequestMeter:
    """Times blocks and calls and fires one request event for each.

    ``abort`` is the exception raised after a failure is reported (Locust's
    ``RescheduleTask``, which ends the task quietly: the failure is already in the
    statistics, so it should not also be logged as an error of the load test). Without
    ``abort`` the original exception propagates.
    """

    def __init__(
        self,
        event: RequestEvent,
        context: Callable[[], dict[str, Any]] | None = None,
        abort: type[Exception] | None = None,
    ) -> None:
        self._event = event
        self._context = context
        self._abort = abort

    @contextmanager
    def measure(self, name: str, **context: Any) -> Iterator[Measurement]:
        measurement = Measurement()
        start_time = time.time()
        started = time.perf_counter()
        failure: Exception | None = None
        try:
            yield measurement
        except Exception as error:
            failure = error
        response_time_ms = (time.perf_counter() - started) * 1000
        full_context = {**(self._context() if self._context else {}), **context}
        self._event.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=response_time_ms,
            response_length=measurement.response_length,
            exception=failure,
            context=full_context,
            start_time=start_time,
        )
        if failure is not None:
            if self._abort is None:
                raise failure
            raise self._abort(f"{name} failed: {failure!r}") from failure

    def call(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` reported as ``name``; a streamed result (an
        iterator) is read whole inside the measurement and returned as a list."""
        with self.measure(name) as measurement:
            result = function(*args, **kwargs)
            if isinstance(result, Iterator):
                result = list(result)
            measurement.response_length = payload_bytes(result)
        return result


class MeteredClient:
    """An SDK client (or one of its namespaces, like ``client.sketches``) whose every
    method call is reported; named after the method (``get``, ``sketches.add``) unless
    a fixed name was given with ``named``."""

    def __init__(
        self, target: Any, meter: RequestMeter, *, prefix: str = "", name: str | None = None
    ) -> None:
        self._target = target
        self._meter = meter
        self._prefix = prefix
        self._name = name

    @property
    def sdk(self) -> Any:
        """The wrapped object itself, for calls that should not be reported."""
        return self._target

    def named(self, name: str) -> MeteredClient:
        """The same client reporting its next calls under ``name`` (a task's name)."""
        return MeteredClient(self._target, self._meter, prefix=self._prefix, name=name)

    def __getattr__(self, attribute: str) -> Any:
        # An AttributeError here is meaningful: the SDK lacks that call (features.py).
        value = getattr(self._target, attribute)
        if attribute.startswith("_") or attribute in UNMETERED or isinstance(value, _PLAIN):
            return value
        name = self._name or f"{self._prefix}{attribute}"
        if callable(value):
            return functools.partial(self._meter.call, name, value)
        return MeteredClient(
            value, self._meter, prefix=f"{self._prefix}{attribute}.", name=self._name
        )
