"""A locustfile whose user makes one call that fails and one that succeeds, for the hook test.

Run by tests/integration/test_load_request_hook.py as ``locust -f`` in a subprocess,
so gevent never enters the pytest process; it stops once SHOAL_LOAD_STOP_AFTER's
requests were made.
"""

from __future__ import annotations

from locust import events, task

from loadtests.locust.hooks import final_csv_on_quitting, stop_after_on_test_start
from loadtests.locust.users import ShoalUser

events.test_start.add_listener(stop_after_on_test_start)
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
