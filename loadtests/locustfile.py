"""Locust users of Shoal: gRPC calls through the SDK, reported like HTTP requests.

    locust -f loadtests/locustfile.py --host grpc://127.0.0.1:50051              # web UI
    locust -f loadtests/locustfile.py --host grpc://127.0.0.1:50051 MixedUser    # one profile
    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 1m --host grpc://127.0.0.1:50051
    locust -f loadtests/locustfile.py --master --host grpc://127.0.0.1:50051     # distributed:
    locust -f loadtests/locustfile.py --worker --master-host 127.0.0.1           # one per core

Without class names every profile below runs, users split evenly between them. The
knobs are ``SHOAL_LOAD_*`` environment variables (loadtests/locust/settings.py, README);
set the same ones on the master and every worker. ``make load`` runs this headless.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Locust puts this file's folder on sys.path, not the repository root that holds the
# `loadtests` and `tests` packages; add it so the file runs from any directory.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from locust import events  # noqa: E402

from loadtests.locust.catalog import PROFILES  # noqa: E402
from loadtests.locust.hooks import final_csv_on_quitting, preload_on_test_start  # noqa: E402
from loadtests.locust.user import ShoalUser, profile_tasks  # noqa: E402

events.test_start.add_listener(preload_on_test_start)
events.quitting.add_listener(final_csv_on_quitting)


class KvReadHeavyUser(ShoalUser):
    """Key-value, 95% reads (kv.get) and 5% writes (kv.put)."""

    tasks = profile_tasks("read_heavy")


class KvWriteHeavyUser(ShoalUser):
    """Key-value, 80% writes: updates, batched updates, inserts and deletes."""

    tasks = profile_tasks("write_heavy")


class TransferUser(ShoalUser):
    """Bank transfers (serializable transactions across partitions) and audits."""

    tasks = profile_tasks("transfers")


class SqlAnalystUser(ShoalUser):
    """SQL point lookups, selective filters and GROUP BY aggregates (needs SQL)."""

    tasks = profile_tasks("sql_analyst")


class SketchIngestUser(ShoalUser):
    """Batched HyperLogLog adds and estimates (needs sketches)."""

    tasks = profile_tasks("sketch_ingest")


class MixedUser(ShoalUser):
    """A realistic service: mostly key-value, some transfers, SQL and sketches."""

    tasks = profile_tasks("mixed")


__all__ = [
    "KvReadHeavyUser",
    "KvWriteHeavyUser",
    "MixedUser",
    "ShoalUser",
    "SketchIngestUser",
    "SqlAnalystUser",
    "TransferUser",
]

# run_load and the tests pick users by the catalog's class names: keep them in step.
_undefined = {profile.user_class for profile in PROFILES.values()} - set(globals())
if _undefined:
    raise RuntimeError(f"locustfile lacks the user classes {sorted(_undefined)} of the catalog")
