"""`make run` on a clean clone installs what serving needs, nothing more (read from make -n)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _planned(target: str, venv: Path) -> list[str]:
    """The commands make would run for `target` with a venv that does not exist yet."""
    # Under `make test` the test inherits MAKELEVEL and MAKEFLAGS, which make a nested make
    # print "Entering directory" lines among the commands: plan as a fresh make would.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_make_run_installs_the_serving_packages_only_and_serves(tmp_path: Path) -> None:
    commands = _planned("run", tmp_path / "venv")
    installs = [command for command in commands if " install " in command]
    assert any("-e ./clients/python -e ." in command for command in installs), installs
    assert not any("[dev]" in command for command in installs), installs
    # Progress is shown, and nothing regenerates the committed stubs (which needs grpc_tools).
    assert not any("--quiet" in command or " -q " in command for command in installs)
    assert not any("grpc_tools" in command for command in commands), commands
    assert commands[-1].startswith(f"{tmp_path / 'venv'}/bin/shoal serve "), commands[-1]


def test_make_test_installs_the_dev_tools_and_checks_the_stubs(tmp_path: Path) -> None:
    commands = _planned("test", tmp_path / "venv")
    assert any("'.[dev]'" in command for command in commands), commands
    assert any("grpc_tools.protoc" in command for command in commands), commands
    assert any("-m pytest tests" in command for command in commands), commands
