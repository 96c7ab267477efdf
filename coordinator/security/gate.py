"""The check every call passes before its handler runs, on the event loop: who it is
from (authentication.py), then whether its principal holds every permission the RPC's
rule names for the maps of its request (rules.py). Refusals and administrative actions
go to the audit log.

Refusals say as little as they can: a caller without valid credentials learns nothing
but UNAUTHENTICATED; a known caller is told which permission on which map it lacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

from coordinator.security.audit import AuditLog
from coordinator.security.authentication import (
    Authenticator,
    Credentials,
    Identity,
    Outcome,
    credentials_of,
    peer_host,
)
from coordinator.security.permissions import Permission
from coordinator.security.rules import Rule
from coordinator.security.state import AuthState
from coordinator.services.guard import Undecodable

log = logging.getLogger(__name__)

DECISIONS_MAX = 100_000
UNAUTHENTICATED_DETAILS = (
    "authentication required: send a valid token (authorization: Bearer ...) "
    "or a client certificate mapped to a principal"
)


class Gate:
    def __init__(
        self,
        authenticator: Authenticator,
        state: Any,
        rules: dict[str, Rule],
        audit: AuditLog,
        *,
        mutual_tls: bool,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._authenticator = authenticator
        # A callable giving the current AuthState snapshot.
        self._state = state
        self._rules = rules
        self._audit = audit
        self._mutual_tls = mutual_tls
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        # scrypt runs here, never on the loop; two threads bound what guessers can take.
        self._hashing = futures.ThreadPoolExecutor(2, thread_name_prefix="auth-verify")
        # (principal, need) -> allowed, for the snapshot `_decided_state`: a pattern
        # match per call would cost more than the dict lookup.
        self._decided: dict[tuple[str, Any], bool] = {}
        self._decided_state: AuthState | None = None
        # The quick path (see `_quick`): rules of one plain map field (or none), not
        # audited; tokens admitted and (principal, method, map) allowed, all for one
        # snapshot of the auth map and cleared with it.
        self._plain: dict[str, str] = {
            method: rule.fields[0][1]
            for method, rule in rules.items()
            if rule.compute is None
            and not rule.open
            and not rule.audited
            and len(rule.fields) == 1
            and "." not in rule.fields[0][1]
            and "[" not in rule.fields[0][1]
        }
        # Keyed by the authorization header itself: an exact comparison, and a SHA-256
        # per call cost more than the rest of the quick path. The header is in this
        # process's memory anyway (gRPC hands it over with every call); it is never
        # written anywhere, and the dict is dropped with each new auth snapshot.
        self._quick_tokens: dict[str, tuple[Identity, int]] = {}
        self._quick_allowed: set[tuple[str, str, str | None]] = set()
        self._quick_state: AuthState | None = None

    def close(self) -> None:
        self._hashing.shutdown(wait=False, cancel_futures=True)

    def credentials(self, context: grpc.aio.ServicerContext[Any, Any]) -> Credentials:
        common_name = None
        if self._mutual_tls:
            names = (context.auth_context() or {}).get("x509_common_name") or ()
            if names:
                first = names[0]
                common_name = first.decode() if isinstance(first, bytes) else str(first)
        return credentials_of(context.invocation_metadata() or (), context.peer(), common_name)

    def still_valid(self, identity: Identity) -> bool:
        """Whether the credentials `identity` came with still stand in the current
        snapshot (a stream asks before each message)."""
        state: AuthState = self._state()
        credential = identity.credential
        if credential.startswith("cert:"):
            return state.certificates.get(credential[5:]) == identity.principal
        record = state.tokens.get(credential)
        if record is None or record.principal != identity.principal:
            return False
        # A token that expires while its stream runs ends the stream as revoking it would.
        return not record.expires_ms or self._now_ms() < record.expires_ms

    def _quick(
        self, name: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Identity | None:
        """The common call answered in a few lookups, or None for the full check: a token
        this gate already admitted for this method and map under the current snapshot
        of the auth map, from a coordinator where no address is failing. (`Get` is
        answered on the event loop, so every microsecond here is one the loop spends.)"""
        plain = self._plain.get(name)
        if plain is None or self._authenticator.limiter.tracking():
            return None
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value
                break
        if not isinstance(header, str) or self._state() is not self._quick_state:
            return None
        found = self._quick_tokens.get(header)
        if found is None:
            return None
        remembered, expires_ms = found
        if expires_ms and self._now_ms() >= expires_ms:
            return None
        resource = getattr(request, plain) if plain else None
        if (remembered.principal, name, resource) not in self._quick_allowed:
            return None
        return remembered._replace(peer=peer_host(context.peer()))

    def _remember(self, name: str, request: Any, context: Any, identity: Identity) -> None:
        """After a full check allowed a call of a plain rule with a bearer token."""
        plain = self._plain.get(name)
        if plain is None or self._mutual_tls:
            return
        state = self._state()
        if state is not self._quick_state or len(self._quick_allowed) > DECISIONS_MAX:
            self._quick_tokens = {}
            self._quick_allowed = set()
            self._quick_state = state
        header = next(
            (value for key, value in context.invocation_metadata() or () if key == "authorization"),
            None,
        )
        if not isinstance(header, str):
            return
        record = state.tokens.get(identity.credential)
        if record is None:
            return
        self._quick_tokens[header] = (identity, record.expires_ms)
        resource = getattr(request, plain) if plain else None
        self._quick_allowed.add((identity.principal, name, resource))

    async def admit(
        self, name: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Identity:
        """The caller's identity, or the call is aborted (the abort raises)."""
        quick = self._quick(name, request, context)
        if quick is not None:
            return quick
        credentials = self.credentials(context)
        peer = peer_host(credentials.peer)
        verdict = self._authenticator.cached(credentials, peer)
        if verdict is None:
            verdict = await asyncio.get_running_loop().run_in_executor(
                self._hashing, self._authenticator.verify, credentials
            )
        if verdict.outcome is Outcome.LIMITED:
            self._audit.record(principal="", action=name, outcome="rate_limited", peer=peer)
            retry_s = self._authenticator.limiter.retry_after_s(peer)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many failed authentication attempts from {peer}; retry in {retry_s} s",
            )
        if verdict.outcome is not Outcome.OK or verdict.identity is None:
            self._audit.record(
                principal="",
                action=name,
                outcome="unauthenticated",
                peer=peer,
                detail=verdict.outcome.value,
            )
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_DETAILS)
        identity = verdict.identity
        assert identity is not None
        rule = self._rules.get(name)
        if rule is None:
            self._audit.record(
                principal=identity.principal,
                action=name,
                outcome="denied",
                peer=peer,
                credential=identity.credential,
                detail="no permission rule",
            )
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{name} has no permission rule, so it is refused while auth is on",
            )
        assert rule is not None
        if rule.open or isinstance(request, Undecodable):
            return identity
        needs = rule.needs(request)
        state: AuthState = self._state()
        if state is not self._decided_state or len(self._decided) > DECISIONS_MAX:
            # Decisions hold for one snapshot of the auth map only.
            self._decided = {}
            self._decided_state = state
        for need in needs:
            key = (identity.principal, need)
            allowed = self._decided.get(key)
            if allowed is None:
                allowed = self._decided[key] = need.met_by(state.grants_of(identity.principal))
            if not allowed:
                self._audit.record(
                    principal=identity.principal,
                    action=name,
                    outcome="denied",
                    peer=peer,
                    maps=[n.resource for n in needs if n.resource],
                    credential=identity.credential,
                    detail=need.describe(),
                )
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"principal '{identity.principal}' lacks {need.describe()}",
                )
        # SQL DDL (CREATE or DROP TABLE) is an administrative action like CreateMap.
        audited = rule.audited or any(need.permission is Permission.ADMIN for need in needs)
        if not audited:
            self._remember(name, request, context, identity)
        if audited:
            self._audit.record(
                principal=identity.principal,
                action=name,
                outcome="allowed",
                peer=peer,
                maps=[n.resource for n in needs if n.resource],
                credential=identity.credential,
            )
        return identity
