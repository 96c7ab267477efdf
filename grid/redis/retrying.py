"""Calls to Redis retried while the connection is lost, then answered UNAVAILABLE.

The same goes for a Redis Cluster slot on the move: during a resharding a step whose keys are
not all on one node is answered TRYAGAIN (or ASK, which redis-py follows until its own attempts
run out: "TTL exhausted"), before it ran, so it is retried here with backoff until the slot's
migration ends.

A step retried after a lost reply is harmless: every step is idempotent (a one-phase write by
its request id, prepare of a prepared transaction, commit of a committed one, a status swap
that already happened answers with the record as it is), so a retry is the first attempt's
answer or the same decision again. A coordinator that gives up answers UNAVAILABLE
(grid.errors.Unavailable) and leaves nothing half-applied: a transaction it was driving is
ended by the recovery sweeper of whichever coordinator reaches the store first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis
import tenacity

from grid.errors import Unavailable

log = logging.getLogger(__name__)

# What a lost or refused connection, a Redis Cluster failing over or a slot migrating raises
# (ClusterError: redis-py's "TTL exhausted" after following ASK and TRYAGAIN; AskError covers
# MovedError).
STORE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,
    redis.exceptions.SlotNotCoveredError,
)
# How long a call keeps retrying before it answers UNAVAILABLE.
RETRY_S = 3.0


def _migrating(error: Exception) -> bool:
    """TRYAGAIN, ASK, or redis-py giving up after following them ("TTL exhausted")."""
    if isinstance(error, redis.exceptions.ClusterDownError):
        return False
    return isinstance(
        error,
        redis.exceptions.TryAgainError | redis.exceptions.AskError | redis.exceptions.ClusterError,
    )


P = ParamSpec("P")
R = TypeVar("R")


def retried(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            # The first attempt without tenacity: a call that succeeds pays nothing for it.
            return function(*args, **kwargs)
        except STORE_ERRORS:
            pass
        try:
            for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_delay(RETRY_S),
                wait=tenacity.wait_random_exponential(multiplier=0.02, max=0.5),
                retry=tenacity.retry_if_exception_type(STORE_ERRORS),
                reraise=True,
            ):
                with attempt:
                    return function(*args, **kwargs)
        except STORE_ERRORS as error:
            if _migrating(error):
                log.warning("Redis Cluster slot still migrating after %.0f s: %s", RETRY_S, error)
                raise Unavailable(
                    f"a Redis Cluster slot this call needs is still migrating ({error}); retry"
                ) from None
            log.warning("Redis unreachable after %.0f s of retries: %s", RETRY_S, error)
            raise Unavailable(f"the Redis store cannot be reached ({error}); retry") from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    return call
