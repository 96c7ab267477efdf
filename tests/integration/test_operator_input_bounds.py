"""Operator commands given numbers past what their requests carry: a clear error naming the
option, exit 1, never protobuf's bare ValueError as a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal import cli

pytestmark = pytest.mark.integration

HUGE = "99999999999999999999"
REPLAY = ["replay", "start", "--sandbox", "s", "--topic", "t"]


def _pipeline(tmp_path: Path) -> str:
    path = tmp_path / "orders.py"
    path.write_text(
        "from shoal.pipelines import pipeline\n\n"
        "@pipeline(topic='orders', group='orders-to-grid')\n"
        "def apply(event, tx):\n    tx.put('orders', event.key, dict(event))\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (
            ["replay", "start", "--sandbox", "s", "--topic", "t", "--from", HUGE, "--to", "1"],
            "from",
        ),
        (["replay", "start", "--sandbox", "s", "--topic", "t", "--from", "1", "--to", HUGE], "to"),
        (
            [*REPLAY, "--from-offsets", f"0:{HUGE}", "--to-offsets", "0:5"],
            "from_offsets",
        ),
        (
            [*REPLAY, "--from-offsets", "0:0", "--to-offsets", f"{HUGE}:5"],
            "to_offsets",
        ),
        (["reconcile", "--pipeline", "p", "--from", HUGE, "--to", "1"], "from"),
        (["sandbox", "diff", "s", "--sample", "-1"], "sample"),
        # Sent as the longest TTL a request carries, which the server refuses naming it.
        (["sandbox", "create", "bounds-ttl", "--ttl", "999999999999999999999h"], "ttl_ms"),
        (["sandbox", "diff", "s", "--sample", HUGE], "sample"),
    ],
)
def test_out_of_range_numbers_are_refused_naming_the_option(
    arguments: list[str],
    field: str,
    shoal_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if arguments[:2] == ["replay", "start"]:
        arguments = [*arguments, "--pipeline", _pipeline(tmp_path)]
    code = cli.main(["--target", shoal_server, *arguments])
    error = capsys.readouterr().err
    assert code == 1, error
    assert "INVALID_ARGUMENT" in error and f"(field {field})" in error, error
    assert "Traceback" not in error and "ValueError" not in error, error


def test_a_ttl_past_what_a_request_carries_reaches_the_server_as_the_longest() -> None:
    from shoal._sandbox import _milliseconds

    assert _milliseconds(1e30, "ttl_s") == 2**64 - 1
    assert _milliseconds(0.0001, "ttl_s") == 1
    with pytest.raises(cli.ShoalError, match="ttl_s"):
        _milliseconds(float("nan"), "ttl_s")
