"""Locust users for Shoal: every SDK call reported to Locust as a "grpc" request.

Modules, one concept each:

- ``settings``: the ``SHOAL_LOAD_*`` environment knobs, read once.
- ``keys``: choosing keys uniformly or by a Zipf law.
- ``metering``: timing SDK calls and firing Locust's request event for each.
- ``features``: telling a service the server lacks (UNIMPLEMENTED) from a failure.
- ``dataset``: map names, keys and values, and the preloading step.
- ``session``: what one simulated user carries between tasks.
- ``kv``, ``transfers``, ``analyst``, ``sketching``: the task functions of each scenario.
- ``catalog``: every task by name, and the profiles (default task weights).
- ``user``: ``ShoalUser``, the reusable Locust ``User`` holding one SDK client.
- ``hooks``: listeners on Locust's events (preload at test start, final CSV files).

The user classes of each profile are in ``loadtests/locustfile.py``. Only ``user`` and
``hooks`` import locust (which monkey-patches the standard library with gevent on
import); the rest can be imported by tests and tools safely.
"""
