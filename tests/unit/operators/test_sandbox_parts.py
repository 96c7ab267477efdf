"""The pure parts of sandboxes: the child's command and environment, the registry's file,
long operations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from coordinator.clock import ManualClock
from coordinator.operators.operations import FAILED, SUCCEEDED, Operations, Progress
from coordinator.operators.sandbox_process import (
    LIFELINE_ENV,
    SOCKET_ENV,
    ChildSettings,
    child_command,
    child_environment,
)
from coordinator.operators.sandbox_registry import (
    READY,
    SandboxRecord,
    SandboxRegistry,
    check_sandbox_name,
)
from grid.errors import InvalidArgument, NotFound, ResourceExhausted


def test_a_child_takes_none_of_productions_settings() -> None:
    production = {
        "PATH": "/usr/bin",
        "SHOAL_PIPELINES": "pipelines/",
        "SHOAL_KAFKA": "broker:9092",
        "SHOAL_CONFIG": "/etc/shoal.toml",
        "SHOAL_FAULT_POINTS": "after_votes:1",
        "SHOAL_AUTH_BOOTSTRAP_TOKEN": "secret",
    }
    environment = child_environment(production, 7)
    assert environment == {"PATH": "/usr/bin", LIFELINE_ENV: "7"}
    socket_path = Path("/data/sandboxes/incident-42/control.sock")
    assert child_environment(production, 7, socket_path) == {
        "PATH": "/usr/bin",
        LIFELINE_ENV: "7",
        SOCKET_ENV: str(socket_path),
    }

    command = child_command(
        ChildSettings(
            name="incident-42",
            host="127.0.0.1",
            port=0,
            data_dir=Path("/data/sandboxes/incident-42/data"),
            log_path=Path("/data/sandboxes/incident-42/serve.log"),
            partitions=16,
            fsync="batch",
            extra_args=("--auth", "on"),
        )
    )
    joined = " ".join(command)
    assert "--data-dir /data/sandboxes/incident-42/data" in joined
    assert "--partitions 16" in joined and "--sandboxes-max 0" in joined
    assert "--auth on" in joined
    assert "--pipelines" not in joined and "--kafka" not in joined


@pytest.mark.parametrize("name", ["", "-lead", "has space", "x" * 64, "a/b", "ü"])
def test_bad_sandbox_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_sandbox_name(name)
    assert refused.value.field == "name"


def test_the_registry_survives_a_reopen(tmp_path: Path) -> None:
    registry = SandboxRegistry(tmp_path / "sandboxes")
    record = SandboxRecord(
        name="incident-42",
        state=READY,
        data_dir=str(tmp_path / "sandboxes" / "incident-42"),
        host="127.0.0.1",
        created_at_ms=1000,
        ttl_ms=500,
        port=4321,
        maps=("orders",),
    )
    registry.put(record)
    registry.update("incident-42", replays=("r-1",))
    registry.put(SandboxRecord("other", READY, "/x", "127.0.0.1", 0, 1))
    registry.remove("other")

    reopened = SandboxRegistry(tmp_path / "sandboxes")
    found = reopened.get("incident-42")
    assert found is not None
    assert found.replays == ("r-1",) and found.maps == ("orders",)
    assert found.expires_at_ms == 1500 and found.address == "127.0.0.1:4321"
    assert [item.name for item in reopened.all()] == ["incident-42"]
    assert not list((tmp_path / "sandboxes").glob("*.tmp"))


def test_an_operation_reports_progress_and_its_result() -> None:
    operations = Operations(ManualClock())
    release = threading.Event()

    def work(progress: Progress) -> dict[str, int]:
        progress.phase("seeding", total=10, unit="keys")
        progress.advance(4)
        release.wait(10)
        return {"entries": 10}

    started = operations.start("create_sandbox", "incident-42", work)
    seen = started
    while not (seen.phase == "seeding" and seen.done == 4):
        seen = operations.wait_change(started.id, seen.revision, 10)
    assert (seen.state, seen.total, seen.unit) == ("running", 10, "keys")
    release.set()
    while not seen.finished:
        seen = operations.wait_change(started.id, seen.revision, 10)
    assert seen.state == SUCCEEDED and seen.result == {"entries": 10}


def test_a_failed_operation_keeps_the_status_and_message() -> None:
    operations = Operations(ManualClock())

    def work(progress: Progress) -> None:
        raise ResourceExhausted("too big", field="sandbox_memory_bytes_max")

    started = operations.start("diff", "incident-42", work)
    seen = started
    while not seen.finished:
        seen = operations.wait_change(started.id, seen.revision, 10)
    assert (seen.state, seen.error_code, seen.error) == (FAILED, "RESOURCE_EXHAUSTED", "too big")
    with pytest.raises(NotFound):
        operations.get("diff-000000000000")
