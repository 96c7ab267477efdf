"""THE table of what every RPC needs: one rule per method, checked on every call.

A method missing here is refused to everyone when auth is on, and fails
tests/integration/test_role_matrix.py, which calls every method of every service with
and without each permission. To add a method: add a line to RULES naming the permission
and the request fields that hold map names (`field`, `repeated[].field`, `nested.field`),
or `authenticated()` for a method any signed-in caller may use, or `cluster(...)` for
one that touches no map. A method whose needs depend on its request beyond field paths
(SQL) takes a function from the request to its needs (`computed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from coordinator.security.permissions import Need, Permission
from coordinator.security.sql_needs import statement_needs

P = Permission


@dataclass(frozen=True)
class Rule:
    # (permission, field path) pairs; a path of "" means the cluster (pattern '*').
    fields: tuple[tuple[Permission, str], ...] = ()
    # Any authenticated principal may call it (it names no map, reveals no data).
    open: bool = False
    # Needs computed from the request (SQL).
    compute: Callable[[Any], list[Need]] | None = None
    # What the resource a path names is: map, pipeline, procedure, sandbox.
    kind: str = "map"
    # Written to the audit log even when allowed (administrative actions).
    audited: bool = False
    # The permission a test grants to pass this rule (for computed rules).
    permission: Permission | None = field(default=None)

    def needs(self, request: Any) -> list[Need]:
        if self.compute is not None:
            return self.compute(request)
        found: list[Need] = []
        for permission, path in self.fields:
            if not path:
                found.append(Need(permission, None, kind=self.kind))
                continue
            if "." not in path and "[" not in path:
                # One plain field (`map`, `name`): every call of the data path.
                names = [getattr(request, path)]
            else:
                names = list(_values(request, path.split(".")))
            # A request that names no map (an empty repeated field) still needs the
            # permission somewhere, so an unprivileged caller learns nothing from it.
            if not names:
                found.append(Need(permission, anywhere=True, kind=self.kind))
            found.extend(Need(permission, name, kind=self.kind) for name in names)
        return found

    def permissions(self) -> set[Permission]:
        if self.permission is not None:
            return {self.permission}
        return {permission for permission, _ in self.fields}


def _values(message: Any, parts: list[str]) -> Iterable[str]:
    head, rest = parts[0], parts[1:]
    repeated = head.endswith("[]")
    value = getattr(message, head.removesuffix("[]"))
    items = list(value) if repeated else [value]
    for item in items:
        if rest:
            yield from _values(item, rest)
        elif isinstance(item, str):
            yield item


def needs(permission: Permission, *paths: str, kind: str = "map", audited: bool = False) -> Rule:
    return Rule(fields=tuple((permission, path) for path in paths), kind=kind, audited=audited)


def cluster(permission: Permission, *, audited: bool = False) -> Rule:
    return Rule(fields=((permission, ""),), audited=audited)


def authenticated() -> Rule:
    return Rule(open=True)


def computed(
    compute: Callable[[Any], list[Need]], permission: Permission, *, audited: bool = False
) -> Rule:
    return Rule(compute=compute, permission=permission, audited=audited)


def _transaction_needs(request: Any) -> list[Need]:
    found = [Need(P.READ, read.map) for read in request.reads]
    found.extend(Need(P.WRITE, write.map) for write in request.writes)
    return found or [Need(P.WRITE, anywhere=True)]


def _statement_needs(request: Any) -> list[Need]:
    return statement_needs(request.statement)


def _maps_read(maps: Iterable[str]) -> list[Need]:
    """Reading the named maps, or every map (the cluster) when none is named."""
    names = list(maps)
    return [Need(P.READ, name) for name in names] or [Need(P.READ, None)]


def _sandbox_create_needs(request: Any) -> list[Need]:
    # A seed copies production's data: reading it is needed as much as the sandbox.
    found = [Need(P.SANDBOX, request.name, kind="sandbox")]
    if request.from_snapshot:
        found.extend(_maps_read(request.maps))
    return found


def _sandbox_diff_needs(request: Any) -> list[Need]:
    return [Need(P.SANDBOX, request.sandbox, kind="sandbox"), *_maps_read(request.maps)]


def _export_needs(request: Any) -> list[Need]:
    return _maps_read(request.maps)


RULES: dict[str, Rule] = {
    # Data
    "/shoal.v1.Data/Get": needs(P.READ, "map"),
    "/shoal.v1.Data/GetMany": needs(P.READ, "map"),
    "/shoal.v1.Data/Put": needs(P.WRITE, "map"),
    "/shoal.v1.Data/PutMany": needs(P.WRITE, "map"),
    "/shoal.v1.Data/Delete": needs(P.WRITE, "map"),
    "/shoal.v1.Data/Scan": needs(P.READ, "map"),
    "/shoal.v1.Data/ReadVersion": authenticated(),
    # Admin
    "/shoal.v1.Admin/CreateMap": needs(P.ADMIN, "name", audited=True),
    "/shoal.v1.Admin/DropMap": needs(P.ADMIN, "name", audited=True),
    "/shoal.v1.Admin/AlterMapSchema": needs(P.ADMIN, "name", audited=True),
    "/shoal.v1.Admin/DescribeMap": needs(P.READ, "name"),
    "/shoal.v1.Admin/ListMaps": authenticated(),
    "/shoal.v1.Admin/ClusterInfo": authenticated(),
    # Transactions
    "/shoal.v1.Transactions/Commit": Rule(compute=_transaction_needs, permission=P.WRITE),
    "/shoal.v1.Transactions/ListTransactions": cluster(P.ADMIN),
    "/shoal.v1.Transactions/TransactionStory": cluster(P.ADMIN),
    # Query
    "/shoal.v1.Query/Execute": computed(_statement_needs, P.SQL),
    # Sketches
    "/shoal.v1.Sketches/Create": needs(P.ADMIN, "name", audited=True),
    "/shoal.v1.Sketches/List": authenticated(),
    "/shoal.v1.Sketches/Add": needs(P.WRITE, "map"),
    "/shoal.v1.Sketches/Estimate": needs(P.READ, "map"),
    "/shoal.v1.Sketches/MergeEstimate": needs(P.READ, "map"),
    "/shoal.v1.Sketches/Frequency": needs(P.READ, "target.map"),
    "/shoal.v1.Sketches/Contains": needs(P.READ, "target.map"),
    "/shoal.v1.Sketches/Quantiles": needs(P.READ, "target.map"),
    "/shoal.v1.Sketches/Ranks": needs(P.READ, "target.map"),
    "/shoal.v1.Sketches/Top": needs(P.READ, "target.map"),
    "/shoal.v1.Sketches/Sample": needs(P.READ, "target.map"),
    "/shoal.v1.Sketches/Export": needs(P.READ, "map"),
    "/shoal.v1.Sketches/Accuracy": authenticated(),
    # Pipelines: the resource is the pipeline's name.
    "/shoal.v1.Pipelines/List": authenticated(),
    "/shoal.v1.Pipelines/Pause": needs(P.PIPELINES, "name", kind="pipeline", audited=True),
    "/shoal.v1.Pipelines/Resume": needs(P.PIPELINES, "name", kind="pipeline", audited=True),
    "/shoal.v1.Pipelines/Lag": needs(P.PIPELINES, "name", kind="pipeline"),
    # Replays and backfills run pipeline code the client sends, which may write any
    # map: starting and watching them is a cluster-wide permission.
    "/shoal.v1.Replays/Start": cluster(P.REPLAY, audited=True),
    "/shoal.v1.Replays/Get": cluster(P.REPLAY),
    "/shoal.v1.Replays/Follow": cluster(P.REPLAY),
    "/shoal.v1.Replays/Cancel": cluster(P.REPLAY, audited=True),
    "/shoal.v1.Replays/List": cluster(P.REPLAY),
    "/shoal.v1.Replays/Origin": needs(P.PIPELINES, "pipeline", kind="pipeline"),
    "/shoal.v1.Backfills/Begin": cluster(P.REPLAY, audited=True),
    "/shoal.v1.Backfills/Apply": cluster(P.REPLAY),
    "/shoal.v1.Backfills/Finish": cluster(P.REPLAY, audited=True),
    "/shoal.v1.Reconciliation/Reconcile": needs(
        P.PIPELINES, "pipeline", kind="pipeline", audited=True
    ),
    # Sandboxes: the resource is the sandbox's name; seeding, diffing and exporting read
    # production's maps too.
    "/shoal.v1.Sandboxes/Create": Rule(
        compute=_sandbox_create_needs, permission=P.SANDBOX, audited=True
    ),
    "/shoal.v1.Sandboxes/List": cluster(P.SANDBOX),
    "/shoal.v1.Sandboxes/Describe": needs(P.SANDBOX, "name", kind="sandbox"),
    "/shoal.v1.Sandboxes/Delete": needs(P.SANDBOX, "name", kind="sandbox", audited=True),
    "/shoal.v1.Sandboxes/Diff": Rule(compute=_sandbox_diff_needs, permission=P.SANDBOX),
    "/shoal.v1.Sandboxes/GetOperation": cluster(P.SANDBOX),
    "/shoal.v1.Sandboxes/WatchOperation": cluster(P.SANDBOX),
    "/shoal.v1.Sandboxes/ExportMaps": computed(_export_needs, P.READ),
    # Procedures: calling one needs `procedures` on its name; the maps it reads and
    # writes are checked against the caller's read and write before anything commits
    # (Security.access_check).
    "/shoal.v1.Procedures/Call": needs(P.PROCEDURES, "name", kind="procedure"),
    "/shoal.v1.ProcedureAdmin/ListProcedures": authenticated(),
    # Auth: changing who may do what is a cluster-wide permission.
    "/shoal.v1.Auth/CreateToken": cluster(P.AUTH, audited=True),
    "/shoal.v1.Auth/ListTokens": cluster(P.AUTH),
    "/shoal.v1.Auth/RevokeToken": cluster(P.AUTH, audited=True),
    "/shoal.v1.Auth/Grant": cluster(P.AUTH, audited=True),
    "/shoal.v1.Auth/Revoke": cluster(P.AUTH, audited=True),
    "/shoal.v1.Auth/SetMembership": cluster(P.AUTH, audited=True),
    "/shoal.v1.Auth/MapCertificate": cluster(P.AUTH, audited=True),
    "/shoal.v1.Auth/Describe": cluster(P.AUTH),
    "/shoal.v1.Auth/Audit": cluster(P.AUTH),
    "/shoal.v1.Auth/WhoAmI": authenticated(),
}
