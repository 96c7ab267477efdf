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
    ) -> None:
        self._authenticator = authenticator
        # A callable giving the current AuthState snapshot.
        self._state = state
        self._rules = rules
        self._audit = audit
        self._mutual_tls = mutual_tls
        # scrypt runs here, never on the loop; two threads bound what guessers can take.
        self._hashing = futures.ThreadPoolExecutor(2, thread_name_prefix="auth-verify")
        # (principal, need) -> allowed, for the snapshot `_decided_state`: a pattern
        # match per call would cost more than the dict lookup.
        self._decided: dict[tuple[str, Any], bool] = {}
        self._decided_state: AuthState | None = None

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
        return record is not None and record.principal == identity.principal

    async def admit(
        self, name: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Identity:
        """The caller's identity, or the call is aborted (the abort raises)."""
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
        if rule.audited:
            self._audit.record(
                principal=identity.principal,
                action=name,
                outcome="allowed",
                peer=peer,
                maps=[n.resource for n in needs if n.resource],
                credential=identity.credential,
            )
        return identity
