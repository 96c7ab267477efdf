"""`shoal sketches`: a subcommand for each sketch query of the SDK, each with its --help."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from shoal import cli

pytestmark = pytest.mark.integration

QUERIES = ["estimate", "frequency", "contains", "quantiles", "ranks", "top", "sample"]
Run = Callable[..., str]


@pytest.fixture
def run(shoal_server: str, capsys: pytest.CaptureFixture[str]) -> Run:
    # In-process (the entry point itself is tested in test_cli): no start-up per call.
    def run(*arguments: str, code: int = 0) -> str:
        assert cli.main(["--target", shoal_server, "sketches", *arguments]) == code
        captured = capsys.readouterr()
        return captured.out if code == 0 else captured.err

    return run


@pytest.mark.parametrize("subcommand", ["list", "create", "add", "accuracy", "export", *QUERIES])
def test_each_subcommand_has_its_own_help(
    subcommand: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["sketches", subcommand, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: shoal sketches {subcommand} ")
    assert f"example:\n  shoal sketches {subcommand}" in shown


def test_frequency_of_cms_and_topk(run: Run, map_name: str) -> None:
    words = f"{map_name}_cms"
    run("create", words, "--kind", "cms", "-p", "width=500", "-p", "depth=5")
    run("add", words, "d1", "apple", "apple", "apple", "pear")
    run("add", words, "d2", "apple")
    shown = run("frequency", words, "d1", "apple", "plum")
    assert [line.split()[:2] for line in shown.splitlines()[2:4]] == [["apple", "3"], ["plum", "0"]]
    assert "probability" in shown
    merged = json.loads(run("frequency", words, "d1", "apple", "--merge", "d2", "--json"))
    assert [(item["item"], item["value"]) for item in merged] == [("apple", 4.0)]
    assert merged[0]["lower_bound"] <= 4 <= merged[0]["upper_bound"]

    top = f"{map_name}_topk"
    run("create", top, "--kind", "topk")
    run("add", top, "d1", "a", "a", "a", "b", "b", "c")
    assert "certain bounds" in run("frequency", top, "d1", "b")
    heaviest = json.loads(run("top", top, "d1", "-k", "2", "--json"))
    assert [(item["item"], item["estimate"]) for item in heaviest["items"]] == [("a", 3), ("b", 2)]
    assert run("top", top, "d1", "-k", "1").splitlines()[2].split()[:2] == ["a", "3"]


def test_contains_of_bloom(run: Run, map_name: str) -> None:
    seen = f"{map_name}_bloom"
    run("create", seen, "--kind", "bloom", "-p", "capacity_items=1000")
    run("add", seen, "d1", "u1", "u2")
    answers = json.loads(run("contains", seen, "d1", "u1", "u2", "--json"))
    assert answers == [{"item": "u1", "present": True}, {"item": "u2", "present": True}]
    shown = run("contains", seen, "d1", "u1", "never-seen-item")
    assert "u1" in shown and "probably added" in shown
    # A bloom filter never answers "never added" for an item that was added.
    assert all("never" not in line for line in shown.splitlines() if line.startswith("u1"))


def test_quantiles_and_ranks_of_kll(run: Run, map_name: str) -> None:
    latency = f"{map_name}_kll"
    run("create", latency, "--kind", "kll")
    run("add", latency, "d1", *[str(value) for value in range(1, 101)])
    run("add", latency, "d2", "1000")
    median = json.loads(run("quantiles", latency, "d1", "0.5", "--json"))
    assert [round(item["value"]) for item in median["quantiles"]] == [50]
    summary = run("quantiles", latency, "d1")
    assert "rank error" in summary and "0.99" in summary
    merged = json.loads(run("quantiles", latency, "d1", "1", "--merge", "d2", "--json"))
    assert merged["quantiles"][0]["value"] == 1000
    ranks = json.loads(run("ranks", latency, "d1", "25", "--json"))
    assert [round(item["rank"], 2) for item in ranks] == [0.25]
    assert run("ranks", latency, "d1", "25").splitlines()[2].split()[:2] == ["25", "0.25"]


def test_sample_of_reservoir(run: Run, map_name: str) -> None:
    picks = f"{map_name}_reservoir"
    run("create", picks, "--kind", "reservoir", "-p", "k=2")
    run("add", picks, "d1", "x", "y", "z")
    sample = json.loads(run("sample", picks, "d1", "--json"))
    assert sample["items_seen"] == 3
    assert len(sample["items"]) == 2
    assert set(sample["items"]) <= {"x", "y", "z"}
    assert "(2 of 3 items seen)" in run("sample", picks, "d1")


def test_a_query_of_the_wrong_kind_is_one_line(run: Run, map_name: str) -> None:
    visitors = f"{map_name}_hll"
    run("create", visitors, "--kind", "hll")
    failure = run("top", visitors, "d1", code=1)
    assert failure.startswith("shoal: INVALID_ARGUMENT: ")
    assert len(failure.splitlines()) == 1


def test_options_may_sit_between_arguments(run: Run, map_name: str) -> None:
    visitors = f"{map_name}_hll"
    run("create", visitors, "--kind", "hll")
    run("add", visitors, "d1", "a", "b")
    run("add", visitors, "d2", "b", "c")
    # A list argument goes on after an option: d2 is a key here, not an error.
    merged = json.loads(run("estimate", visitors, "d1", "--json", "d2"))
    assert merged["keys_found"] == 2
    assert round(merged["value"]) == 3
    latency = f"{map_name}_kll"
    run("create", latency, "--kind", "kll")
    run("add", latency, "d1", "1", "2", "3")
    run("add", latency, "d2", "100")
    answer = json.loads(run("quantiles", latency, "d1", "--merge", "d2", "1", "--json"))
    assert [item["value"] for item in answer["quantiles"]] == [100]
