"""Locust users of Shoal: gRPC calls through the SDK, reported like HTTP requests.

    locust -f loadtests/locustfile.py --host grpc://127.0.0.1:50051 --web-host 127.0.0.1
    SHOAL_LOAD_PROFILE=transfers,read_heavy locust -f loadtests/locustfile.py ...
    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 1m --host grpc://127.0.0.1:50051

It runs the profiles ``SHOAL_LOAD_PROFILE`` names (``mixed`` by default, as ``make
load``; ``all`` for every profile, users split evenly). The knobs are ``SHOAL_LOAD_*``
environment variables (loadtests/locust/settings.py, README); set the same ones on the
master and every worker. ``make load`` runs this headless. The user classes come from
the installed ``loadtests.locust.users``, where they are abstract: a locustfile of your
own imports them without running them (see the README's "Your own locustfile").
"""

from __future__ import annotations

from locust import events

from loadtests.locust import hooks
from loadtests.locust.users import ShoalUser, runnable

hooks.register(events)

# Locust runs the concrete User classes of this module: the profiles asked for.
globals().update(runnable(module=__name__))

__all__ = ["ShoalUser"]
