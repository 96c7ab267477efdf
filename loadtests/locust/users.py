"""The Shoal user classes for locustfiles: ``ShoalUser`` and one user per profile.

Every class here is abstract, so importing one into a locustfile never makes Locust run
it: Locust runs the concrete classes a locustfile defines. Subclass one to run it (a
subclass is concrete unless it says ``abstract = True``)::

    from locust import task
    from loadtests.locust.users import MixedUser, ShoalUser

    class ServiceUser(MixedUser):          # the mixed profile, plus a task of your own
        @task(5)
        def my_task(self) -> None:
            self.client.named("my.get").get("my_map", "some-key")

``runnable(profiles)`` gives concrete classes for the profiles ``SHOAL_LOAD_PROFILE``
names; ``loadtests/locustfile.py`` is just that, plus the preload (``hooks.register``).
"""

from __future__ import annotations

from loadtests.locust import catalog
from loadtests.locust.user import SETTINGS, ShoalUser, profile_tasks

__all__ = [
    "KvReadHeavyUser",
    "KvWriteHeavyUser",
    "MixedUser",
    "ProcedureTransferUser",
    "ShoalUser",
    "SketchIngestUser",
    "SqlAnalystUser",
    "TransferUser",
    "runnable",
]


class KvReadHeavyUser(ShoalUser):
    """Key-value, 95% reads (kv.get) and 5% writes (kv.put)."""

    abstract = True
    tasks = profile_tasks("read_heavy")


class KvWriteHeavyUser(ShoalUser):
    """Key-value, 80% writes: updates, batched updates, inserts and deletes."""

    abstract = True
    tasks = profile_tasks("write_heavy")


class TransferUser(ShoalUser):
    """Bank transfers (serializable transactions across partitions) and audits."""

    abstract = True
    tasks = profile_tasks("transfers")


class ProcedureTransferUser(ShoalUser):
    """Bank transfers as the procedure bank_transfer (needs --procedures loadtests/procedures)."""

    abstract = True
    tasks = profile_tasks("procedures")


class SqlAnalystUser(ShoalUser):
    """SQL point lookups, selective filters and GROUP BY aggregates (needs SQL)."""

    abstract = True
    tasks = profile_tasks("sql_analyst")


class SketchIngestUser(ShoalUser):
    """Batched HyperLogLog adds and estimates (needs sketches)."""

    abstract = True
    tasks = profile_tasks("sketch_ingest")


class MixedUser(ShoalUser):
    """A realistic service: mostly key-value, some transfers, SQL and sketches."""

    abstract = True
    tasks = profile_tasks("mixed")


PROFILE_USERS: dict[str, type[ShoalUser]] = {
    cls.__name__: cls
    for cls in (
        KvReadHeavyUser,
        KvWriteHeavyUser,
        TransferUser,
        ProcedureTransferUser,
        SqlAnalystUser,
        SketchIngestUser,
        MixedUser,
    )
}

# The catalog names the user class of each profile: keep the two in step.
if set(PROFILE_USERS) != {profile.user_class for profile in catalog.PROFILES.values()}:
    raise RuntimeError("loadtests.locust.users and the catalog's profiles disagree")


def runnable(profiles: str = SETTINGS.profile, module: str = "locustfile") -> dict[str, type]:
    """Concrete users of the profiles (names as ``SHOAL_LOAD_PROFILE`` takes them), by
    class name, to put in a locustfile's namespace: Locust runs exactly these."""
    return {
        name: type(name, (PROFILE_USERS[name],), {"__module__": module})
        for name in catalog.user_classes(profiles)
    }
