"""Builds a coordinator's security from its configuration: the auth map's store, the
accounts, the audit log and the gate every call passes (None when auth is off)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordinator.config import ConfigError, ServerConfig
from coordinator.security.accounts import Accounts
from coordinator.security.audit import AuditLog
from coordinator.security.authentication import Authenticator, Identity
from coordinator.security.gate import Gate
from coordinator.security.permissions import Need, Permission
from coordinator.security.rules import RULES
from coordinator.security.store import AuthStore, system_commit
from coordinator.security.transport import is_loopback, read_private
from grid.errors import PermissionDenied
from grid.protocol import Read, Write

if TYPE_CHECKING:
    from coordinator.node import Node

log = logging.getLogger(__name__)
BOOTSTRAP_TOKEN_LENGTH_MIN = 24


def auth_enabled(config: ServerConfig) -> bool:
    """`auto` is off only while the port is plaintext on loopback."""
    if config.auth == "on":
        return True
    if config.auth == "off":
        return False
    return config.tls or not is_loopback(config.host)


class Security:
    """With auth off, the auth map and the audit log are made only when an Auth call
    needs them (tokens can be prepared before auth is turned on): a server that never
    uses auth shows no system map of it."""

    def __init__(self, config: ServerConfig, node: Node) -> None:
        self.enabled = auth_enabled(config)
        self._config = config
        self._node = node
        self._lock = threading.Lock()
        self._store: AuthStore | None = None
        self._audit: AuditLog | None = None
        self.gate: Gate | None = None

    @property
    def store(self) -> AuthStore:
        with self._lock:
            if self._store is None:
                node = self._node
                self._store = AuthStore(
                    node.keyvalue, node.catalog, system_commit(node.transactions), node.clock
                )
                if self._started:
                    self._store.start()
            return self._store

    @property
    def audit(self) -> AuditLog:
        with self._lock:
            if self._audit is None:
                self._audit = AuditLog(self.audit_path, self._node.clock, self._node.metrics)
            return self._audit

    @property
    def audit_path(self) -> Path:
        config = self._config
        return Path(config.audit_log) if config.audit_log else config.data_dir / "audit.log"

    @property
    def accounts(self) -> Accounts:
        return Accounts(self.store)

    _started = False

    def check_pipelines(self, specs: Iterable[Any]) -> None:
        """With auth on, each pipeline acts as its declared owner, who must hold
        `pipelines` on its name and `write` on every map pattern it declares; checked
        when the pipelines load, so a pipeline cannot start writing what its owner may not."""
        if not self.enabled:
            return
        state = self.store.refresh()
        for spec in specs:
            if not spec.owner or not spec.writes:
                raise ConfigError(
                    f"pipeline '{spec.name}': auth is on, so it must declare owner= (the "
                    "principal it acts as) and writes= (the maps it writes) in @pipeline"
                )
            grants = state.grants_of(spec.owner)
            needs = [Need(Permission.PIPELINES, spec.name, kind="pipeline")]
            needs.extend(Need(Permission.WRITE, pattern) for pattern in spec.writes)
            for need in needs:
                allowed = need.met_by(grants)
                self.audit.record(
                    principal=spec.owner,
                    action="pipeline-load",
                    outcome="allowed" if allowed else "denied",
                    peer="local",
                    maps=list(spec.writes),
                    detail=f"pipeline {spec.name}: {need.describe()}",
                )
                if not allowed:
                    raise ConfigError(
                        f"pipeline '{spec.name}': its owner '{spec.owner}' lacks {need.describe()}"
                    )

    def visible(
        self, identity: Any, permission: Permission | None = None
    ) -> Callable[[str], bool] | None:
        """Which names a caller's listing shows: maps it holds some permission on, as
        Kafka lists only the topics a principal may describe (a listing holds schemas and
        sizes, which describing a map needs `read` for); with `permission`, the
        pipelines or procedures it holds that permission on. None when auth is off."""
        if not self.enabled or not isinstance(identity, Identity):
            return None
        grants = self.store.state.grants_of(identity.principal)
        wanted = list(Permission) if permission is None else [permission]

        def shown(name: str) -> bool:
            return any(Need(one, name).met_by(grants) for one in wanted)

        return shown

    def access_check(
        self, identity: Any
    ) -> Callable[[Sequence[Read], Sequence[Write]], None] | None:
        """What code running for a caller (a procedure) may touch: `read` on every map it
        read, `write` on every map it wrote; None when auth is off."""
        if not self.enabled or not isinstance(identity, Identity):
            return None

        def check(reads: Sequence[Read], writes: Sequence[Write]) -> None:
            grants = self.store.state.grants_of(identity.principal)
            needs = [Need(Permission.READ, read.map) for read in reads]
            needs.extend(Need(Permission.WRITE, write.map) for write in writes)
            for need in needs:
                if not need.met_by(grants):
                    self.audit.record(
                        principal=identity.principal,
                        action="procedure",
                        outcome="denied",
                        peer=identity.peer,
                        maps=sorted({n.resource for n in needs if n.resource}),
                        credential=identity.credential,
                        detail=need.describe(),
                    )
                    raise PermissionDenied(
                        f"principal '{identity.principal}' lacks {need.describe()} "
                        "(touched by the procedure)",
                        field="map",
                    )

        return check

    def start(self) -> None:
        with self._lock:
            self._started = True
            if self._store is not None:
                self._store.start()

    def close(self) -> None:
        with self._lock:
            store, audit = self._store, self._audit
        if store is not None:
            store.stop()
        if self.gate is not None:
            self.gate.close()
        if audit is not None:
            audit.close()


def bootstrap_token(config: ServerConfig) -> str | None:
    if config.auth_bootstrap_token_file:
        token = read_private(config.auth_bootstrap_token_file, "auth_bootstrap_token_file")
        given = token.decode("utf-8", "replace").strip()
    else:
        given = config.auth_bootstrap_token.strip()
    if not given:
        return None
    if len(given) < BOOTSTRAP_TOKEN_LENGTH_MIN or " " in given or not given.isprintable():
        raise ConfigError(
            f"the bootstrap token must be at least {BOOTSTRAP_TOKEN_LENGTH_MIN} printable "
            "characters without spaces"
        )
    return given


def build(config: ServerConfig, node: Node) -> Security:
    security = Security(config, node)
    if config.auth == "off" and not is_loopback(config.host):
        log.warning("auth is off on %s: anyone who reaches the port may do anything", config.host)
    if not security.enabled:
        return security
    given = bootstrap_token(config)
    store, audit = security.store, security.audit
    made = security.accounts.bootstrap(given)
    if made is not None:
        # Printed, never logged: the one place the first admin's token appears.
        print(
            "shoal serve: auth is on and no principal existed, so the first admin was made.\n"
            "Its token is shown this once and never again (store it now):\n"
            f"SHOAL_BOOTSTRAP_TOKEN {made}",
            flush=True,
        )
        audit.record(principal="admin", action="bootstrap", outcome="allowed", peer="local")
    security.gate = Gate(
        Authenticator(lambda: store.state, node.clock.now_ms),
        lambda: store.state,
        RULES,
        audit,
        mutual_tls=bool(config.tls_client_ca),
        now_ms=node.clock.now_ms,
    )
    log.info(
        "auth on%s; audit log %s",
        " (mapped client certificates authenticate)" if config.tls_client_ca else "",
        security.audit_path,
    )
    return security
