"""Transactions of the synchronous client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shoal import _codec, _requests
from shoal._transaction_state import (
    APPEND,
    INCREMENT,
    TransactionState,
    increment_changes,
)
from shoal.v1 import data_pb2, transactions_pb2

if TYPE_CHECKING:
    from shoal._client import Client


@dataclass
class TransactionRetry:
    """How ``transact`` retries a conflicting transaction function."""

    attempts: int = 20
    initial_backoff_s: float = 0.002
    max_backoff_s: float = 0.5


@dataclass(frozen=True)
class CommitResult:
    txn_id: str
    # New version of each write, in the order written (0 for deletes and when unknown).
    versions: tuple[int, ...]
    # True when the answer is the recorded outcome of an earlier attempt.
    replayed: bool


class TransactionWrites:
    """What the sync and asyncio transactions share: the buffered writes, and the steps
    of reads and commit that need no call to the server."""

    def __init__(self, keys_max: Callable[[], int] | None = None) -> None:
        self._state = TransactionState(keys_max)
        self.result: CommitResult | None = None

    @property
    def txn_id(self) -> str:
        return self._state.txn_id.hex()

    def put(
        self,
        map_name: str,
        key: str,
        value: Any,
        *,
        if_version: int | None = None,
        if_absent: bool = False,
        if_exists: bool = False,
    ) -> None:
        self._state.put(
            (map_name, key), value, _requests.condition(if_version, if_absent, if_exists)
        )

    def delete(
        self, map_name: str, key: str, *, if_version: int | None = None, if_exists: bool = False
    ) -> None:
        self._state.delete((map_name, key), _requests.condition(if_version, False, if_exists))

    def increment(
        self, map_name: str, key: str, field: str | dict[str, Any], amount: int | float = 1
    ) -> None:
        """Adds to numeric fields without reading them: concurrent increments never conflict."""
        self._state.update((map_name, key), INCREMENT, increment_changes(field, amount))

    def append(self, map_name: str, key: str, field: str, items: Iterable[Any]) -> None:
        """Appends items to a list field without reading it."""
        self._state.update((map_name, key), APPEND, {field: list(items)})

    def sketch_add(self, map_name: str, key: str, items: Any) -> None:
        """Adds one item, or a list of items, to the sketch at the key."""
        self._state.sketch_add((map_name, key), items if isinstance(items, list) else [items])

    def rollback(self) -> None:
        """Forgets the buffered writes; nothing was sent, so nothing needs undoing."""
        self._state.finished = True

    def _known(self, map_name: str, key: str) -> tuple[tuple[str, str], bool, Any]:
        """The key's target, and its value when known without asking the server."""
        self._state.check_open()
        target = (map_name, _requests.check_key(key))
        known, value = self._state.local(target)
        return target, known, value

    @property
    def read_version(self) -> int:
        """The version every read of this transaction sees (0 until its first read)."""
        return self._state.read_version

    def _get_request(self, map_name: str, key: str) -> data_pb2.GetRequest:
        """A read at the transaction's read version; the first read asks for one."""
        return _requests.build(
            data_pb2.GetRequest,
            map=map_name,
            key=key,
            read_version=self._state.read_version,
            snapshot=True,
        )

    def _got(self, target: tuple[str, str], reply: data_pb2.GetResponse) -> Any:
        self._state.note_read_version(reply.read_version)
        if reply.changed:
            self._state.note_changed(f"'{target[0]}/{target[1]}'")
        stored = _codec.decode(reply.value) if reply.found else None
        return self._state.record_read(target, stored, reply.version)

    def _batch_request(
        self, map_name: str, keys: Iterable[str]
    ) -> tuple[list[str], list[str], data_pb2.GetManyRequest | None]:
        """The keys asked for, those the server must be asked about, and that request."""
        self._state.check_open()
        key_list = _requests.check_keys(keys)
        missing = [key for key in key_list if not self._state.local((map_name, key))[0]]
        if not missing:
            return key_list, missing, None
        request = _requests.get_many_request(map_name, missing, with_versions=True, consistent=True)
        request.read_version = self._state.read_version
        return key_list, missing, request

    def _commit_request(self) -> transactions_pb2.CommitRequest | None:
        """The commit call to make, or None when the transaction needs none."""
        state = self._state
        state.check_open()
        state.finished = True
        if state.needs_commit_call:
            return state.commit_request()
        self.result = CommitResult(state.txn_id.hex(), (), False)
        return None

    def _committed(self, reply: transactions_pb2.CommitResponse) -> CommitResult:
        self.result = CommitResult(self.txn_id, tuple(reply.versions), reply.replayed)
        return self.result


class Transaction(TransactionWrites):
    """A serializable transaction: reads record versions, writes are buffered, and
    ``commit`` sends everything in one call."""

    def __init__(self, client: Client) -> None:
        super().__init__(client._transaction_keys_max)
        self._client = client

    def get(self, map_name: str, key: str) -> Any:
        """The value as this transaction sees it (its own writes included), or None."""
        target, known, value = self._known(map_name, key)
        if known:
            return value
        reply = self._client._call(
            lambda s: s.data.Get, self._get_request(map_name, key), idempotent=True
        )
        return self._got(target, reply)

    def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that exist, as this transaction sees them; the keys
        not yet known are read in one batch at the transaction's read version."""
        key_list, missing, request = self._batch_request(map_name, keys)
        if request is not None:
            reply = self._client._call(lambda s: s.data.GetMany, request, idempotent=True)
            self._state.record_batch(map_name, missing, reply)
        return self._state.visible(map_name, key_list)

    def scan(self, map_name: str, *, prefix: str = "", limit: int = 0) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of a map as of this transaction's read version. Only a
        read-only transaction may scan (a scan's range is not validated at commit)."""
        self._state.note_scan()
        if not self._state.read_version:
            reply = self._client._call(
                lambda s: s.data.ReadVersion, data_pb2.ReadVersionRequest(), idempotent=True
            )
            self._state.note_read_version(int(reply.read_version))
        return self._client.scan(map_name, prefix=prefix, limit=limit, at=self._state.read_version)

    def commit(self) -> CommitResult:
        """Commits; raises ConflictError when the transaction must be retried."""
        request = self._commit_request()
        if request is None:
            assert self.result is not None
            return self.result
        return self._committed(self._client._commit(request))

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.rollback()
        elif not self._state.finished:
            self.commit()
