"""Reads at a read version outside transactions: `Client.snapshot()` and `at=`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from shoal import _requests
from shoal._errors import InvalidArgumentError
from shoal._model import Versioned
from shoal.v1 import data_pb2

if TYPE_CHECKING:
    from shoal._client import Client


class Snapshot:
    """Reads of one client, all as of one read version (see `Client.snapshot`)."""

    def __init__(self, client: Client, version: int) -> None:
        self._client = client
        self.version = version

    def get(self, map_name: str, key: str) -> Any:
        return self._client.get(map_name, key, at=self.version)

    def get_versioned(self, map_name: str, key: str) -> Versioned | None:
        return self._client.get_versioned(map_name, key, at=self.version)

    def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]:
        return self._client.get_many(map_name, keys, at=self.version)

    def scan(
        self, map_name: str, *, prefix: str = "", limit: int = 0, chunk_entries: int = 0
    ) -> Iterator[tuple[str, Any]]:
        return self._client.scan(
            map_name, prefix=prefix, limit=limit, chunk_entries=chunk_entries, at=self.version
        )


def read_version_of(at: int) -> int:
    if isinstance(at, bool) or not isinstance(at, int) or not 0 < at < 2**64:
        # Only the type of a value that is not an int: the repr of a deeply nested list
        # would itself raise RecursionError.
        shown = repr(at) if isinstance(at, int) else type(at).__name__
        raise InvalidArgumentError(
            f"at must be a read version (a positive 64-bit int), got {shown}", field="at"
        )
    return at


def get_request(map_name: str, key: str, at: int | None) -> data_pb2.GetRequest:
    return _requests.build(
        data_pb2.GetRequest,
        map=map_name,
        key=_requests.check_key(key),
        read_version=0 if at is None else read_version_of(at),
    )
