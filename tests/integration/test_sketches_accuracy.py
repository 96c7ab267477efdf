"""A seeded server that monitors every sketch key: uniform reservoirs, accuracy, the CLI."""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import datasketches
import numpy as np
import pytest

from shoal import Client, cli
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

SEED = 20240611


@pytest.fixture(scope="module")
def monitored_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of this module's own: fixed seed, every sketch key monitored."""
    server = ServerProcess(
        tmp_path_factory.mktemp("sketch-accuracy") / "data",
        [
            "--seed",
            str(SEED),
            "--sketch-accuracy-sample-rate",
            "1",
            "--sketch-accuracy-keys-max",
            "1000",
        ],
    ).start()
    try:
        yield server.target
    finally:
        server.stop()


@pytest.fixture
def monitored(monitored_server: str) -> Iterator[Client]:
    with Client(monitored_server) as client:
        yield client


def chi_square_critical(degrees: int, z_score: float) -> float:
    """The chi-square quantile whose upper tail has the normal tail of z (Wilson-Hilferty)."""
    term = 2.0 / (9.0 * degrees)
    return degrees * (1.0 - term + z_score * math.sqrt(term)) ** 3


def test_reservoir_samples_are_uniform(monitored: Client, map_name: str) -> None:
    population, sample_size, repetitions, batches = 200, 20, 300, 4
    monitored.sketches.create(map_name, kind="reservoir", k=sample_size)
    stream = [f"item-{index}" for index in range(population)]
    size = population // batches
    for repetition in range(repetitions):
        # Several batches in one transaction: the hook runs once for each, in order.
        with monitored.transaction() as tx:
            for start in range(0, population, size):
                tx.sketch_add(map_name, f"run-{repetition}", stream[start : start + size])
    counts: Counter[str] = Counter()
    for repetition in range(repetitions):
        sample = monitored.sketches.sample(map_name, f"run-{repetition}")
        assert sample.items_seen == population
        assert len(set(sample.items)) == sample_size
        counts.update(sample.items)
    expected = repetitions * sample_size / population
    statistic = sum((counts[item] - expected) ** 2 / expected for item in stream)
    # p = 0.001 with a fixed seed: uniform sampling passes, a biased one would not.
    assert statistic < chi_square_critical(population - 1, 3.09), statistic
    early = sum(counts[item] for item in stream[:size])
    late = sum(counts[item] for item in stream[-size:])
    assert abs(early - late) < 0.2 * expected * size
    merged = monitored.sketches.sample(map_name, ["run-0", "run-1"])
    assert merged.items_seen == 2 * population and len(merged.items) == sample_size


def test_accuracy_reports_the_observed_error_of_every_kind(
    monitored: Client, map_name: str
) -> None:
    generator = np.random.default_rng(SEED)
    specs = {
        "hll": {"lg_k": 10},
        "cms": {"epsilon": 0.01, "delta": 0.01},
        "bloom": {"capacity_items": 5_000, "error_rate": 0.02},
        "reservoir": {"k": 10},
        "kll": {"k": 100},
        "topk": {"lg_max_k": 6},
    }
    for kind, params in specs.items():
        name = f"{map_name}_{kind}"
        monitored.sketches.create(name, kind=kind, **params)
        for key in range(3):
            for _ in range(3):
                if kind == "kll":
                    batch: list = generator.normal(size=1_000).tolist()
                elif kind == "bloom":
                    batch = [f"b{value}" for value in generator.integers(0, 10**9, size=500)]
                else:
                    batch = [f"z{value}" for value in generator.zipf(1.4, size=1_000).tolist()]
                monitored.sketches.add(name, f"key-{key}", batch)
    report = monitored.sketches.accuracy()
    assert report.sample_rate == 1.0
    assert set(specs) <= set(report.kinds)
    for kind, stats in report.kinds.items():
        if kind not in specs:
            continue
        assert stats.keys >= 3, kind
        assert stats.samples >= 3, kind
        if kind == "kll":
            # A 99% bound: a rare rank may pass it, none by far.
            assert stats.max_relative_error <= 2 * stats.error_bound
        else:
            assert stats.outside_bound == 0, stats
            assert stats.max_relative_error <= stats.error_bound or kind == "reservoir"


def test_the_sketches_command_line(
    monitored_server: str,
    map_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In-process (the entry point itself is tested in test_cli): each call costs no start-up.
    def run(*arguments: str, code: int = 0) -> str:
        assert cli.main(["--target", monitored_server, *arguments]) == code
        captured = capsys.readouterr()
        return captured.out if code == 0 else captured.err

    created = run("sketches", "create", map_name, "--kind", "hll", "-p", "lg_k=11")
    assert f"created hll sketch map '{map_name}'" in created
    assert "added 3 items" in run("sketches", "add", map_name, "d1", "a", "b", "c")
    monkeypatch.setattr("sys.stdin", io.StringIO("c\nd\n\n"))
    assert "added 2 items" in run("sketches", "add", map_name, "d2", "--file", "-")
    assert run("sketches", "estimate", map_name, "d1").startswith("3 distinct")
    merged = json.loads(run("--json", "sketches", "estimate", map_name, "d1", "d2"))
    assert merged["kind"] == "hll" and round(merged["value"]) == 4 and merged["keys_found"] == 2
    listed = json.loads(run("--json", "sketches", "list"))
    mine = next(item for item in listed if item["name"] == map_name)
    assert (mine["kind"], mine["params"], mine["keys"]) == ("hll", {"lg_k": 11}, 2)
    kll = f"{map_name}_kll"
    run("sketches", "create", kll, "--kind", "kll")
    run("sketches", "add", kll, "p", "1", "2.5", "10")
    assert "rank error" in run("sketches", "estimate", kll, "p")
    output = tmp_path / "d1.hll"
    run("sketches", "export", map_name, "d1", "--output", str(output))
    assert round(datasketches.hll_sketch.deserialize(output.read_bytes()).get_estimate()) == 3
    accuracy = run("sketches", "accuracy")
    assert accuracy.startswith("sample rate 1,")
    assert any(line.startswith("hll ") for line in accuracy.splitlines())
    failure = run("sketches", "create", f"{map_name}_x", "--kind", "hll", "-p", "lg_k=2", code=1)
    assert failure.startswith("shoal: INVALID_ARGUMENT: lg_k: must be from 4 to 21")
