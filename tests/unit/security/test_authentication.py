"""Token hashing, the verified-token cache and its revocation, and the failure limiter."""

from __future__ import annotations

from coordinator.clock import ManualClock
from coordinator.security import tokens
from coordinator.security.authentication import (
    Authenticator,
    Credentials,
    FailureLimiter,
    Outcome,
    credentials_of,
    peer_host,
)
from coordinator.security.state import AuthState, TokenRecord

PEER = "ipv4:10.0.0.7:5555"


def _state(token: str, principal: str = "svc", expires_ms: int = 0) -> AuthState:
    parsed = tokens.parse(token)
    record = TokenRecord(
        parsed.token_id, principal, tokens.hash_secret(parsed.secret), expires_ms=expires_ms
    )
    return AuthState(tokens={parsed.token_id: record})


def test_a_hash_verifies_its_secret_only() -> None:
    stored = tokens.hash_secret("secret-one")
    assert stored.startswith("scrypt$")
    assert "secret-one" not in stored
    assert tokens.verify_secret("secret-one", stored)
    assert not tokens.verify_secret("secret-two", stored)
    assert not tokens.verify_secret("secret-one", "garbage")


def test_a_new_token_parses_into_its_id_and_secret() -> None:
    token_id, token = tokens.new_token()
    assert tokens.parse(token).token_id == token_id
    assert tokens.parse("an-operator-chosen-token").token_id == tokens.BOOTSTRAP_ID


def test_the_bearer_header_is_read_case_blind_and_other_schemes_are_bad() -> None:
    assert credentials_of([("authorization", "Bearer abc")], PEER, None).token == "abc"
    assert credentials_of([("authorization", "bearer abc")], PEER, None).token == "abc"
    assert credentials_of([("authorization", "Basic abc")], PEER, None).token == ""
    assert credentials_of([], PEER, None).token is None
    assert peer_host(PEER) == "10.0.0.7"
    assert peer_host("ipv6:[::1]:5555") == "::1"


def test_a_verified_token_is_cached_and_revocation_ends_it() -> None:
    clock = ManualClock()
    _, token = tokens.new_token()
    state = {"now": _state(token)}
    authenticator = Authenticator(lambda: state["now"], clock.now_ms)
    credentials = Credentials(token, None, PEER)
    assert authenticator.cached(credentials) is None  # the slow path must hash once
    verdict = authenticator.verify(credentials)
    assert verdict.outcome is Outcome.OK
    assert verdict.identity is not None and verdict.identity.principal == "svc"
    cached = authenticator.cached(credentials)
    assert cached is not None and cached.outcome is Outcome.OK
    state["now"] = AuthState()  # revoked: the record is gone from the next snapshot
    revoked = authenticator.cached(credentials)
    assert revoked is not None and revoked.outcome is Outcome.BAD


def test_a_token_whose_record_changed_is_verified_again() -> None:
    clock = ManualClock()
    _, token = tokens.new_token()
    state = {"now": _state(token)}
    authenticator = Authenticator(lambda: state["now"], clock.now_ms)
    credentials = Credentials(token, None, PEER)
    authenticator.verify(credentials)
    # The same id with another secret's hash (a replaced bootstrap token).
    state["now"] = _state(token.replace(token[-4:], "AAAA"))
    assert authenticator.cached(credentials) is None
    assert authenticator.verify(credentials).outcome is Outcome.BAD


def test_an_expired_token_is_refused() -> None:
    clock = ManualClock()
    _, token = tokens.new_token()
    authenticator = Authenticator(
        lambda: _state(token, expires_ms=clock.now_ms() + 1000), clock.now_ms
    )
    credentials = Credentials(token, None, PEER)
    assert authenticator.verify(credentials).outcome is Outcome.OK
    clock.advance_ms(2000)
    state_now = _state(token, expires_ms=clock.now_ms() - 1000)
    later = Authenticator(lambda: state_now, clock.now_ms)
    assert later.verify(credentials).outcome is Outcome.BAD


def test_an_unknown_token_id_is_refused_without_hashing() -> None:
    clock = ManualClock()
    authenticator = Authenticator(AuthState, clock.now_ms)
    verdict = authenticator.cached(Credentials("shoal_0123456789ab_secret", None, PEER))
    assert verdict is not None and verdict.outcome is Outcome.BAD


def test_missing_credentials_and_mapped_certificates() -> None:
    clock = ManualClock()
    state = AuthState(certificates={"svc-cert": "svc"})
    authenticator = Authenticator(lambda: state, clock.now_ms)
    missing = authenticator.cached(Credentials(None, None, PEER))
    assert missing is not None and missing.outcome is Outcome.MISSING
    mapped = authenticator.cached(Credentials(None, "svc-cert", PEER))
    assert mapped is not None and mapped.identity is not None
    assert mapped.identity.principal == "svc"
    unmapped = authenticator.cached(Credentials(None, "stranger", PEER))
    assert unmapped is not None and unmapped.outcome is Outcome.BAD


def test_failures_past_the_limit_block_the_peer_until_the_window_passes() -> None:
    clock = ManualClock()
    limiter = FailureLimiter(clock.now_ms, failures_max=3, window_ms=10_000)
    authenticator = Authenticator(AuthState, clock.now_ms, limiter)
    bad = Credentials("shoal_0123456789ab_guess", None, PEER)
    for _ in range(3):
        verdict = authenticator.cached(bad)
        assert verdict is not None and verdict.outcome is Outcome.BAD
    blocked = authenticator.cached(bad)
    assert blocked is not None and blocked.outcome is Outcome.LIMITED
    # Another address is not blocked.
    other = authenticator.cached(Credentials(None, None, "ipv4:10.0.0.8:1"))
    assert other is not None and other.outcome is Outcome.MISSING
    assert limiter.retry_after_s("10.0.0.7") == 10
    clock.advance_ms(10_001)
    again = authenticator.cached(bad)
    assert again is not None and again.outcome is Outcome.BAD


def test_a_blocked_address_still_admits_tokens_already_verified_and_mapped_certificates() -> None:
    """One client guessing (or left running with a revoked token) must not lock out the
    others behind the same address."""
    clock = ManualClock()
    limiter = FailureLimiter(clock.now_ms, failures_max=3, window_ms=10_000)
    _, good = tokens.new_token()
    _, revoked = tokens.new_token()
    _, unverified = tokens.new_token()
    records = {**_state(good).tokens, **_state(unverified).tokens}
    certificates = {"svc-cert": "svc"}
    state = {
        "now": AuthState(tokens={**records, **_state(revoked).tokens}, certificates=certificates)
    }
    authenticator = Authenticator(lambda: state["now"], clock.now_ms, limiter)
    for token in (good, revoked):
        assert authenticator.verify(Credentials(token, None, PEER)).outcome is Outcome.OK
    state["now"] = AuthState(tokens=records, certificates=certificates)
    # The revoked token, sent again and again, is refused but never counted as a guess.
    for _ in range(10):
        verdict = authenticator.cached(Credentials(revoked, None, PEER))
        assert verdict is not None and verdict.outcome is Outcome.BAD
    assert not limiter.blocked("10.0.0.7")
    for attempt in range(3):
        authenticator.cached(Credentials(f"shoal_{attempt:012x}_guess", None, PEER))
    assert limiter.blocked("10.0.0.7")
    guess = authenticator.cached(Credentials("shoal_0123456789ab_guess", None, PEER))
    assert guess is not None and guess.outcome is Outcome.LIMITED
    # A token never verified here is refused unchecked: it could be a guess.
    fresh = authenticator.cached(Credentials(unverified, None, PEER))
    assert fresh is not None and fresh.outcome is Outcome.LIMITED
    known = authenticator.cached(Credentials(good, None, PEER))
    assert known is not None and known.outcome is Outcome.OK
    mapped = authenticator.cached(Credentials(None, "svc-cert", PEER))
    assert mapped is not None and mapped.outcome is Outcome.OK
