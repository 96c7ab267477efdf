"""Connection loss to a Hazelcast cluster, answered as ``grid.errors.Unavailable``.

The client itself retries an invocation while it reconnects, for up to its invocation timeout
(``INVOCATION_TIMEOUT_S``, set by grid/hazelcast/backend.py: 10 s rather than Hazelcast's 120,
so a caller learns of a lost cluster while its own deadline still runs); what still fails is
the cluster being unreachable, and the coordinator answers ``UNAVAILABLE``. A step that failed
so may or may not have run on the member: every step is idempotent (request ids, transaction
ids), so the client's retry is harmless, and a transaction left undecided is ended by a sweeper.
Errors of Shoal's own processors are not among these: they stay internal errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hazelcast.errors import (
    HazelcastClientNotActiveError,
    HazelcastInstanceNotActiveError,
    HazelcastIOError,
    HazelcastTimeoutError,
    IndeterminateOperationStateError,
    MemberLeftError,
    OperationTimeoutError,
    TargetDisconnectedError,
    TargetNotMemberError,
)

from grid.errors import Unavailable

INVOCATION_TIMEOUT_S = 10.0
LOST = (
    HazelcastClientNotActiveError,
    HazelcastInstanceNotActiveError,
    HazelcastIOError,
    HazelcastTimeoutError,
    IndeterminateOperationStateError,
    MemberLeftError,
    OperationTimeoutError,
    TargetDisconnectedError,
    TargetNotMemberError,
)


@contextmanager
def unavailable_when_lost(what: str) -> Iterator[None]:
    try:
        yield
    except LOST as error:
        raise Unavailable(f"the Hazelcast cluster did not answer {what}: {error}") from error
