"""The Auth service: tokens, grants, teams, certificate mappings and the audit log."""

from __future__ import annotations

from typing import Any

import grpc

from coordinator.security.authentication import Identity
from coordinator.security.setup import Security
from coordinator.security.state import AuthState, grant_texts
from coordinator.services.errors import unary
from shoal.v1 import auth_pb2, auth_pb2_grpc

AUDIT_LINES_DEFAULT = 100


def _caller(context: Any) -> str:
    identity = getattr(context, "identity", None)
    return identity.principal if isinstance(identity, Identity) else ""


def _subject(state: AuthState, name: str, *, team: bool) -> auth_pb2.SubjectInfo:
    if team:
        return auth_pb2.SubjectInfo(
            name=name, team=True, grants=grant_texts(state.team_grants.get(name, frozenset()))
        )
    return auth_pb2.SubjectInfo(
        name=name,
        grants=grant_texts(state.principal_grants.get(name, frozenset())),
        teams=list(state.memberships.get(name, ())),
    )


class AuthService(auth_pb2_grpc.AuthServicer):
    def __init__(self, security: Security) -> None:
        self.security = security

    def _audit(self, context: Any, action: str, detail: str) -> None:
        """Auth changes are audited with what changed, on top of the gate's line."""
        if not self.security.enabled:
            return
        identity = getattr(context, "identity", None)
        self.security.audit.record(
            principal=_caller(context),
            action=f"/shoal.v1.Auth/{action}",
            outcome="done",
            peer=identity.peer if isinstance(identity, Identity) else "",
            detail=detail,
        )

    @unary
    def CreateToken(
        self, request: auth_pb2.CreateTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CreateTokenResponse:
        token, record = self.security.accounts.create_token(
            request.principal,
            list(request.roles),
            list(request.teams),
            description=request.description,
            ttl_s=request.ttl_s,
            created_by=_caller(context),
        )
        self._audit(
            context,
            "CreateToken",
            f"token {record.token_id} for {record.principal}; roles {', '.join(request.roles)}",
        )
        return auth_pb2.CreateTokenResponse(
            token=token, token_id=record.token_id, principal=record.principal
        )

    @unary
    def ListTokens(
        self, request: auth_pb2.ListTokensRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListTokensResponse:
        return auth_pb2.ListTokensResponse(
            tokens=[
                auth_pb2.TokenInfo(
                    token_id=record.token_id,
                    principal=record.principal,
                    description=record.description,
                    created_ms=record.created_ms,
                    expires_ms=record.expires_ms,
                    created_by=record.created_by,
                )
                for record in self.security.accounts.list_tokens(request.principal)
            ]
        )

    @unary
    def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RevokeTokenResponse:
        revoked = self.security.accounts.revoke_tokens(
            token_id=request.token_id, principal=request.principal
        )
        self._audit(
            context,
            "RevokeToken",
            f"revoked {revoked} token(s) of "
            + (f"id {request.token_id}" if request.token_id else request.principal),
        )
        return auth_pb2.RevokeTokenResponse(revoked=revoked)

    def _change(
        self, request: auth_pb2.GrantRequest, context: Any, *, add: bool
    ) -> auth_pb2.SubjectInfo:
        accounts = self.security.accounts
        accounts.change_grants(
            principal=request.principal, team=request.team, roles=list(request.roles), add=add
        )
        who = request.principal or f"team {request.team}"
        self._audit(context, "Grant" if add else "Revoke", f"{who}: {', '.join(request.roles)}")
        state = accounts.store.state
        if request.team:
            return _subject(state, request.team, team=True)
        return _subject(state, request.principal, team=False)

    @unary
    def Grant(
        self, request: auth_pb2.GrantRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SubjectInfo:
        return self._change(request, context, add=True)

    @unary
    def Revoke(
        self, request: auth_pb2.GrantRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SubjectInfo:
        return self._change(request, context, add=False)

    @unary
    def SetMembership(
        self, request: auth_pb2.MembershipRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SubjectInfo:
        accounts = self.security.accounts
        accounts.set_membership(request.principal, request.team, remove=request.remove)
        self._audit(
            context,
            "SetMembership",
            f"{request.principal} {'left' if request.remove else 'joined'} team {request.team}",
        )
        return _subject(accounts.store.state, request.principal, team=False)

    @unary
    def MapCertificate(
        self, request: auth_pb2.MapCertificateRequest, context: grpc.ServicerContext
    ) -> auth_pb2.MapCertificateResponse:
        self.security.accounts.map_certificate(request.common_name, request.principal)
        self._audit(
            context,
            "MapCertificate",
            f"certificate CN={request.common_name} -> {request.principal or '(removed)'}",
        )
        return auth_pb2.MapCertificateResponse(
            common_name=request.common_name, principal=request.principal
        )

    @unary
    def Describe(
        self, request: auth_pb2.DescribeRequest, context: grpc.ServicerContext
    ) -> auth_pb2.DescribeResponse:
        state = self.security.store.state
        return auth_pb2.DescribeResponse(
            principals=[
                _subject(state, name, team=False) for name in sorted(state.principal_grants)
            ],
            teams=[_subject(state, name, team=True) for name in sorted(state.team_grants)],
            certificates=[
                auth_pb2.CertificateMapping(common_name=name, principal=principal)
                for name, principal in sorted(state.certificates.items())
            ],
        )

    @unary
    def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: grpc.ServicerContext
    ) -> auth_pb2.WhoAmIResponse:
        if not self.security.enabled:
            return auth_pb2.WhoAmIResponse(auth_enabled=False)
        principal = _caller(context)
        state = self.security.store.state
        return auth_pb2.WhoAmIResponse(
            principal=principal,
            teams=list(state.memberships.get(principal, ())),
            grants=grant_texts(state.grants_of(principal)),
            auth_enabled=True,
        )

    @unary
    def Audit(
        self, request: auth_pb2.AuditRequest, context: grpc.ServicerContext
    ) -> auth_pb2.AuditResponse:
        audit = self.security.audit
        return auth_pb2.AuditResponse(
            lines_json=audit.tail(
                request.limit or AUDIT_LINES_DEFAULT,
                principal=request.principal,
                auth_only=request.auth_only,
            )
        )
