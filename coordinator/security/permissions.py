"""Permissions, roles and grants over map-name patterns, and the check of one need.

A grant is one permission over one pattern (`write` on `orders*`). A role is a name
for a set of permissions (`writer` is read and write), given over a pattern:
`writer:orders*` is two grants. A pattern is a map name where `*` stands for any run
of characters; the pattern `*` alone also covers what belongs to no map (the cluster:
transactions in flight, auth itself).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from grid.errors import InvalidArgument


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    SQL = "sql"
    # Maps and schemas: create, alter, drop.
    ADMIN = "admin"
    PIPELINES = "pipelines"
    PROCEDURES = "procedures"
    REPLAY = "replay"
    SANDBOX = "sandbox"
    # Tokens, grants, teams, the audit log.
    AUTH = "auth"


ALL = frozenset(Permission)
ROLES: dict[str, frozenset[Permission]] = {
    "reader": frozenset({Permission.READ}),
    "writer": frozenset({Permission.READ, Permission.WRITE}),
    "analyst": frozenset({Permission.READ, Permission.SQL}),
    "operator": frozenset({Permission.PIPELINES, Permission.REPLAY, Permission.SANDBOX}),
    # A team's own maps and pipelines: everything but auth.
    "owner": ALL - {Permission.AUTH},
    "superuser": ALL,
}
PATTERN = re.compile(r"^[A-Za-z0-9_.:\-*]{1,256}$")
# The system map holding tokens and grants: reading it takes the auth permission.
AUTH_MAP = "__auth"


@dataclass(frozen=True, order=True)
class Grant:
    permission: Permission
    pattern: str

    def __str__(self) -> str:
        return f"{self.permission}:{self.pattern}"

    def covers(self, resource: str | None) -> bool:
        if resource is None:
            return self.pattern == "*"
        return _compiled(self.pattern).fullmatch(resource) is not None


def pattern_matches(pattern: str, name: str) -> bool:
    """Whether a map-name pattern (`*` for any run of characters) matches `name`."""
    return _compiled(pattern).fullmatch(name) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def parse_role(text: str) -> list[Grant]:
    """`writer:orders*` (a role or a single permission, then a pattern) as its grants."""
    name, separator, pattern = text.strip().partition(":")
    if not separator or not pattern:
        raise InvalidArgument(
            f"role {text!r} must be NAME:PATTERN, like writer:orders* "
            f"(names: {', '.join([*ROLES, *Permission])})",
            field="roles",
        )
    if not PATTERN.match(pattern):
        raise InvalidArgument(
            f"pattern {pattern!r} may hold letters, digits, _ . : - and * only", field="roles"
        )
    if name in ROLES:
        permissions = ROLES[name]
    else:
        try:
            permissions = frozenset({Permission(name)})
        except ValueError:
            raise InvalidArgument(
                f"unknown role or permission {name!r} (known: {', '.join([*ROLES, *Permission])})",
                field="roles",
            ) from None
    return sorted(Grant(permission, pattern) for permission in permissions)


class Need(NamedTuple):
    """One permission a call needs: on a map, on the cluster (`resource` None), or on any
    map at all (`anywhere`: a statement that does not parse still needs `sql` somewhere).
    A named tuple: one is made per call, and a frozen dataclass costs several times more."""

    permission: Permission
    resource: str | None = None
    anywhere: bool = False
    # What the resource names: a map, a pipeline, a procedure, a sandbox.
    kind: str = "map"

    def effective(self) -> Need:
        """Reading or writing the auth map itself takes the auth permission."""
        if self.resource == AUTH_MAP:
            return Need(Permission.AUTH, None)
        return self

    def met_by(self, grants: frozenset[Grant]) -> bool:
        need = self.effective()
        if need.anywhere:
            return any(grant.permission == need.permission for grant in grants)
        return any(
            grant.permission == need.permission and grant.covers(need.resource) for grant in grants
        )

    def describe(self) -> str:
        need = self.effective()
        if need.anywhere:
            return f"permission '{need.permission}' on some {need.kind}"
        if need.resource is None:
            return f"permission '{need.permission}' on the cluster (pattern '*')"
        return f"permission '{need.permission}' on {need.kind} '{need.resource}'"
