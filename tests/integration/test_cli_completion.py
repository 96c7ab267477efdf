"""Shell completion of `shoal` (argcomplete): commands, options, map names from the server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_cli import CLI_TIMEOUT_S, SHOAL, ok

pytestmark = pytest.mark.integration

SEPARATOR = "\v"


def complete(line: str, tmp_path: Path, target: str | None = None) -> list[str]:
    """What the shell would offer for `line` (the cursor at its end), asked through
    argcomplete's own protocol, as the code `shoal completion bash` installs asks it."""
    answer = tmp_path / "completions"
    environment = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": SEPARATOR,
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "COMP_TYPE": "9",
        # A busy test machine may take longer than a person would wait for names.
        "SHOAL_COMPLETION_TIMEOUT_S": "30",
    }
    environment.pop("SHOAL_TARGET", None)
    if target is not None:
        environment["SHOAL_TARGET"] = target
    done = subprocess.run(
        [str(SHOAL)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    text = answer.read_text() if answer.exists() else ""
    return [word.strip() for word in text.split(SEPARATOR) if word.strip()]


def test_commands_and_subcommands_complete(tmp_path: Path) -> None:
    assert complete("shoal sk", tmp_path) == ["sketches"]
    assert complete("shoal sketches fr", tmp_path) == ["frequency"]
    assert set(complete("shoal sketches qu", tmp_path)) == {"quantiles"}
    assert complete("shoal completion z", tmp_path) == ["zsh"]


def test_options_complete_after_a_dash(tmp_path: Path) -> None:
    assert complete("shoal get --js", tmp_path) == ["--json"]
    assert "--merge" in complete("shoal sketches top --", tmp_path)


def test_map_names_come_from_the_coordinator(
    shoal_server: str, map_name: str, tmp_path: Path
) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    sketch_map = f"{map_name}_topk"
    ok("sketches", "create", sketch_map, "--kind", "topk", target=shoal_server)
    # Every map whose name starts with what was typed (sketch maps are maps too).
    offered = complete(f"shoal get {map_name}", tmp_path, target=shoal_server)
    assert set(offered) == {map_name, sketch_map}
    # --target on the line is the coordinator asked.
    offered = complete(f"shoal --target {shoal_server} sketches top {map_name}", tmp_path)
    assert offered == [sketch_map]


def test_no_names_and_no_noise_without_a_coordinator(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert complete("shoal get ", tmp_path, target=f"127.0.0.1:{port}") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_shell_code(shell: str) -> None:
    done = subprocess.run(
        [str(SHOAL), "completion", shell],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "shoal" in done.stdout


def test_bash_registers_the_completion() -> None:
    script = f'eval "$({SHOAL} completion bash)" && complete -p shoal'
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(" shoal")
    assert "_python_argcomplete" in done.stdout
