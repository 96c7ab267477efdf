"""The README's own-locustfile example runs as written, from a folder outside the repository.

The file is taken from the README (the python block that starts `# my_locustfile.py`),
written to a fresh folder and run by Locust there, with no PYTHONPATH: the Shoal user
classes must come from the installed package. Only the file's two classes may run (the
profile users it imports are abstract), and every task must reach the statistics.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server_process import REPO_ROOT

pytestmark = pytest.mark.integration

SMALL_DATA_SET = {
    "SHOAL_LOAD_KEYS": "500",
    "SHOAL_LOAD_ACCOUNTS": "50",
    "SHOAL_LOAD_ORDERS": "500",
    "SHOAL_LOAD_SKETCH_KEYS": "5",
    "SHOAL_LOAD_SKETCH_ITEMS": "50",
}


def readme_file(name: str) -> str:
    """The README python block whose first line is `# <name>`."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "```python" and lines[index + 1].strip() == f"# {name}":
            end = lines.index("```", index + 1)
            return "\n".join(lines[index + 1 : end]) + "\n"
    raise AssertionError(f"the README has no python block for {name}")


def test_the_readme_locustfile_runs_its_own_users_only(shoal_server: str, tmp_path: Path) -> None:
    (tmp_path / "my_locustfile.py").write_text(readme_file("my_locustfile.py"))
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PYTHONPATH")
    }
    environment.update(
        SMALL_DATA_SET,
        SHOAL_LOAD_PREFIX="custom",
        # The run ends once each class's tasks ran (--run-time is the upper bound).
        SHOAL_LOAD_STOP_AFTER="cart.put=1,cart.get=1,cart.scan=1,kv.get=1",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "my_locustfile.py",
            "--headless",
            "--host",
            f"grpc://{shoal_server}",
            "--users",
            "4",
            "--spawn-rate",
            "4",
            "--run-time",
            "120s",
            "--stop-timeout",
            "10",
            "--csv",
            "custom",
            "--only-summary",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    spawned = [line for line in output.splitlines() if "All users spawned" in line]
    assert spawned, output[-5000:]
    assert '"CartUser": 2' in spawned[0] and '"ServiceUser": 2' in spawned[0], spawned[0]
    assert "MixedUser" not in spawned[0]
    with (tmp_path / "custom_stats.csv").open(newline="") as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    for name in ("cart.put", "cart.get", "cart.scan", "kv.get"):
        assert int(rows[name]["Request Count"]) > 0, (name, sorted(rows))
    assert all(row["Failure Count"] == "0" for row in rows.values()), rows
