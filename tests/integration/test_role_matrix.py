"""The role matrix: every method of every service, called by principals with and without
the permission its rule names, on map patterns that match and that do not.

Generated from one table, `coordinator/security/rules.py` RULES: the methods come from
the service descriptors of every `shoal.v1` module (as the RPC fuzz test finds them), so
a method without a rule fails here, and each rule says which permission and which
request fields (map names) it checks. For each guarded method:

* a principal holding the permission on a pattern that matches the request's map (or
  `*` for a method that names no map) gets past the check (any answer but
  UNAUTHENTICATED or PERMISSION_DENIED: an unknown map is NOT_FOUND, which is fine);
* the same permission on a pattern that does not match: PERMISSION_DENIED, naming the
  permission and the map;
* every other permission on `*`: PERMISSION_DENIED;
* no token at all: UNAUTHENTICATED.

A method a .proto declares but no coordinator serves yet (UNIMPLEMENTED) must have its
rule all the same; it is called once it is served.

A method open to any signed-in principal is called by one holding no grant at all.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

import shoal.v1
from coordinator.security.permissions import Permission
from coordinator.security.rules import RULES, Rule
from shoal import Client
from tests.support.secured import BOOTSTRAP_TOKEN, secured_server
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

CALL_TIMEOUT_S = 20
MATCHING_MAP = "rm-orders"
MATCHING_PATTERN = "rm-*"
OTHER_PATTERN = "zz-*"
REFUSALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}

# Requests of the rules computed from the request (not from field paths): how to make
# one that needs the rule's permission on the map given. A new computed rule needs an
# entry here (the test says so).
EXAMPLES: dict[str, Callable[[Any, str], None]] = {
    "/shoal.v1.Query/Execute": lambda request, name: setattr(
        request, "statement", f'SELECT * FROM "{name}"'
    ),
    "/shoal.v1.Transactions/Commit": lambda request, name: setattr(
        request.writes.add(), "map", name
    ),
    "/shoal.v1.Sandboxes/Create": lambda request, name: setattr(request, "name", name),
    "/shoal.v1.Sandboxes/Diff": lambda request, name: (
        setattr(request, "sandbox", name),
        request.maps.append(name),
    ),
    "/shoal.v1.Sandboxes/ExportMaps": lambda request, name: request.maps.append(name),
}


def service_methods() -> list[MethodDescriptor]:
    found: list[MethodDescriptor] = []
    for info in pkgutil.iter_modules(shoal.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"shoal.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            found.extend(service.methods)
    return sorted(found, key=lambda method: method.full_name)


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def set_path(message: Any, parts: list[str], value: str) -> None:
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        item = getattr(message, head[:-2]).add()
        if rest:
            set_path(item, rest, value)
        return
    if rest:
        set_path(getattr(message, head), rest, value)
        return
    setattr(message, head, value)


def request_for(method: MethodDescriptor, rule: Rule, name: str) -> Any:
    request = message_factory.GetMessageClass(method.input_type)()
    path = path_of(method)
    if rule.compute is not None:
        assert path in EXAMPLES, f"{path}: a computed rule needs an entry in EXAMPLES"
        EXAMPLES[path](request, name)
        return request
    for _, field_path in rule.fields:
        if field_path:
            set_path(request, field_path.split("."), name)
    return request


def call(channel: grpc.Channel, method: MethodDescriptor, request: Any, token: str | None) -> Any:
    """The status code of the call (OK when it succeeded), and its details."""
    metadata = [("authorization", f"Bearer {token}")] if token else []
    path = path_of(method)
    response_class = message_factory.GetMessageClass(method.output_type)
    try:
        if method.server_streaming:
            stream = channel.unary_stream(
                path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_class.FromString,
            )(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
            try:
                for _ in stream:
                    break
            finally:
                stream.cancel()
        else:
            channel.unary_unary(
                path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_class.FromString,
            )(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


class Tokens:
    """Principals made on demand, one per set of grants, cached for the whole test."""

    def __init__(self, admin: Client) -> None:
        self.admin = admin
        self.made: dict[tuple[str, ...], str] = {}

    def holding(self, *roles: str) -> str:
        key = tuple(sorted(roles))
        if key not in self.made:
            principal = f"matrix-{len(self.made)}"
            self.made[key] = self.admin.auth.create_token(principal, list(key)).token
        return self.made[key]


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = secured_server(Path(tmp_path_factory.mktemp("matrix")) / "data").start()
    try:
        yield server
    finally:
        server.stop()


def test_every_method_of_every_service_has_a_rule() -> None:
    missing = [path_of(method) for method in service_methods() if path_of(method) not in RULES]
    assert missing == [], (
        "methods without a permission rule: add each to RULES in coordinator/security/rules.py "
        f"(docs/architecture/security.md, 'Why one table of permissions'): {missing}"
    )
    stale = sorted(set(RULES) - {path_of(method) for method in service_methods()})
    assert stale == [], f"rules for methods no service declares: {stale}"


def test_each_method_allows_its_permission_on_matching_maps_only(
    matrix_server: ServerProcess,
) -> None:
    served = [method for method in service_methods() if path_of(method) in RULES]
    failures: list[str] = []
    with (
        Client(matrix_server.target, token=BOOTSTRAP_TOKEN) as admin,
        grpc.insecure_channel(matrix_server.target) as channel,
    ):
        tokens = Tokens(admin)
        for method in served:
            path = path_of(method)
            rule = RULES[path]
            request = request_for(method, rule, MATCHING_MAP)

            def expect(
                token: str | None,
                wanted: str,
                why: str,
                method: Any = method,
                request: Any = request,
                path: str = path,
            ) -> None:
                code, details = call(channel, method, request, token)
                refused = code in REFUSALS
                if wanted == "pass" and refused:
                    failures.append(f"{path} {why}: refused {code.name} {details!r}")
                elif wanted != "pass" and code.name != wanted:
                    failures.append(f"{path} {why}: wanted {wanted}, got {code.name} {details!r}")

            code, _ = call(channel, method, request, None)
            if code == grpc.StatusCode.UNIMPLEMENTED:
                # Declared in a .proto but not served yet (its rule is still required).
                continue
            expect(None, "UNAUTHENTICATED", "without a token")
            if rule.open:
                expect(tokens.holding(), "pass", "open method, principal without grants")
                continue
            # Every permission the request needs (a rule may need two: a sandbox diff
            # needs `sandbox` on the sandbox and `read` on the maps), on the matching
            # pattern, or on `*` for what names no map.
            needs = rule.needs(request)
            assert not any(need.anywhere for need in needs), f"{path}: example names no map"
            needed = sorted({need.permission for need in needs})
            matching = sorted(
                {f"{n.permission}:{MATCHING_PATTERN if n.resource else '*'}" for n in needs}
            )
            expect(tokens.holding(*matching), "pass", f"holding {matching}")
            expect(
                tokens.holding(*(f"{permission}:{OTHER_PATTERN}" for permission in needed)),
                "PERMISSION_DENIED",
                f"{needed} on a pattern that does not match",
            )
            for permission in needed:
                others = [f"{other}:*" for other in Permission if other != permission]
                expect(
                    tokens.holding(*others),
                    "PERMISSION_DENIED",
                    f"every permission but {permission}",
                )
    assert failures == [], "\n".join(failures)


def test_a_denial_names_the_permission_and_the_map(matrix_server: ServerProcess) -> None:
    with Client(matrix_server.target, token=BOOTSTRAP_TOKEN) as admin:
        reader = admin.auth.create_token("matrix-reader", ["read:rm-*"]).token
    method = next(m for m in service_methods() if path_of(m) == "/shoal.v1.Data/Put")
    request = request_for(method, RULES["/shoal.v1.Data/Put"], "rm-orders")
    with grpc.insecure_channel(matrix_server.target) as channel:
        code, details = call(channel, method, request, reader)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == "principal 'matrix-reader' lacks permission 'write' on map 'rm-orders'"
