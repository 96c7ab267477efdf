"""A locustfile whose user makes one call that fails and one that succeeds, for the hook test.

Run by tests/integration/test_load_request_hook.py as ``locust -f`` in a subprocess,
so gevent never enters the pytest process.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from locust import events, task  # noqa: E402

from loadtests.locust.hooks import final_csv_on_quitting  # noqa: E402
from loadtests.locust.user import ShoalUser  # noqa: E402

events.quitting.add_listener(final_csv_on_quitting)

UNKNOWN_MAP = "no_such_map_for_the_hook_test"


class FailingUser(ShoalUser):
    @task
    def get_from_unknown_map(self) -> None:
        self.client.get(UNKNOWN_MAP, "some-key")
        raise AssertionError("unreachable: the failed call ends the task")

    @task
    def cluster_info(self) -> None:
        self.client.cluster_info()
