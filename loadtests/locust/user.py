"""ShoalUser: a Locust user holding one SDK client, every call reported as a "grpc" request.

Importing this module imports locust, which monkey-patches the standard library with
gevent, and then switches grpcio to gevent mode: without it a gRPC call blocks the
whole process (every user, the timers and the heartbeats to the master) until it
answers. Measured here, one Locust process (one core) then drives about 2,000 SDK calls
a second; run more worker processes to go further.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import grpc.experimental.gevent
from locust import TaskSet, User, between, constant
from locust.exception import RescheduleTask

from loadtests.locust import catalog, features
from loadtests.locust.metering import MeteredClient, RequestMeter
from loadtests.locust.session import Session
from loadtests.locust.settings import LoadSettings, load_settings, target_from_host
from shoal import Client

grpc.experimental.gevent.init_gevent()

log = logging.getLogger("shoal.load")

SETTINGS = load_settings()
PARKED_SLEEP_S = 1.0
_user_numbers = itertools.count()
_idle_classes_reported: set[str] = set()

LocustTask = Callable[[Any], None]


def locust_task(spec: catalog.TaskSpec) -> LocustTask:
    """The catalog task as a Locust task function (Locust calls it with the user)."""

    def run(user: ShoalUser) -> None:
        spec.run(user.session)

    run.__name__ = run.__qualname__ = spec.name
    run.spec = spec  # type: ignore[attr-defined]
    return run


def profile_tasks(
    profile_name: str, settings: LoadSettings = SETTINGS
) -> list[TaskSet | Callable[..., Any]]:
    """A profile's tasks as a User's ``tasks``: each repeated as often as its weight, which
    is what Locust makes of a ``{task: weight}`` dict (and how its UI shows the ratios)."""
    profile = catalog.PROFILES[profile_name]
    chosen = catalog.weights(profile, settings.weights)
    tasks: list[TaskSet | Callable[..., Any]] = []
    for name, weight in chosen.items():
        tasks.extend([locust_task(catalog.TASKS[name])] * weight)
    return tasks


def _parked(user: ShoalUser) -> None:
    """The task of a user whose every task needs a service the server lacks."""
    time.sleep(PARKED_SLEEP_S)


class ShoalUser(User):
    """A Locust user with one Shoal SDK client.

    ``self.client`` is the SDK client with every call reported to Locust (named after
    the method, or ``self.client.named("my task").get(...)``); ``self.sdk`` is the bare
    client, for calls that should not count. ``--host grpc://host:port`` picks the
    coordinator (a comma-separated list fails over). Tasks from the catalog run on a
    ``Session`` (``self.session``); tasks needing SQL or sketches are dropped, with a
    warning, when the server does not offer them.
    """

    abstract = True
    settings: ClassVar[LoadSettings] = SETTINGS
    wait_time = between(0, SETTINGS.wait_ms / 1000) if SETTINGS.wait_ms else constant(0)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.target = target_from_host(self.host)
        self.sdk = Client(self.target, timeout_s=self.settings.timeout_s)
        self.meter = RequestMeter(environment.events.request, self.context, RescheduleTask)
        self.session = Session(self.sdk, self.meter, self.settings, self._rng())
        self.client: MeteredClient = self.session.client

    def _rng(self) -> random.Random:
        number = next(_user_numbers)
        if self.settings.seed is None:
            return random.Random()
        worker = getattr(self.environment.runner, "worker_index", 0)
        return random.Random(f"{self.settings.seed}-{worker}-{number}")

    def on_start(self) -> None:
        needed = {spec.feature for spec in _specs(self.tasks)}
        missing = {
            feature
            for feature in needed
            if features.FEATURES.missing(self.sdk, self.target, feature, self.settings.prefix)
        }
        if not missing:
            return
        kept = [task for task in self.tasks if _feature(task) not in missing]
        if not kept:
            if type(self).__name__ not in _idle_classes_reported:
                _idle_classes_reported.add(type(self).__name__)
                log.warning(
                    "%s has no task the server can serve (missing: %s); its users stay idle",
                    type(self).__name__,
                    ", ".join(sorted(missing)),
                )
            kept = [_parked]
        self.tasks = kept

    def on_stop(self) -> None:
        self.sdk.close()


def _specs(tasks: Iterable[Any]) -> list[catalog.TaskSpec]:
    return [task.spec for task in tasks if getattr(task, "spec", None) is not None]


def _feature(task: Any) -> str | None:
    spec = getattr(task, "spec", None)
    return spec.feature if spec is not None else None
