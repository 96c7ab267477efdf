"""Connection loss to an Ignite cluster, answered as ``grid.errors.Unavailable``.

pyignite reconnects on the next call after a lost connection (to any node it was given);
what fails meanwhile, and a cluster it cannot reach, the coordinator answers ``UNAVAILABLE``.
A step that failed so may or may not have committed: every step is idempotent, so a retry is
harmless, and Ignite rolls back a transaction whose client went away.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from pyignite.exceptions import ReconnectError, SocketError

from grid.errors import Unavailable

LOST = (ReconnectError, SocketError, OSError)
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def unavailable_when_lost(what: str) -> Iterator[None]:
    try:
        yield
    except LOST as error:
        raise Unavailable(f"the Ignite cluster did not answer {what}: {error}") from error


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """A method whose connection loss is answered as ``Unavailable``."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with unavailable_when_lost(method.__name__):
            return method(*args, **kwargs)

    return call
