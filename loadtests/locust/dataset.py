"""The data set the scenarios work on: its maps, its keys, and the preloading step.

Preloading runs once per test (Locust's ``test_start`` on the master or the local
runner), before any user starts, with ``put_many`` batches. It is idempotent: maps are
created when missing and every preloaded key is written again, so the bank starts
each run with the same total. A write that meets a transaction in flight (another load
test working on the same maps) is retried with backoff, as a transaction is.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from loadtests.locust import features
from loadtests.locust.bank import BALANCE_START, account_key
from loadtests.locust.settings import LoadSettings
from shoal import AlreadyExistsError, Client, ConflictError

log = logging.getLogger("shoal.load")

PRELOAD_BATCH = 1000
# How long a preload write keeps retrying keys locked by another load test's transactions.
CONFLICT_RETRY_S = 60.0
Result = TypeVar("Result")
REGIONS = tuple(f"region-{index:02d}" for index in range(50))
ORDERS_SCHEMA = {
    "region": {"type": "string", "required": True},
    "customer": {"type": "string", "required": True},
    "amount": {"type": "float", "required": True, "min": 0},
    "ts": {"type": "int", "required": True},
}
ACCOUNTS_SCHEMA = {"balance": {"type": "int", "min": 0}}
ORDERS_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z: order i is placed i seconds later.
SKETCH_LG_K = 12


@dataclass(frozen=True)
class Maps:
    """The names of the maps of one load test (``SHOAL_LOAD_PREFIX``)."""

    prefix: str

    @property
    def kv(self) -> str:
        return f"{self.prefix}_kv"

    @property
    def accounts(self) -> str:
        return f"{self.prefix}_accounts"

    @property
    def ledger(self) -> str:
        return f"{self.prefix}_ledger"

    @property
    def orders(self) -> str:
        return f"{self.prefix}_orders"

    @property
    def visitors(self) -> str:
        return f"{self.prefix}_visitors"


def kv_key(index: int) -> str:
    return f"key-{index:08d}"


def kv_value(index: int, settings: LoadSettings, revision: int = 0) -> dict[str, Any]:
    return {"n": index, "revision": revision, "payload": "x" * settings.value_bytes}


def order_key(index: int) -> str:
    return f"ord-{index:08d}"


def order_row(index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "region": REGIONS[index % len(REGIONS)],
        "customer": f"cust-{rng.randrange(10_000):05d}",
        "amount": round(rng.uniform(1, 1000), 2),
        "ts": ORDERS_EPOCH_S + index,
    }


def sketch_key(index: int) -> str:
    return f"day-{index:03d}"


def visitor(rng: random.Random) -> str:
    return f"user-{rng.randrange(1_000_000)}"


@dataclass
class PreloadSummary:
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _batches(count: int) -> Iterator[range]:
    for start in range(0, count, PRELOAD_BATCH):
        yield range(start, min(start + PRELOAD_BATCH, count))


def retrying_conflicts(
    call: Callable[[], Result],
    *,
    retry_s: float = CONFLICT_RETRY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """``call()``, retried with jittered exponential backoff while it raises ConflictError."""
    retrying = Retrying(
        retry=retry_if_exception_type(ConflictError),
        stop=stop_after_delay(retry_s),
        wait=wait_random_exponential(multiplier=0.05, max=2.0),
        sleep=sleep,
        reraise=True,
        before_sleep=lambda state: log.info(
            "preload: retrying a write that met a transaction in flight (attempt %d): %s",
            state.attempt_number,
            state.outcome.exception() if state.outcome else "",
        ),
    )
    return retrying(call)


def preload(client: Client, settings: LoadSettings, target: str = "") -> PreloadSummary:
    """Creates the maps and writes the data set; features the server lacks are skipped."""
    started = time.perf_counter()
    maps = Maps(settings.prefix)
    summary = PreloadSummary()
    rng = random.Random(settings.seed if settings.seed is not None else 20_261_126)

    def put_many(map_name: str, values: dict[str, Any]) -> None:
        retrying_conflicts(lambda: client.put_many(map_name, values))

    client.create_map(maps.kv, if_not_exists=True)
    for batch in _batches(settings.keys):
        put_many(maps.kv, {kv_key(index): kv_value(index, settings) for index in batch})
    summary.written[maps.kv] = settings.keys

    client.create_map(maps.accounts, schema=ACCOUNTS_SCHEMA, if_not_exists=True)
    client.create_map(maps.ledger, if_not_exists=True)
    for batch in _batches(settings.accounts):
        put_many(maps.accounts, {account_key(index): {"balance": BALANCE_START} for index in batch})
    summary.written[maps.accounts] = settings.accounts

    # The orders map is a plain map with a schema, so it is an SQL table whether or not
    # this server has SQL yet.
    client.create_map(maps.orders, schema=ORDERS_SCHEMA, if_not_exists=True)
    for batch in _batches(settings.orders):
        put_many(maps.orders, {order_key(index): order_row(index, rng) for index in batch})
    summary.written[maps.orders] = settings.orders

    missing = features.probe(client, features.SKETCHES, settings.prefix)
    if missing is None:
        sketches: Any = client.sketches  # type: ignore[attr-defined,unused-ignore]
        try:
            sketches.create(maps.visitors, kind="hll", lg_k=SKETCH_LG_K)
        except AlreadyExistsError:
            pass
        for index in range(settings.sketch_keys):
            items = [visitor(rng) for _ in range(100)]
            retrying_conflicts(
                functools.partial(sketches.add, maps.visitors, sketch_key(index), items)
            )
        summary.written[maps.visitors] = settings.sketch_keys
    else:
        summary.skipped[maps.visitors] = missing

    summary.seconds = time.perf_counter() - started
    log.info(
        "preloaded %s in %.1f s%s%s",
        ", ".join(f"{name}: {count:,}" for name, count in summary.written.items()),
        summary.seconds,
        f" on {target}" if target else "",
        "".join(f"; skipped {name} ({reason})" for name, reason in summary.skipped.items()),
    )
    return summary
