"""Changes to who may do what: tokens, grants, teams, certificate mappings. Each is a
read-modify-write of the auth map's records through `AuthStore.update`."""

from __future__ import annotations

import re
from typing import Any

from coordinator.security import tokens
from coordinator.security.permissions import Grant, parse_role
from coordinator.security.state import (
    CERTIFICATE_PREFIX,
    PRINCIPAL_PREFIX,
    TEAM_PREFIX,
    TOKEN_PREFIX,
    TokenRecord,
    grant_texts,
    grants_from,
)
from coordinator.security.store import AuthStore
from grid.errors import InvalidArgument, NotFound

NAME = re.compile(r"^[A-Za-z0-9_.@:\-]{1,128}$")
BOOTSTRAP_PRINCIPAL = "admin"


def check_name(name: str, field: str) -> str:
    if not NAME.match(name):
        raise InvalidArgument(
            f"{field} {name!r} must be 1 to 128 letters, digits or _ . @ : -", field=field
        )
    return name


# Ten years: a longer lifetime is a mistake, and ttl_s * 1000 must stay a 64-bit time.
TOKEN_TTL_S_MAX = 10 * 365 * 24 * 3600


def grants_of_roles(roles: list[str]) -> set[Grant]:
    found: set[Grant] = set()
    for role in roles:
        found.update(parse_role(role))
    return found


class Accounts:
    def __init__(self, store: AuthStore) -> None:
        self.store = store

    def create_token(
        self,
        principal: str,
        roles: list[str],
        teams: list[str],
        *,
        description: str = "",
        ttl_s: int = 0,
        created_by: str = "",
        token: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """(the token, its record): the token itself is returned here only."""
        check_name(principal, "principal")
        if not 0 <= ttl_s <= TOKEN_TTL_S_MAX:
            raise InvalidArgument(
                f"ttl_s must be 0 (no expiry) to {TOKEN_TTL_S_MAX} s (ten years), not {ttl_s}",
                field="ttl_s",
            )
        for team in teams:
            check_name(team, "teams")
        granted = grants_of_roles(roles)
        if token is None:
            token_id, token = tokens.new_token()
            secret = tokens.parse(token).secret
        else:
            parsed = tokens.parse(token)
            token_id, secret = parsed.token_id, parsed.secret
        now_ms = self.store.clock.now_ms()
        record = TokenRecord(
            token_id=token_id,
            principal=principal,
            hash=tokens.hash_secret(secret),
            created_ms=now_ms,
            expires_ms=now_ms + ttl_s * 1000 if ttl_s else 0,
            description=description[:200],
            created_by=created_by,
        )

        def principal_change(current: dict[str, Any] | None) -> dict[str, Any]:
            current = current or {}
            grants = grants_from(current.get("grants")) | granted
            members = sorted({*(current.get("teams") or ()), *teams})
            return {"grants": grant_texts(frozenset(grants)), "teams": members}

        self.store.update(
            {
                TOKEN_PREFIX + token_id: lambda _: record.to_json(),
                PRINCIPAL_PREFIX + principal: principal_change,
            }
        )
        return token, record

    def list_tokens(self, principal: str = "") -> list[TokenRecord]:
        records = self.store.state.tokens.values()
        return sorted(
            (r for r in records if not principal or r.principal == principal),
            key=lambda r: (r.principal, r.created_ms),
        )

    def revoke_tokens(self, *, token_id: str = "", principal: str = "") -> int:
        if bool(token_id) == bool(principal):
            raise InvalidArgument(
                "give a token_id or a principal (one of the two)", field="token_id"
            )
        state = self.store.state
        ids = (
            [token_id]
            if token_id
            else [r.token_id for r in state.tokens.values() if r.principal == principal]
        )
        ids = [i for i in ids if i in state.tokens]
        if token_id and not ids:
            raise NotFound(f"no token with id {token_id!r}", field="token_id")
        if ids:
            self.store.update({TOKEN_PREFIX + i: lambda _: None for i in ids})
        return len(ids)

    def change_grants(self, *, principal: str, team: str, roles: list[str], add: bool) -> str:
        """Returns the key changed."""
        if bool(principal) == bool(team):
            raise InvalidArgument("give a principal or a team (one of the two)", field="principal")
        key = (
            PRINCIPAL_PREFIX + check_name(principal, "principal")
            if principal
            else (TEAM_PREFIX + check_name(team, "team"))
        )
        granted = grants_of_roles(roles)

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            current = dict(current or {})
            grants = grants_from(current.get("grants"))
            grants = grants | granted if add else grants - granted
            current["grants"] = grant_texts(frozenset(grants))
            return current

        self.store.update({key: change})
        return key

    def set_membership(self, principal: str, team: str, *, remove: bool) -> None:
        check_name(principal, "principal")
        check_name(team, "team")

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            current = dict(current or {"grants": []})
            members = set(current.get("teams") or ())
            if remove:
                members.discard(team)
            else:
                members.add(team)
            current["teams"] = sorted(members)
            return current

        self.store.update({PRINCIPAL_PREFIX + principal: change})

    def map_certificate(self, common_name: str, principal: str) -> None:
        if not common_name or len(common_name) > 256 or not common_name.isprintable():
            raise InvalidArgument(
                "common_name must be 1 to 256 printable characters", field="common_name"
            )
        if principal:
            check_name(principal, "principal")
        document = {"principal": principal} if principal else None
        self.store.update({CERTIFICATE_PREFIX + common_name: lambda _: document})

    def bootstrap(self, token: str | None, *, created_by: str = "bootstrap") -> str | None:
        """At first start (an empty auth map): the admin principal with every permission
        and its token. Returns the token when one was made here, None when the map was
        not empty or the token was given."""
        if not self.store.refresh().is_empty():
            return None
        made, _ = self.create_token(
            BOOTSTRAP_PRINCIPAL,
            ["superuser:*"],
            [],
            description="bootstrap admin",
            created_by=created_by,
            token=token,
        )
        return None if token else made
