"""Listeners on Locust's events: preloading when a test starts, final CSVs when it quits,
and stopping once the requests ``SHOAL_LOAD_STOP_AFTER`` asks for were made.

``test_start`` fires on the master and on every worker (or once on a local runner);
the data set is loaded once, by the master or the local runner, before it tells any
user to start. A failed preload stops the test: every call after it would fail.

Locust rewrites its ``--csv`` files once a second and not at the end, so they miss
the last second of a run (locustio/locust#1806); ``quitting`` writes them once more.
"""

from __future__ import annotations

import csv
import logging
from typing import Any

from locust.exception import StopTest
from locust.runners import WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from loadtests.locust import dataset
from loadtests.locust.settings import LoadSettings, target_from_host
from loadtests.locust.user import SETTINGS
from shoal import Client, ShoalError

log = logging.getLogger("shoal.load")

PRELOAD_FAILED_EXIT_CODE = 3
STOP_AFTER_POLL_S = 0.2


def preload_on_test_start(environment: Any, settings: LoadSettings = SETTINGS, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    target = target_from_host(environment.host)
    if not settings.preload:
        log.info("SHOAL_LOAD_PRELOAD=0: using the data already on %s", target)
        return
    # Preloading writes tens of thousands of keys; give it more than one call's deadline.
    client = Client(target, timeout_s=max(settings.timeout_s, 60.0))
    try:
        dataset.preload(client, settings, target)
    except ShoalError as error:
        log.error("preloading %s failed, stopping the test: %r", target, error)
        environment.process_exit_code = PRELOAD_FAILED_EXIT_CODE
        # Locust answers StopTest by quitting a headless run and stopping a web UI one.
        raise StopTest(f"preload failed: {error}") from None
    finally:
        client.close()


def final_csv_on_quitting(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    prefix = getattr(options, "csv_prefix", None)
    if isinstance(environment.runner, WorkerRunner) or not prefix:
        return
    snapshot = StatsCSV(environment, PERCENTILES_TO_REPORT)
    # Locust's own writer flushes after each pass and rewrites from a fixed offset, so
    # if it runs once more it writes these same final rows again.
    for suffix, write in (
        ("_stats.csv", snapshot.requests_csv),
        ("_failures.csv", snapshot.failures_csv),
        ("_exceptions.csv", snapshot.exceptions_csv),
    ):
        with open(f"{prefix}{suffix}", "w", newline="") as handle:
            write(csv.writer(handle))


def stop_after_on_test_start(environment: Any, settings: LoadSettings = SETTINGS, **_: Any) -> None:
    """Quits the test (``--run-time`` stays the upper bound) once every request named in
    ``SHOAL_LOAD_STOP_AFTER`` was made that many times: a run that ends on a condition
    rather than a time, as tests need on a busy machine. The master (or the single
    process) watches the statistics its workers report."""
    wanted = dict(settings.stop_after)
    if isinstance(environment.runner, WorkerRunner) or not wanted:
        return
    import gevent

    def watch() -> None:
        while True:
            entries = environment.runner.stats.entries
            counts = {
                name: entry.num_requests
                for (name, _method), entry in entries.items()
                if name in wanted
            }
            if all(counts.get(name, 0) >= count for name, count in wanted.items()):
                log.info("SHOAL_LOAD_STOP_AFTER reached (%s): stopping", counts)
                environment.runner.quit()
                return
            gevent.sleep(STOP_AFTER_POLL_S)

    gevent.spawn(watch)


def register(events: Any) -> None:
    """Adds the listeners to Locust's ``events``: call it once in a locustfile that uses
    the load test's data set (the maps ``SHOAL_LOAD_PREFIX`` names)."""
    events.test_start.add_listener(preload_on_test_start)
    events.test_start.add_listener(stop_after_on_test_start)
    events.quitting.add_listener(final_csv_on_quitting)
