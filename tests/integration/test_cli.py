"""The `shoal` command line, run as a subprocess against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SHOAL = Path(sys.executable).with_name("shoal")
CLI_TIMEOUT_S = 60


def run_cli(*arguments: str, target: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["--target", target] if target else []
    return subprocess.run(
        [str(SHOAL), *prefix, *arguments],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def ok(*arguments: str, target: str) -> str:
    done = run_cli(*arguments, target=target)
    assert done.returncode == 0, f"shoal {' '.join(arguments)}: {done.stderr}"
    assert done.stderr == ""
    return done.stdout


def ok_json(*arguments: str, target: str) -> Any:
    return json.loads(ok("--json", *arguments, target=target))


def assert_one_line_failure(done: subprocess.CompletedProcess[str], code: str) -> str:
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"shoal: {code}: "), lines[0]
    return lines[0]


def test_the_cli_is_installed() -> None:
    assert SHOAL.exists(), f"{SHOAL} is missing: install the SDK (make install)"


def test_maps_create_list_describe_drop(shoal_server: str, map_name: str) -> None:
    schema = json.dumps({"owner": "string", "balance": {"type": "int", "min": 0}})
    created = ok("maps", "create", map_name, "--schema", schema, target=shoal_server)
    assert map_name in created

    listed = ok("maps", "list", target=shoal_server)
    assert any(line.split()[0] == map_name for line in listed.splitlines() if line.strip())
    listed_json = ok_json("maps", "list", target=shoal_server)
    assert isinstance(listed_json, list)
    assert map_name in {item["name"] for item in listed_json}

    described = ok_json("maps", "describe", map_name, target=shoal_server)
    assert isinstance(described, dict)
    assert described["name"] == map_name
    assert described["entries"] == 0
    assert described["schema_version"] == 1
    assert {field["name"] for field in described["schema"]["fields"]} == {"owner", "balance"}
    assert map_name in ok("maps", "describe", map_name, target=shoal_server)

    assert ok_json("maps", "drop", map_name, target=shoal_server) == {"dropped": True}
    assert map_name not in {item["name"] for item in ok_json("maps", "list", target=shoal_server)}
    assert_one_line_failure(run_cli("maps", "describe", map_name, target=shoal_server), "NOT_FOUND")


def test_put_get_delete_scan(shoal_server: str, map_name: str) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    put = ok_json(
        "put", map_name, "alice", '{"owner": "Alice", "balance": 100}', target=shoal_server
    )
    assert isinstance(put, dict)
    version = put["version"]
    assert version >= 1
    assert "ok" in ok(
        "put", map_name, "bob", '{"owner": "Bob", "balance": 1.5}', target=shoal_server
    )

    got = ok_json("get", map_name, "alice", target=shoal_server)
    assert got == {"value": {"owner": "Alice", "balance": 100}, "version": version}
    human = ok("get", map_name, "alice", target=shoal_server)
    assert '"owner": "Alice"' in human
    assert f"version {version}" in human

    missing = run_cli("get", map_name, "nobody", target=shoal_server)
    assert missing.returncode == 0
    assert "nobody" in missing.stdout
    strict = run_cli("get", map_name, "nobody", "--strict", target=shoal_server)
    assert strict.returncode != 0

    lines = ok("--json", "scan", map_name, target=shoal_server).splitlines()
    assert {json.loads(line)["key"]: json.loads(line)["value"] for line in lines} == {
        "alice": {"owner": "Alice", "balance": 100},
        "bob": {"owner": "Bob", "balance": 1.5},
    }
    human_scan = ok("scan", map_name, "--prefix", "b", target=shoal_server).splitlines()
    assert len(human_scan) == 1
    assert human_scan[0].split("\t")[0] == "bob"
    assert len(ok("scan", map_name, "--limit", "1", target=shoal_server).splitlines()) == 1

    assert ok_json("delete", map_name, "alice", target=shoal_server) == {"existed": True}
    assert ok_json("delete", map_name, "alice", target=shoal_server) == {"existed": False}
    assert ok_json("get", map_name, "alice", target=shoal_server) is None


def test_conditional_put(shoal_server: str, map_name: str) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    ok("put", map_name, "k", "1", "--if-absent", target=shoal_server)
    failed = run_cli("put", map_name, "k", "2", "--if-absent", target=shoal_server)
    assert_one_line_failure(failed, "FAILED_PRECONDITION")
    assert ok_json("get", map_name, "k", target=shoal_server)["value"] == 1


def test_status(shoal_server: str) -> None:
    human = ok("status", target=shoal_server)
    assert "memory" in human
    assert "64 partitions" in human
    status = ok_json("status", target=shoal_server)
    assert isinstance(status, dict)
    assert status["backend"] == "memory"
    assert status["partitions"] == 64
    assert status["limits"]["key_bytes_max"] == 1024


def test_failure_is_one_line_on_stderr(shoal_server: str, map_name: str) -> None:
    line = assert_one_line_failure(run_cli("get", map_name, "k", target=shoal_server), "NOT_FOUND")
    assert map_name in line
    # The same with --json: errors are never printed to stdout.
    assert_one_line_failure(
        run_cli("--json", "get", map_name, "k", target=shoal_server), "NOT_FOUND"
    )


def test_validation_failure_names_the_field(shoal_server: str, map_name: str) -> None:
    schema = json.dumps({"balance": {"type": "int", "min": 0}})
    ok("maps", "create", map_name, "--schema", schema, target=shoal_server)
    line = assert_one_line_failure(
        run_cli("put", map_name, "k", '{"balance": -1}', target=shoal_server), "INVALID_ARGUMENT"
    )
    assert "balance" in line
    assert "min" in line


def test_usage_errors_exit_non_zero(shoal_server: str, map_name: str) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    bad_json = run_cli("put", map_name, "k", "{not json", target=shoal_server)
    assert bad_json.returncode != 0
    assert len(bad_json.stderr.splitlines()) == 1
    assert bad_json.stderr.startswith("shoal: ")
    no_command = run_cli(target=shoal_server)
    assert no_command.returncode != 0


def _unused_port() -> int:
    # A port nothing listens on: bind one, learn its number, and close it again.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["status"], ["get", "m", "k"], ["sql", "-e", "SELECT 1"]])
def test_unreachable_coordinator(command: list[str]) -> None:
    target = f"127.0.0.1:{_unused_port()}"
    # A call deadline far beyond the subprocess's own timeout: the CLI must give up on
    # the refused connection, not wait out deadlines and retries.
    done = subprocess.run(
        [str(SHOAL), "--target", target, "--timeout", "600", *command],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"shoal: UNAVAILABLE: no coordinator at {target} (is shoal serve running?)\n"
    )


def test_the_first_coordinator_that_answers_serves(shoal_server: str, map_name: str) -> None:
    down = f"127.0.0.1:{_unused_port()}"
    ok("maps", "create", map_name, target=shoal_server)
    assert ok_json("get", map_name, "k", target=f"{down},{shoal_server}") is None


def test_serve_help() -> None:
    done = run_cli("serve", "--help")
    assert done.returncode == 0, done.stderr
    for flag in ("--host", "--port", "--data-dir", "--fsync"):
        assert flag in done.stdout
    assert "always" in done.stdout
    assert "batch" in done.stdout


# Modules a `shoal get` must never load: each costs a noticeable part of a second at
# start-up (pyarrow alone about a tenth), and a key read needs none of them.
HEAVY_MODULES = (
    "pyarrow",
    "pandas",
    "numpy",
    "duckdb",
    "datasketches",
    "coordinator",
    "grid",
    "argcomplete",
)

REPORT_IMPORTS = """
import json, sys
from shoal.cli import main
code = main(sys.argv[1:])
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.stdin.read())))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def test_get_imports_nothing_heavy(shoal_server: str, map_name: str) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    ok("put", map_name, "k", '{"n": 1}', target=shoal_server)
    # The entry point's own code path (shoal.cli.main) in a fresh interpreter.
    done = subprocess.run(
        [sys.executable, "-c", REPORT_IMPORTS, "--target", shoal_server, "get", map_name, "k"],
        input=json.dumps(HEAVY_MODULES),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert '"n": 1' in done.stdout


def test_json_before_or_after_the_command(shoal_server: str, map_name: str) -> None:
    # --json (like --target) is accepted before the command, after it, and after its
    # arguments, and means the same in each place.
    ok("--json", "maps", "create", map_name, target=shoal_server)
    for place in ("before", "after command", "at the end"):
        put = ["put", map_name, "k", '{"n": 1}']
        get = ["get", map_name, "k"]
        if place == "before":
            put, get = ["--json", *put], ["--json", *get]
        elif place == "after command":
            put, get = [put[0], "--json", *put[1:]], [get[0], "--json", *get[1:]]
        else:
            put, get = [*put, "--json"], [*get, "--json"]
        assert set(json.loads(ok(*put, target=shoal_server))) == {"version"}
        assert json.loads(ok(*get, target=shoal_server))["value"] == {"n": 1}
    assert map_name in {
        item["name"] for item in json.loads(ok("maps", "list", "--json", target=shoal_server))
    }
    assert json.loads(ok("status", "--json", target=shoal_server))["backend"] == "memory"
    assert json.loads(ok("sketches", "list", "--json", target=shoal_server)) is not None
    scanned = ok("scan", map_name, "--json", target=shoal_server).splitlines()
    assert [json.loads(line)["key"] for line in scanned] == ["k"]
    # The common options after the command do not reset those given before it.
    assert json.loads(ok("--json", "get", map_name, "k", "--timeout", "5", target=shoal_server))


def test_a_failure_naming_a_key_with_a_newline_stays_on_one_line(
    shoal_server: str, map_name: str
) -> None:
    ok("maps", "create", map_name, target=shoal_server)
    failed = run_cli("put", map_name, "a\nb", "1", "--if-exists", target=shoal_server)
    line = assert_one_line_failure(failed, "FAILED_PRECONDITION")
    assert "a\\nb" in line
    assert "(no key 'a\\nb'" in ok("get", map_name, "a\nb", target=shoal_server)


@pytest.mark.parametrize(
    ("option", "value"), [("--timeout", "-1"), ("--timeout", "soon"), ("--connect-timeout", "nan")]
)
def test_a_duration_that_is_not_positive_is_a_usage_error(
    shoal_server: str, option: str, value: str
) -> None:
    result = run_cli("get", "m", "k", option, value, target=shoal_server)
    assert result.returncode == 2
    assert f"argument {option}: '{value}' is not" in result.stderr
    assert "Traceback" not in result.stderr
