"""The pure parts of the Locust load test: knobs, key distributions, profiles, metering names."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from loadtests.locust import catalog
from loadtests.locust.catalog import user_classes
from loadtests.locust.dataset import retrying_conflicts
from loadtests.locust.keys import KeyChooser
from loadtests.locust.metering import MeteredClient, RequestMeter, payload_bytes
from loadtests.locust.settings import (
    KNOBS,
    LoadSettings,
    SettingsError,
    load_settings,
    parse_weights,
    target_from_host,
)
from loadtests.run_load import Outcome, judge
from shoal import ConflictError, InvalidArgumentError
from tests.support.server_process import REPO_ROOT


def test_defaults_match_the_documented_knobs() -> None:
    assert load_settings({}) == LoadSettings()
    documented = {
        cells[1].strip("` "): cells[2].strip("` ")
        for line in (REPO_ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `SHOAL_LOAD_")
        for cells in [line.split("|")]
    }
    assert documented == {name: default for name, (default, _) in KNOBS.items()}


def test_knobs_are_read_and_checked() -> None:
    settings = load_settings(
        {
            "SHOAL_LOAD_KEYS": "500",
            "SHOAL_LOAD_DISTRIBUTION": "ZIPF",
            "SHOAL_LOAD_ZIPF_S": "0.9",
            "SHOAL_LOAD_WEIGHTS": "kv.get=3, kv.put=0",
            "SHOAL_LOAD_PRELOAD": "0",
            "SHOAL_LOAD_SEED": "7",
        }
    )
    assert (settings.keys, settings.distribution, settings.zipf_s) == (500, "zipf", 0.9)
    assert settings.weights == {"kv.get": 3, "kv.put": 0}
    assert settings.preload is False
    assert settings.seed == 7
    for bad in (
        {"SHOAL_LOAD_KEYS": "many"},
        {"SHOAL_LOAD_KEYS": "0"},
        {"SHOAL_LOAD_DISTRIBUTION": "gauss"},
        {"SHOAL_LOAD_ZIPF_S": "0"},
        {"SHOAL_LOAD_PREFIX": "load-test"},
    ):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            load_settings(bad)
    with pytest.raises(SettingsError, match="task=weight"):
        parse_weights("kv.get")


def test_host_loses_its_scheme() -> None:
    assert target_from_host("grpc://127.0.0.1:50051") == "127.0.0.1:50051"
    assert target_from_host("grpc://a:1,grpc://b:2/") == "a:1,b:2"
    assert target_from_host("127.0.0.1:6000") == "127.0.0.1:6000"
    assert target_from_host(None) == "127.0.0.1:50051"
    with pytest.raises(SettingsError, match="grpc://"):
        target_from_host("https://example.com")


def test_zipf_prefers_low_ranks_and_uniform_does_not() -> None:
    draws = 20_000
    zipf = KeyChooser(1000, "zipf", 1.1, random.Random(1))
    uniform = KeyChooser(1000, "uniform", 1.1, random.Random(1))
    zipf_counts = Counter(zipf.index() for _ in range(draws))
    uniform_counts = Counter(uniform.index() for _ in range(draws))
    # Under s = 1.1 over 1,000 keys, rank 1 has about 1/H = 17% of the draws.
    assert 0.13 < zipf_counts[0] / draws < 0.21
    assert zipf_counts[0] > zipf_counts[1] > zipf_counts[9]
    assert max(uniform_counts.values()) / draws < 0.004
    assert all(0 <= index < 1000 for index in zipf_counts | uniform_counts)
    assert len(set(zipf.distinct(50))) == 50
    assert sorted(KeyChooser(3, "zipf", 3.0, random.Random(2)).distinct(10)) == [0, 1, 2]


def test_profiles_name_known_tasks_and_overrides_apply() -> None:
    for profile in catalog.PROFILES.values():
        assert set(profile.weights) <= set(catalog.TASKS)
    mixed = catalog.PROFILES["mixed"]
    assert set(mixed.weights) == set(catalog.TASKS)
    assert catalog.PROFILES["read_heavy"].weights == {"kv.get": 95, "kv.put": 5}
    chosen = catalog.weights(mixed, {"kv.get": 1, "sql.point": 0})
    assert chosen["kv.get"] == 1
    assert "sql.point" not in chosen
    with pytest.raises(SettingsError, match="unknown task"):
        catalog.weights(mixed, {"kv.nope": 1})
    with pytest.raises(SettingsError, match="no task"):
        catalog.weights(catalog.PROFILES["read_heavy"], {"kv.get": 0, "kv.put": 0})


class RecordingEvent:
    def __init__(self) -> None:
        self.fired: list[dict[str, Any]] = []

    def fire(self, **kwargs: Any) -> None:
        self.fired.append(kwargs)


class FakeSketches:
    def add(self, map_name: str, key: str, items: list[str]) -> int:
        return len(items)


class FakeClient:
    timeout_s = 10.0

    def __init__(self) -> None:
        self.sketches = FakeSketches()

    def scan(self, map_name: str) -> Any:
        yield from [("a", 1), ("b", 2)]

    def close(self) -> None:
        pass


def test_metered_client_names_calls_and_reads_streams_whole() -> None:
    event = RecordingEvent()
    client = MeteredClient(FakeClient(), RequestMeter(event))
    assert client.scan("m") == [("a", 1), ("b", 2)]
    assert client.sketches.add("m", "k", ["x", "y"]) == 2
    assert client.named("sketch.add").sketches.add("m", "k", ["x"]) == 1
    assert client.timeout_s == 10.0
    client.close()
    assert [fired["name"] for fired in event.fired] == ["scan", "sketches.add", "sketch.add"]
    assert event.fired[0]["response_length"] == len('[["a",1],["b",2]]')
    assert payload_bytes(None) == 0
    assert payload_bytes(b"abc") == 3
    assert payload_bytes("é") == 2


def test_run_load_judges_the_failure_ratio() -> None:
    assert judge(Outcome(requests=1000, failures=10, exceptions=0), 0.01) == []
    assert judge(Outcome(requests=1000, failures=11, exceptions=0), 0.01) == [
        "1.10% of requests failed, above the 1.00% allowed"
    ]
    assert judge(Outcome(requests=0, failures=0, exceptions=0), 0.01) == ["no request was made"]
    assert "exception" in judge(Outcome(requests=10, failures=0, exceptions=2), 0.01)[0]


def test_run_load_picks_user_classes_by_profile() -> None:
    assert user_classes("mixed") == ["MixedUser"]
    assert user_classes("read_heavy, TransferUser") == ["KvReadHeavyUser", "TransferUser"]
    assert user_classes("all") == [profile.user_class for profile in catalog.PROFILES.values()]
    with pytest.raises(SettingsError, match="unknown profile"):
        user_classes("everything")


def test_preload_writes_retry_conflicts_and_nothing_else() -> None:
    attempts: list[int] = []
    pauses: list[float] = []

    def conflicting_twice() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConflictError("load_accounts/acct-597 is locked by a transaction in flight")
        return "written"

    assert retrying_conflicts(conflicting_twice, sleep=pauses.append) == "written"
    assert len(attempts) == 3
    assert len(pauses) == 2 and all(0 <= pause <= 2.0 for pause in pauses)

    def refused() -> None:
        attempts.append(1)
        raise InvalidArgumentError("a bad value")

    attempts.clear()
    with pytest.raises(InvalidArgumentError):
        retrying_conflicts(refused, sleep=pauses.append)
    assert len(attempts) == 1

    def always_conflicting() -> None:
        raise ConflictError("locked")

    with pytest.raises(ConflictError):
        retrying_conflicts(always_conflicting, retry_s=0, sleep=pauses.append)


def test_the_locust_package_needs_no_test_code() -> None:
    # loadtests.locust is installed with the server (pyproject) and imported by locustfiles
    # outside this repository, where the tests package does not exist.
    package = REPO_ROOT / "loadtests" / "locust"
    for module in sorted(package.glob("*.py")):
        source = module.read_text()
        assert "from tests" not in source and "import tests" not in source, module.name


def test_stop_after_names_requests_and_counts() -> None:
    settings = load_settings({"SHOAL_LOAD_STOP_AFTER": "txn.transfer=1000, kv.get=1"})
    assert settings.stop_after == {"txn.transfer": 1000, "kv.get": 1}
    assert load_settings({}).stop_after == {}
    with pytest.raises(SettingsError, match="SHOAL_LOAD_STOP_AFTER"):
        load_settings({"SHOAL_LOAD_STOP_AFTER": "txn.transfer"})


def test_users_starting_together_share_one_feature_probe() -> None:
    import threading
    import time

    from loadtests.locust import features

    calls: list[str] = []

    class Result:
        def fetchall(self) -> list[Any]:
            time.sleep(0.05)
            return [(1,)]

    class ProbedClient:
        def sql(self, statement: str) -> Result:
            calls.append(statement)
            return Result()

    cache = features.FeatureCache()
    answers: list[str | None] = []
    users = [
        threading.Thread(
            target=lambda: answers.append(
                cache.missing(ProbedClient(), "host:1", features.SQL, "load")  # type: ignore[arg-type]
            )
        )
        for _ in range(8)
    ]
    for user in users:
        user.start()
    for user in users:
        user.join(10)
    assert answers == [None] * 8
    assert calls == ["SELECT 1"]
