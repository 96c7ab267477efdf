"""The Procedures service: calls of deployed procedures, and their listing (an admin call)."""

from __future__ import annotations

import grpc

from coordinator.procedures.runner import Procedures
from coordinator.security.permissions import Permission
from coordinator.security.setup import Security
from coordinator.services.errors import unary
from grid.errors import NotFound
from shoal.v1 import procedures_pb2, procedures_pb2_grpc


class ProceduresService(procedures_pb2_grpc.ProceduresServicer):
    def __init__(self, procedures: Procedures, security: Security | None = None) -> None:
        self.procedures = procedures
        self.security = security

    @unary
    def Call(
        self, request: procedures_pb2.CallRequest, context: grpc.ServicerContext
    ) -> procedures_pb2.CallResponse:
        security = self.security
        authorize = (
            None if security is None else security.access_check(getattr(context, "identity", None))
        )
        try:
            result = self.procedures.call(
                request.name,
                request.args_json,
                request.kwargs_json,
                request.call_id,
                authorize=authorize,
            )
        except NotFound as error:
            if authorize is None or error.field != "name":
                raise
            # With auth on, the known names are listed only to those who may call them.
            raise NotFound(f"no procedure named '{request.name}'", field="name") from None
        return procedures_pb2.CallResponse(
            result_json=result.result_json, attempts=result.attempts, version=result.version
        )


class ProcedureAdminService(procedures_pb2_grpc.ProcedureAdminServicer):
    def __init__(self, procedures: Procedures, security: Security | None = None) -> None:
        self.procedures = procedures
        self.security = security

    @unary
    def ListProcedures(
        self, request: procedures_pb2.ListProceduresRequest, context: grpc.ServicerContext
    ) -> procedures_pb2.ListProceduresResponse:
        shown = (
            None
            if self.security is None
            else self.security.visible(getattr(context, "identity", None), Permission.PROCEDURES)
        )
        return procedures_pb2.ListProceduresResponse(
            procedures=[
                procedures_pb2.ProcedureInfo(
                    name=status.spec.name,
                    module=status.spec.module,
                    parameters=status.spec.parameters,
                    description=status.spec.description,
                    counters=status.counters,
                )
                for status in self.procedures.statuses()
                if shown is None or shown(status.spec.name)
            ]
        )
