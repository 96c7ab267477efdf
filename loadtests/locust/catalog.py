"""Every task by name, and the profiles: which tasks a kind of user runs, and how often.

A task's name is also the name of its request in Locust's statistics, so each row of
the report is one task. ``SHOAL_LOAD_WEIGHTS`` overrides a task's weight in every
profile that has it; weight 0 drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loadtests.locust import analyst, features, kv, sketching, transfers
from loadtests.locust.session import Session
from loadtests.locust.settings import SettingsError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: Callable[[Session], None]
    # The service it needs (features.py); its tasks are skipped when the server lacks it.
    feature: str
    summary: str


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(kv.GET, kv.get, features.KEY_VALUE, "get one key"),
        TaskSpec(kv.GET_MANY, kv.get_many, features.KEY_VALUE, "get_many of SHOAL_LOAD_BATCH keys"),
        TaskSpec(kv.PUT, kv.put, features.KEY_VALUE, "overwrite one key"),
        TaskSpec(kv.PUT_MANY, kv.put_many, features.KEY_VALUE, "put_many of SHOAL_LOAD_BATCH keys"),
        TaskSpec(kv.INSERT, kv.insert, features.KEY_VALUE, "put a new key with if_absent"),
        TaskSpec(kv.DELETE, kv.delete, features.KEY_VALUE, "delete a key this user inserted"),
        TaskSpec(
            transfers.TRANSFER,
            transfers.transfer,
            features.TRANSACTIONS,
            "bank transfer between two accounts, with ledger entries (transact)",
        ),
        TaskSpec(
            transfers.PROCEDURE_TRANSFER,
            transfers.procedure_transfer,
            features.PROCEDURES,
            "the bank transfer as the procedure bank_transfer: one call (--procedures)",
        ),
        TaskSpec(
            transfers.AUDIT,
            transfers.audit,
            features.TRANSACTIONS,
            "read-only transaction summing SHOAL_LOAD_BATCH balances",
        ),
        TaskSpec(analyst.POINT, analyst.point, features.SQL, "SQL point lookup by __key"),
        TaskSpec(analyst.FILTER, analyst.filtered, features.SQL, "SQL selective filter (~0.2%)"),
        TaskSpec(
            analyst.AGGREGATE, analyst.aggregate, features.SQL, "SQL GROUP BY region aggregate"
        ),
        TaskSpec(
            sketching.ADD,
            sketching.add,
            features.SKETCHES,
            "sketches.add of SHOAL_LOAD_SKETCH_ITEMS visitor ids to a daily HLL",
        ),
        TaskSpec(
            sketching.ESTIMATE, sketching.estimate, features.SKETCHES, "sketches.estimate of a day"
        ),
    )
}


@dataclass(frozen=True)
class Profile:
    name: str
    user_class: str
    summary: str
    weights: Mapping[str, int]


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            "read_heavy",
            "KvReadHeavyUser",
            "key-value, 95% reads and 5% writes",
            {kv.GET: 95, kv.PUT: 5},
        ),
        Profile(
            "write_heavy",
            "KvWriteHeavyUser",
            "key-value, 80% writes: updates, batches, inserts and deletes",
            {kv.PUT: 45, kv.PUT_MANY: 5, kv.INSERT: 15, kv.DELETE: 15, kv.GET: 20},
        ),
        Profile(
            "transfers",
            "TransferUser",
            "bank transfers across partitions, with an occasional audit",
            {transfers.TRANSFER: 9, transfers.AUDIT: 1},
        ),
        Profile(
            "procedures",
            "ProcedureTransferUser",
            "bank transfers as a procedure run in the coordinator, with an occasional audit",
            {transfers.PROCEDURE_TRANSFER: 9, transfers.AUDIT: 1},
        ),
        Profile(
            "sql_analyst",
            "SqlAnalystUser",
            "an analyst's SQL: point lookups, filters and aggregates",
            {analyst.POINT: 5, analyst.FILTER: 3, analyst.AGGREGATE: 2},
        ),
        Profile(
            "sketch_ingest",
            "SketchIngestUser",
            "sketch ingestion: batched HLL adds and a few estimates",
            {sketching.ADD: 9, sketching.ESTIMATE: 1},
        ),
        Profile(
            "mixed",
            "MixedUser",
            "a realistic service: mostly key-value, some transactions, SQL and sketches",
            {
                kv.GET: 50,
                kv.GET_MANY: 5,
                kv.PUT: 12,
                kv.PUT_MANY: 2,
                kv.INSERT: 3,
                kv.DELETE: 3,
                transfers.TRANSFER: 8,
                transfers.PROCEDURE_TRANSFER: 2,
                transfers.AUDIT: 2,
                analyst.POINT: 4,
                analyst.FILTER: 2,
                analyst.AGGREGATE: 1,
                sketching.ADD: 6,
                sketching.ESTIMATE: 2,
            },
        ),
    )
}


def weights(profile: Profile, overrides: Mapping[str, int]) -> dict[str, int]:
    """The profile's task weights after the overrides, without tasks of weight 0."""
    unknown = sorted(set(overrides) - set(TASKS))
    if unknown:
        raise SettingsError(
            f"SHOAL_LOAD_WEIGHTS names unknown task(s) {', '.join(unknown)}; "
            f"known: {', '.join(TASKS)}"
        )
    chosen = {
        name: overrides.get(name, weight)
        for name, weight in profile.weights.items()
        if overrides.get(name, weight) > 0
    }
    if not chosen:
        raise SettingsError(f"SHOAL_LOAD_WEIGHTS leaves profile {profile.name} with no task")
    return chosen


def user_classes(profiles: str) -> list[str]:
    """Locust user class names for a comma-separated list of profile (or class) names;
    every profile's class for 'all'. Raises SettingsError for an unknown name."""
    names = [name.strip() for name in profiles.split(",") if name.strip()]
    if names == ["all"]:
        return [profile.user_class for profile in PROFILES.values()]
    by_class = {profile.user_class: profile for profile in PROFILES.values()}
    chosen = []
    for name in names:
        if name in PROFILES:
            chosen.append(PROFILES[name].user_class)
        elif name in by_class:
            chosen.append(name)
        else:
            raise SettingsError(
                f"SHOAL_LOAD_PROFILE: unknown profile {name!r}; known: {', '.join(PROFILES)}, all"
            )
    if not chosen:
        raise SettingsError("SHOAL_LOAD_PROFILE: give at least one profile")
    return list(dict.fromkeys(chosen))
