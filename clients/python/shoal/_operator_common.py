"""What the operators' calls share: pipeline code to send, times, and reaching another grid."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal._errors import InvalidArgumentError
from shoal.v1 import replay_pb2, replay_pb2_grpc

if TYPE_CHECKING:
    from shoal._client import Client


def replays_stub(stubs: Any) -> Any:
    stub = stubs.extra.get("replays")
    if stub is None:
        stub = stubs.extra["replays"] = replay_pb2_grpc.ReplaysStub(stubs.channel)
    return stub


def origin(client: Client, pipeline: str = "") -> replay_pb2.OriginResponse:
    request = replay_pb2.OriginRequest(pipeline=pipeline)
    reply: replay_pb2.OriginResponse = client._call(
        lambda stubs: replays_stub(stubs).Origin, request, idempotent=True
    )
    return reply


def pipeline_code(client: Client, pipeline: str | Path, name: str = "") -> replay_pb2.PipelineCode:
    """A pipeline file's code, or the code of the pipeline ``client``'s coordinator runs
    under that name (the production module)."""
    text = str(pipeline)
    path = Path(text)
    if text.endswith(".py") or path.is_file():
        if not path.is_file():
            raise InvalidArgumentError(f"pipeline file {text} does not exist", field="pipeline")
        return replay_pb2.PipelineCode(name=name, file_name=path.name, source=path.read_text())
    if not text:
        raise InvalidArgumentError("name a pipeline file or a running pipeline", field="pipeline")
    code = origin(client, text).pipeline
    return replay_pb2.PipelineCode(
        name=name or code.name, file_name=code.file_name, source=code.source
    )


def time_ms(value: datetime | str | int | float, what: str) -> int:
    """Milliseconds since the epoch of a datetime, an ISO 8601 text or a number of ms
    (also as digits); a time without a zone is UTC."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what} is not a time: {value!r}", field=what)
    if isinstance(value, int | float):
        return _bounded_ms(value, what)
    if isinstance(value, str) and value.strip().isdigit():
        return _bounded_ms(int(value.strip()), what)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgumentError(
                f"{what} is not an ISO 8601 time (like 2026-11-25T00:00Z): {value!r}", field=what
            ) from None
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{what} is not a time: {value!r}", field=what)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _bounded_ms(value.timestamp() * 1000, what)


# A time travels as int64 milliseconds: past it, protobuf would raise a bare ValueError.
MS_MAX = 2**63 - 1


def _bounded_ms(value: float, what: str) -> int:
    if not -MS_MAX <= value <= MS_MAX:  # also false for NaN
        raise InvalidArgumentError(
            f"{what} is out of range: {value!r} ms since the epoch", field=what
        )
    return int(value)


def offsets_map(offsets: Mapping[int, int] | None, what: str) -> dict[int, int]:
    """Offsets per partition as the request carries them (partition uint32, offset int64),
    refused naming ``what`` when they do not fit, instead of protobuf's bare ValueError."""
    found: dict[int, int] = {}
    for partition, offset in (offsets or {}).items():
        fits = all(
            isinstance(item, int) and not isinstance(item, bool) for item in (partition, offset)
        )
        if not fits or not (0 <= partition < 2**32 and -(2**63) <= offset < 2**63):
            raise InvalidArgumentError(
                f"{what}: {partition!r}: {offset!r} is not a partition and offset", field=what
            )
        found[partition] = offset
    return found


def other_grid(client: Client, *, sandbox: str | None, into: str | None) -> tuple[Client, str]:
    """The client of the grid an operation writes into, and how ids of that grid are
    prefixed: ``client`` itself (no prefix), a sandbox by name, or any grid by address."""
    if sandbox and into:
        raise InvalidArgumentError("give a sandbox or an address (into), not both", field="sandbox")
    if into:
        from shoal._client import Client as ClientType

        grid = ClientType(
            into,
            timeout_s=client.timeout_s,
            retry=client._connection.retry,
            metadata=client._metadata,
            tls=client._connection.tls,
        )
        return grid, into
    if sandbox:
        resolve = getattr(client, "sandbox", None)
        if resolve is None:
            raise InvalidArgumentError(
                "this SDK cannot reach sandboxes by name: give the sandbox's address (into)",
                field="sandbox",
            )
        found: Client = resolve(sandbox)
        return found, sandbox
    return client, ""


def split_id(operation_id: str) -> tuple[str, str]:
    """(where, local id) of an id: ``incident-42/r-0a1b2c3d4e`` or ``r-0a1b2c3d4e``."""
    where, _, local = operation_id.rpartition("/")
    return where, local
