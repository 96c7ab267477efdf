"""`client.auth`: tokens, grants, teams, certificate mappings and the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal._client import Client


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    principal: str

    def __repr__(self) -> str:
        # The token stays out of reprs (logs, tracebacks, notebooks).
        return f"IssuedToken(token_id={self.token_id!r}, principal={self.principal!r})"


def _stub(stubs: Any) -> Any:
    from shoal.v1 import auth_pb2_grpc

    stub = stubs.extra.get("auth")
    if stub is None:
        stub = stubs.extra["auth"] = auth_pb2_grpc.AuthStub(stubs.channel)
    return stub


def _subject(info: Any) -> dict[str, Any]:
    described: dict[str, Any] = {"name": info.name, "grants": list(info.grants)}
    if info.team:
        described["team"] = True
    else:
        described["teams"] = list(info.teams)
    return described


class Auth:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, method: str, request: Any, *, idempotent: bool = False) -> Any:
        return self._client._call(
            lambda stubs: getattr(_stub(stubs), method), request, idempotent=idempotent
        )

    def create_token(
        self,
        principal: str,
        roles: Sequence[str] = (),
        *,
        teams: Sequence[str] = (),
        description: str = "",
        ttl_s: int = 0,
    ) -> IssuedToken:
        """A new bearer token for ``principal``, granting it ``roles`` (``writer:orders*``).
        The token is in this answer only."""
        from shoal.v1 import auth_pb2

        reply = self._call(
            "CreateToken",
            auth_pb2.CreateTokenRequest(
                principal=principal,
                roles=list(roles),
                teams=list(teams),
                description=description,
                ttl_s=ttl_s,
            ),
        )
        return IssuedToken(reply.token, reply.token_id, reply.principal)

    def list_tokens(self, principal: str = "") -> list[dict[str, Any]]:
        from shoal.v1 import auth_pb2

        reply = self._call(
            "ListTokens", auth_pb2.ListTokensRequest(principal=principal), idempotent=True
        )
        return [
            {
                "token_id": item.token_id,
                "principal": item.principal,
                "description": item.description,
                "created_ms": item.created_ms,
                "expires_ms": item.expires_ms,
                "created_by": item.created_by,
            }
            for item in reply.tokens
        ]

    def revoke_token(self, token_id: str = "", *, principal: str = "") -> int:
        """Revokes one token, or every token of ``principal``; returns how many."""
        from shoal.v1 import auth_pb2

        reply = self._call(
            "RevokeToken",
            auth_pb2.RevokeTokenRequest(token_id=token_id, principal=principal),
            idempotent=True,
        )
        return int(reply.revoked)

    def grant(self, roles: Sequence[str], *, principal: str = "", team: str = "") -> dict[str, Any]:
        from shoal.v1 import auth_pb2

        request = auth_pb2.GrantRequest(principal=principal, team=team, roles=list(roles))
        return _subject(self._call("Grant", request, idempotent=True))

    def revoke(
        self, roles: Sequence[str], *, principal: str = "", team: str = ""
    ) -> dict[str, Any]:
        from shoal.v1 import auth_pb2

        request = auth_pb2.GrantRequest(principal=principal, team=team, roles=list(roles))
        return _subject(self._call("Revoke", request, idempotent=True))

    def join_team(self, principal: str, team: str) -> dict[str, Any]:
        from shoal.v1 import auth_pb2

        request = auth_pb2.MembershipRequest(principal=principal, team=team)
        return _subject(self._call("SetMembership", request, idempotent=True))

    def leave_team(self, principal: str, team: str) -> dict[str, Any]:
        from shoal.v1 import auth_pb2

        request = auth_pb2.MembershipRequest(principal=principal, team=team, remove=True)
        return _subject(self._call("SetMembership", request, idempotent=True))

    def map_certificate(self, common_name: str, principal: str) -> None:
        """Calls with a client certificate of this common name act as ``principal``
        (an empty principal removes the mapping)."""
        from shoal.v1 import auth_pb2

        self._call(
            "MapCertificate",
            auth_pb2.MapCertificateRequest(common_name=common_name, principal=principal),
            idempotent=True,
        )

    def describe(self) -> dict[str, Any]:
        from shoal.v1 import auth_pb2

        reply = self._call("Describe", auth_pb2.DescribeRequest(), idempotent=True)
        return {
            "principals": [_subject(item) for item in reply.principals],
            "teams": [_subject(item) for item in reply.teams],
            "certificates": {item.common_name: item.principal for item in reply.certificates},
        }

    def whoami(self) -> dict[str, Any]:
        from shoal.v1 import auth_pb2

        reply = self._call("WhoAmI", auth_pb2.WhoAmIRequest(), idempotent=True)
        return {
            "principal": reply.principal,
            "teams": list(reply.teams),
            "grants": list(reply.grants),
            "auth_enabled": reply.auth_enabled,
        }

    def audit(
        self, limit: int = 100, *, principal: str = "", auth_only: bool = False
    ) -> list[dict[str, Any]]:
        """The newest lines of the coordinator's audit log, oldest first."""
        from shoal.v1 import auth_pb2

        reply = self._call(
            "Audit",
            auth_pb2.AuditRequest(limit=limit, principal=principal, auth_only=auth_only),
            idempotent=True,
        )
        return [json.loads(line) for line in reply.lines_json]
