"""What the auth map holds, as one immutable snapshot: tokens, principals, teams, and
client certificates mapped to principals. Built from the map's records; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.security.permissions import Grant, Permission

TOKEN_PREFIX = "token/"
PRINCIPAL_PREFIX = "principal/"
TEAM_PREFIX = "team/"
CERTIFICATE_PREFIX = "cert/"


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    principal: str
    hash: str
    created_ms: int = 0
    expires_ms: int = 0
    description: str = ""
    created_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "hash": self.hash,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "description": self.description,
            "created_by": self.created_by,
        }

    @staticmethod
    def from_json(token_id: str, document: Mapping[str, Any]) -> TokenRecord:
        return TokenRecord(
            token_id=token_id,
            principal=str(document["principal"]),
            hash=str(document["hash"]),
            created_ms=int(document.get("created_ms", 0)),
            expires_ms=int(document.get("expires_ms", 0)),
            description=str(document.get("description", "")),
            created_by=str(document.get("created_by", "")),
        )


def grants_from(texts: Any) -> frozenset[Grant]:
    found: set[Grant] = set()
    for text in texts or ():
        permission, _, pattern = str(text).partition(":")
        try:
            found.add(Grant(Permission(permission), pattern))
        except ValueError:
            continue  # A permission this version does not know grants nothing.
    return frozenset(found)


def grant_texts(grants: frozenset[Grant]) -> list[str]:
    return [str(grant) for grant in sorted(grants)]


@dataclass(frozen=True)
class AuthState:
    tokens: Mapping[str, TokenRecord] = field(default_factory=dict)
    principal_grants: Mapping[str, frozenset[Grant]] = field(default_factory=dict)
    memberships: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    team_grants: Mapping[str, frozenset[Grant]] = field(default_factory=dict)
    certificates: Mapping[str, str] = field(default_factory=dict)
    # Each principal's own grants and its teams', computed once per snapshot.
    effective: Mapping[str, frozenset[Grant]] = field(default_factory=dict)

    @staticmethod
    def from_records(records: Mapping[str, Mapping[str, Any]]) -> AuthState:
        tokens: dict[str, TokenRecord] = {}
        principal_grants: dict[str, frozenset[Grant]] = {}
        memberships: dict[str, tuple[str, ...]] = {}
        team_grants: dict[str, frozenset[Grant]] = {}
        certificates: dict[str, str] = {}
        for key, document in records.items():
            try:
                if key.startswith(TOKEN_PREFIX):
                    token_id = key[len(TOKEN_PREFIX) :]
                    tokens[token_id] = TokenRecord.from_json(token_id, document)
                elif key.startswith(PRINCIPAL_PREFIX):
                    name = key[len(PRINCIPAL_PREFIX) :]
                    principal_grants[name] = grants_from(document.get("grants"))
                    memberships[name] = tuple(str(t) for t in document.get("teams") or ())
                elif key.startswith(TEAM_PREFIX):
                    team_grants[key[len(TEAM_PREFIX) :]] = grants_from(document.get("grants"))
                elif key.startswith(CERTIFICATE_PREFIX):
                    certificates[key[len(CERTIFICATE_PREFIX) :]] = str(document["principal"])
            except (KeyError, TypeError, ValueError):
                continue  # A damaged record grants nothing.
        effective = {
            name: grants.union(
                *(team_grants.get(team, frozenset()) for team in memberships.get(name, ()))
            )
            for name, grants in principal_grants.items()
        }
        return AuthState(
            tokens=tokens,
            principal_grants=principal_grants,
            memberships=memberships,
            team_grants=team_grants,
            certificates=certificates,
            effective=effective,
        )

    def grants_of(self, principal: str) -> frozenset[Grant]:
        return self.effective.get(principal, frozenset())

    def is_empty(self) -> bool:
        return not (self.tokens or self.principal_grants or self.team_grants)
