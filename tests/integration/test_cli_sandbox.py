"""`shoal sandbox ...` and `--sandbox` on data commands, run as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shoal import Client
from tests.support.sandboxes import process_gone, wait_for
from tests.support.terminal import Terminal

pytestmark = pytest.mark.integration

SHOAL = Path(sys.executable).with_name("shoal")
CLI_TIMEOUT_S = 180


def run_cli(*arguments: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHOAL), "--target", target, *arguments],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def ok(*arguments: str, target: str) -> str:
    done = run_cli(*arguments, target=target)
    assert done.returncode == 0, f"shoal {' '.join(arguments)}: {done.stderr}"
    return done.stdout


def ok_json(*arguments: str, target: str) -> Any:
    return json.loads(ok("--json", *arguments, target=target))


def failure(*arguments: str, target: str, code: str) -> str:
    done = run_cli(*arguments, target=target)
    assert done.returncode == 1, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"shoal: {code}: "), done.stderr
    return lines[0]


def test_sandbox_commands_and_data_commands_against_a_sandbox(
    shoal_server: str, map_name: str
) -> None:
    target = shoal_server
    # Set up through the SDK: each CLI run is a process start (seconds on a busy machine).
    with Client(target) as client:
        client.create_map(map_name, schema={"amount": "int"})
        client.put_many(map_name, {"a": {"amount": 1}, "b": {"amount": 2}})
    name = f"cli-{map_name[-20:].strip('_').replace('_', '-')}"[:40].rstrip("-")

    created = ok_json(
        "sandbox",
        "create",
        name,
        "--from-snapshot",
        "--maps",
        map_name,
        "--ttl",
        "1h",
        target=target,
    )
    try:
        assert created["state"] == "ready"
        assert created["maps"] == [map_name] and created["seeded_entries"] == 2
        assert created["ttl_ms"] == 3_600_000

        listed = ok_json("sandbox", "list", target=target)
        assert name in [item["name"] for item in listed]
        text = ok("sandbox", "describe", name, target=target)
        assert f"name          {name}" in text and "snapshot      version" in text

        # Data commands reach the sandbox with --sandbox, before or after the command.
        ok("put", map_name, "a", '{"amount": 10}', "--sandbox", name, target=target)
        ok("--sandbox", name, "delete", map_name, "b", target=target)
        assert ok_json("get", map_name, "a", "--sandbox", name, target=target)["value"] == {
            "amount": 10
        }
        assert ok_json("get", map_name, "a", target=target)["value"] == {"amount": 1}
        rows = ok(
            "sql",
            "--sandbox",
            name,
            "-e",
            f"SELECT sum(amount) FROM {map_name}",
            "--json",
            target=target,
        )
        assert json.loads(rows.splitlines()[0]) in ({"sum(amount)": 10}, [10])

        report = ok_json("sandbox", "diff", name, "--map", map_name, "--sample", "5", target=target)
        found = report["maps"][map_name]
        assert (found["only_in_production"], found["only_in_sandbox"], found["different"]) == (
            1,
            0,
            1,
        )
        assert found["numeric"]["amount"]["difference"] == 10 - 3
        human = ok("sandbox", "diff", name, "--map", map_name, target=target)
        assert "1 only in production, 0 only in the sandbox, 1 different" in human

        # Failures: one line, exit 1, production untouched.
        assert "no sandbox named 'nope'" in failure(
            "get", map_name, "a", "--sandbox", "nope", target=target, code="NOT_FOUND"
        )
        failure("sandbox", "create", name, target=target, code="ALREADY_EXISTS")
        usage = run_cli("sandbox", "create", "x", "--ttl", "soon", target=target)
        assert usage.returncode == 2 and "duration" in usage.stderr
        assert ok_json("get", map_name, "b", target=target)["value"] == {"amount": 2}
    finally:
        deleted = ok_json("sandbox", "delete", name, target=target)
    assert deleted == {"deleted": True}
    wait_for(lambda: process_gone(created["pid"]), CLI_TIMEOUT_S, "the sandbox process to end")
    failure("sandbox", "delete", name, target=target, code="NOT_FOUND")


def test_creating_on_a_terminal_draws_a_progress_bar(shoal_server: str, map_name: str) -> None:
    with Client(shoal_server) as client:
        client.create_map(map_name)
        client.put(map_name, "a", {"n": 1})
    name = "cli-progress"
    with Terminal(
        [str(SHOAL), "--target", shoal_server, "sandbox", "create", name, "--from-snapshot"]
    ) as terminal:
        try:
            # tqdm's bar per phase: its label, then its counter and elapsed time.
            shown = terminal.read_until(f"sandbox {name}: starting", timeout_s=CLI_TIMEOUT_S)
            terminal.read_until("it/s]", timeout_s=CLI_TIMEOUT_S, start=shown)
            terminal.read_until(f"sandbox '{name}' ready at 127.0.0.1:", timeout_s=CLI_TIMEOUT_S)
            assert terminal.wait(CLI_TIMEOUT_S) == 0
        finally:
            run_cli("sandbox", "delete", name, target=shoal_server)
