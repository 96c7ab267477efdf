"""Who a call is from: its bearer token, or its client certificate (mutual TLS).

Hashing a token with scrypt on every call would cost tens of milliseconds a call, so a
verified token is remembered (by a SHA-256 of it, never the token) with the record it
matched; each call then checks that the record is still in the current snapshot of the
auth map. Revoking deletes the record, so the next snapshot (at most 250 ms later, see
store.py) refuses the token on every coordinator and every live connection.

Failures are counted per peer address: past `failures_max` in `window_ms`, every attempt
from that address is refused without being checked until the window has room again;
except the credentials a guesser cannot present: a token this coordinator already
verified (found by its full hash, so a guess never matches one) and a client certificate
mapped to a principal (the TLS handshake checked it). So one client guessing, or one
left running with a revoked token, does not lock out every other client behind the
same address (a host, a NAT). A once-verified token that was revoked is refused without
counting as a guess for the same reason.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from enum import Enum
from typing import NamedTuple

from coordinator.security import tokens
from coordinator.security.state import AuthState

BEARER = "bearer "
CACHE_ENTRIES_MAX = 10_000
PEERS_TRACKED_MAX = 10_000
FAILURES_MAX = 20
WINDOW_MS = 60_000


class Outcome(Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials at all
    BAD = "bad"  # credentials that are not valid
    LIMITED = "rate_limited"  # too many failures from this peer


class Identity(NamedTuple):
    principal: str
    # The token's id or the certificate's common name: what the audit log shows.
    credential: str
    # The caller's address, once the gate has admitted the call.
    peer: str = ""


class Verdict(NamedTuple):
    outcome: Outcome
    identity: Identity | None = None


class Credentials(NamedTuple):
    """What a call presents, read on the event loop while the call is alive."""

    token: str | None
    common_name: str | None
    peer: str


def credentials_of(
    metadata: Sequence[tuple[str, str | bytes]], peer: str, common_name: str | None
) -> Credentials:
    token = None
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            token = value[len(BEARER) :].strip() if value[:7].lower() == BEARER else ""
            break
    return Credentials(token=token, common_name=common_name, peer=peer)


def peer_host(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` → `127.0.0.1`; `ipv6:[::1]:5000` → `::1`."""
    _, _, address = peer.partition(":")
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]") or peer


class FailureLimiter:
    """Failed attempts per peer address in a sliding window; thread-safe."""

    def __init__(
        self,
        now_ms: Callable[[], int],
        failures_max: int = FAILURES_MAX,
        window_ms: int = WINDOW_MS,
    ) -> None:
        self._now_ms = now_ms
        self.failures_max = failures_max
        self.window_ms = window_ms
        self._failures: OrderedDict[str, deque[int]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, host: str, now: int) -> deque[int] | None:
        times = self._failures.get(host)
        if times is None:
            return None
        while times and times[0] <= now - self.window_ms:
            times.popleft()
        if not times:
            del self._failures[host]
            return None
        return times

    def tracking(self) -> bool:
        """Whether any address has failed lately (no lock: a length read is atomic)."""
        return bool(self._failures)

    def blocked(self, host: str) -> bool:
        if host not in self._failures:
            # Most callers never failed: no lock (a dict lookup is atomic).
            return False
        with self._lock:
            times = self._recent(host, self._now_ms())
            return times is not None and len(times) >= self.failures_max

    def fail(self, host: str) -> None:
        with self._lock:
            now = self._now_ms()
            times = self._recent(host, now)
            if times is None:
                times = self._failures[host] = deque()
                while len(self._failures) > PEERS_TRACKED_MAX:
                    self._failures.popitem(last=False)
            times.append(now)
            if len(times) > self.failures_max:
                times.popleft()

    def retry_after_s(self, host: str) -> int:
        with self._lock:
            times = self._failures.get(host)
            if not times:
                return 0
            return max(1, (times[0] + self.window_ms - self._now_ms() + 999) // 1000)


class Authenticator:
    def __init__(
        self,
        state: Callable[[], AuthState],
        now_ms: Callable[[], int],
        limiter: FailureLimiter | None = None,
    ) -> None:
        self._state = state
        self._now_ms = now_ms
        self.limiter = limiter or FailureLimiter(now_ms)
        # cache key → (token id, the stored hash it was verified against)
        self._verified: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, credentials: Credentials, host: str | None = None) -> Verdict | None:
        """The verdict without hashing, or None when the slow path (`verify`) must run.
        Cheap: safe on the event loop."""
        host = peer_host(credentials.peer) if host is None else host
        state = self._state()
        token = credentials.token
        if token is None:
            principal = (
                state.certificates.get(credentials.common_name) if credentials.common_name else None
            )
            if principal is None:
                if self.limiter.blocked(host):
                    return Verdict(Outcome.LIMITED)
                if credentials.common_name:
                    self.limiter.fail(host)
                    return Verdict(Outcome.BAD)
                return Verdict(Outcome.MISSING)
            return Verdict(Outcome.OK, Identity(principal, f"cert:{credentials.common_name}", host))
        key = tokens.cache_key(token) if token else b""
        with self._lock:
            remembered = self._verified.get(key) if token else None
        if remembered is not None:
            token_id, stored_hash = remembered
            record = state.tokens.get(token_id)
            if record is None or record.hash == stored_hash:
                if record is not None and self._live(record.expires_ms):
                    return Verdict(Outcome.OK, Identity(record.principal, token_id, host))
                # Revoked or expired: refused, but no guess (kept, so it stays none).
                return Verdict(Outcome.BAD)
            # Its record was replaced (a bootstrap token given anew): verified afresh.
            with self._lock:
                self._verified.pop(key, None)
        if self.limiter.blocked(host):
            return Verdict(Outcome.LIMITED)
        if not token:
            self.limiter.fail(host)
            return Verdict(Outcome.BAD)
        record = state.tokens.get(tokens.parse(token).token_id)
        if record is None:
            # An unknown id needs no hashing to refuse.
            self.limiter.fail(host)
            return Verdict(Outcome.BAD)
        return None

    def verify(self, credentials: Credentials) -> Verdict:
        """The slow path: scrypt. Run in a thread, never on the event loop."""
        token = credentials.token or ""
        parsed = tokens.parse(token)
        record = self._state().tokens.get(parsed.token_id)
        if (
            record is None
            or not self._live(record.expires_ms)
            or not tokens.verify_secret(parsed.secret, record.hash)
        ):
            self.limiter.fail(peer_host(credentials.peer))
            return Verdict(Outcome.BAD)
        with self._lock:
            self._verified[tokens.cache_key(token)] = (record.token_id, record.hash)
            while len(self._verified) > CACHE_ENTRIES_MAX:
                self._verified.popitem(last=False)
        return Verdict(
            Outcome.OK,
            Identity(record.principal, record.token_id, peer_host(credentials.peer)),
        )

    def _live(self, expires_ms: int) -> bool:
        return expires_ms == 0 or self._now_ms() < expires_ms
