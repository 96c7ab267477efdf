"""The gate every call passes: full checks, the quick path's memory, and its limits
(a new snapshot of the auth map, an expiry, another map, a failing address)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from coordinator.clock import ManualClock
from coordinator.security import tokens
from coordinator.security.authentication import Authenticator
from coordinator.security.gate import Gate
from coordinator.security.permissions import parse_role
from coordinator.security.rules import RULES
from coordinator.security.state import AuthState, TokenRecord
from shoal.v1 import data_pb2


class Refused(Exception):
    pass


class Context:
    def __init__(self, token: str | None, peer: str = "ipv4:10.0.0.1:4000") -> None:
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._peer = peer

    def invocation_metadata(self) -> Any:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, Any]:
        return {}

    async def abort(self, code: Any, details: str) -> None:
        raise Refused(code.name, details)


class Audit:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def record(self, **line: Any) -> None:
        self.lines.append(line)


class World:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.token_id, self.token = tokens.new_token()
        self.audit = Audit()
        self.state = self.snapshot(expires_ms=0)
        authenticator = Authenticator(lambda: self.state, self.clock.now_ms)
        self.gate = Gate(
            authenticator,
            lambda: self.state,
            RULES,
            self.audit,  # type: ignore[arg-type]
            mutual_tls=False,
            now_ms=self.clock.now_ms,
        )

    def snapshot(self, *, expires_ms: int, revoked: bool = False) -> AuthState:
        grants = frozenset(parse_role("reader:orders*"))
        record = TokenRecord(
            self.token_id,
            "svc",
            tokens.hash_secret(tokens.parse(self.token).secret),
            expires_ms=expires_ms,
        )
        return AuthState(
            tokens={} if revoked else {self.token_id: record},
            principal_grants={"svc": grants},
            effective={"svc": grants},
        )

    def get(self, map_name: str, token: str | None = None) -> Any:
        request = data_pb2.GetRequest(map=map_name, key="k")
        context = Context(self.token if token is None else token)
        return asyncio.run(self.gate.admit("/shoal.v1.Data/Get", request, context))


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    made.gate.close()


def test_allowed_calls_are_remembered_and_answered_again(world: World) -> None:
    first = world.get("orders")
    assert (first.principal, first.peer) == ("svc", "10.0.0.1")
    assert (
        world.gate._quick(
            "/shoal.v1.Data/Get", data_pb2.GetRequest(map="orders"), Context(world.token)
        )
        is not None
    )
    assert world.get("orders").principal == "svc"


def test_another_map_is_checked_in_full_and_refused(world: World) -> None:
    world.get("orders")
    with pytest.raises(Refused) as refused:
        world.get("customers")
    assert refused.value.args == (
        "PERMISSION_DENIED",
        "principal 'svc' lacks permission 'read' on map 'customers'",
    )
    assert world.audit.lines[-1]["outcome"] == "denied"


def test_a_new_snapshot_forgets_what_was_remembered(world: World) -> None:
    world.get("orders")
    world.state = world.snapshot(expires_ms=0, revoked=True)
    with pytest.raises(Refused) as refused:
        world.get("orders")
    assert refused.value.args[0] == "UNAUTHENTICATED"


def test_an_expired_token_is_refused_on_the_quick_path_too(world: World) -> None:
    world.state = world.snapshot(expires_ms=world.clock.now_ms() + 1000)
    world.get("orders")
    world.get("orders")
    world.clock.advance_ms(1001)
    with pytest.raises(Refused) as refused:
        world.get("orders")
    assert refused.value.args[0] == "UNAUTHENTICATED"


def test_a_wrong_token_never_takes_the_quick_path(world: World) -> None:
    world.get("orders")
    with pytest.raises(Refused) as refused:
        world.get("orders", token=f"shoal_{world.token_id}_not-the-secret")
    assert refused.value.args[0] == "UNAUTHENTICATED"


def test_a_stream_stops_standing_when_its_token_expires_or_is_revoked(world: World) -> None:
    world.state = world.snapshot(expires_ms=world.clock.now_ms() + 1000)
    identity = world.get("orders")
    assert world.gate.still_valid(identity)
    world.clock.advance_ms(1001)
    assert not world.gate.still_valid(identity)
    world.state = world.snapshot(expires_ms=0)
    assert world.gate.still_valid(identity)
    world.state = world.snapshot(expires_ms=0, revoked=True)
    assert not world.gate.still_valid(identity)
