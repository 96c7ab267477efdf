"""A small in-process metrics registry: labelled gauges and counters, rendered as Prometheus text.

Components take the registry they report to (the node passes its own), so tests read
the figures of one node without global state. ``Registry.render`` gives the text
exposition format (version 0.0.4), ready for an HTTP endpoint or a file.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import TypeVar

Labels = tuple[tuple[str, str], ...]
MetricType = TypeVar("MetricType", bound="_Metric")


def _labels(values: Mapping[str, str]) -> Labels:
    return tuple(sorted((name, str(value)) for name, value in values.items()))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        self.name = name
        self.help_text = help_text
        self._lock = lock
        self._values: dict[Labels, float] = {}

    def value(self, **labels: str) -> float | None:
        """The current value for these labels, or None if never set."""
        return self._values.get(_labels(labels))

    def samples(self) -> dict[Labels, float]:
        with self._lock:
            return dict(self._values)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in sorted(self.samples().items()):
            text = ",".join(f'{name}="{_escape(item)}"' for name, item in labels)
            lines.append(
                f"{self.name}{{{text}}} {_number(value)}"
                if text
                else f"{self.name} {_number(value)}"
            )
        return lines


class Gauge(_Metric):
    """A value that goes up and down: set it."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[_labels(labels)] = float(value)


class Counter(_Metric):
    """A total that only grows: add to it."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"a counter only grows; {self.name} was given {amount}")
        key = _labels(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Registry:
    """Named metrics of one process (or one node), each created once and shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._get(Gauge, name, help_text)

    def counter(self, name: str, help_text: str) -> Counter:
        return self._get(Counter, name, help_text)

    def _get(self, kind: type[MetricType], name: str, help_text: str) -> MetricType:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = kind(name, help_text, threading.Lock())
        if not isinstance(metric, kind):
            raise ValueError(f"metric {name} is a {metric.kind}, not a {kind.kind}")
        return metric

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        with self._lock:
            metrics = [self._metrics[name] for name in sorted(self._metrics)]
        return "\n".join(line for metric in metrics for line in metric.render()) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
