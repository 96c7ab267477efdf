"""The profile helper's table: own and inclusive shares of py-spy's collapsed stacks."""

from __future__ import annotations

from loadtests.bench.profile import summary


def test_own_and_inclusive_shares_of_collapsed_stacks() -> None:
    raw = "main;serve;lookup 30\nmain;serve;encode 10\nmain;idle 60\n"
    table = summary(raw, top=3)
    assert table.startswith("100 samples holding the GIL")
    own, inclusive = table.split("inclusive:")
    assert "60.0%  idle" in own and "30.0%  lookup" in own and "10.0%  encode" in own
    assert "100.0%  main" in inclusive and "40.0%  serve" in inclusive


def test_a_recording_without_samples_says_so() -> None:
    assert summary("", top=5).startswith("no samples")
