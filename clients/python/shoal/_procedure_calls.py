"""Procedure calls, shared by the sync and asyncio clients: the request, the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shoal import _codec, _requests
from shoal._errors import FailedPreconditionError, ProcedureError
from shoal.v1 import procedures_pb2


def stub(stubs: Any) -> Any:
    """The Procedures stub of a channel, made on first use."""
    found = stubs.extra.get("procedures")
    if found is None:
        from shoal.v1 import procedures_pb2_grpc

        found = stubs.extra["procedures"] = procedures_pb2_grpc.ProceduresStub(stubs.channel)
    return found


def admin_stub(stubs: Any) -> Any:
    found = stubs.extra.get("procedure_admin")
    if found is None:
        from shoal.v1 import procedures_pb2_grpc

        found = stubs.extra["procedure_admin"] = procedures_pb2_grpc.ProcedureAdminStub(
            stubs.channel
        )
    return found


def call_method(stubs: Any) -> Any:
    return stub(stubs).Call


def list_method(stubs: Any) -> Any:
    return admin_stub(stubs).ListProcedures


def call_request(
    name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> procedures_pb2.CallRequest:
    return _requests.build(
        procedures_pb2.CallRequest,
        name=name,
        args_json=_codec.encode(list(args), what="args") if args else b"",
        kwargs_json=_codec.encode(dict(kwargs), what="kwargs") if kwargs else b"",
        call_id=_requests.new_id(),
    )


def result_of(reply: procedures_pb2.CallResponse) -> Any:
    return _codec.decode(reply.result_json) if reply.result_json else None


def procedure_error(error: FailedPreconditionError) -> FailedPreconditionError:
    """A procedure's own exception as a ProcedureError (other refusals stay as they are)."""
    if error.field != "procedure" or type(error) is not FailedPreconditionError:
        return error
    return ProcedureError(
        error.message, field=error.field, rule=error.rule, trace_id=error.trace_id
    )


def procedure_list(reply: procedures_pb2.ListProceduresResponse) -> list[dict[str, Any]]:
    return [
        {
            "name": item.name,
            "parameters": item.parameters,
            "module": item.module,
            "description": item.description,
            "counters": dict(sorted(item.counters.items())),
        }
        for item in reply.procedures
    ]
