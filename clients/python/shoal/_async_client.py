"""The asyncio client: the same calls as `Client`, awaited."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc
import tenacity

from shoal import _codec, _requests, _tls
from shoal._connection import AsyncConnection, RetryPolicy, parse_targets
from shoal._errors import ConflictError, from_rpc_error
from shoal._model import ClusterInfo, MapInfo, Versioned
from shoal._sketches import AsyncSketches
from shoal._snapshot import get_request, read_version_of
from shoal._tls import TLSConfig, with_token
from shoal._transaction import CommitResult, TransactionRetry, TransactionWrites
from shoal._transaction_state import SIZE_CHECKED_FROM
from shoal.v1 import admin_pb2, data_pb2, transactions_pb2


class AsyncClient:
    """An asyncio connection to a Shoal grid; see `Client` for the behaviour of each call."""

    def __init__(
        self,
        target: str | Sequence[str] = "127.0.0.1:50051",
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        transaction_retry: TransactionRetry | None = None,
        metadata: Sequence[tuple[str, str]] | None = None,
        tls: bool | TLSConfig | None = None,
        token: str | None = None,
    ) -> None:
        self.targets = parse_targets(target)
        self.timeout_s = _requests.check_seconds(timeout_s, "timeout_s")
        self.transaction_retry = transaction_retry or TransactionRetry()
        self._metadata = _requests.check_metadata(with_token(metadata, token))
        self._connection = AsyncConnection(self.targets, retry or RetryPolicy(), _tls.resolve(tls))
        # The server's transaction_keys_max, asked for once by the first transaction
        # that grows large (see _transaction_state.SIZE_CHECKED_FROM).
        self._keys_max: int | None = None

    async def close(self) -> None:
        await self._connection.close()

    @functools.cached_property
    def sketches(self) -> AsyncSketches:
        """Sketch maps, as `Client.sketches` with every call awaited."""
        return AsyncSketches(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, *, idempotent: bool) -> Any:
        return await self._connection.call(
            method,
            request,
            timeout_s=self.timeout_s,
            idempotent=idempotent,
            metadata=self._metadata,
        )

    async def create_map(
        self, name: str, schema: Mapping[str, Any] | None = None, *, if_not_exists: bool = False
    ) -> MapInfo:
        request = _requests.build(
            admin_pb2.CreateMapRequest,
            name=name,
            schema_json=_requests.schema_bytes(schema),
            if_not_exists=if_not_exists,
        )
        return MapInfo.from_message(
            await self._call(lambda s: s.admin.CreateMap, request, idempotent=False)
        )

    async def drop_map(self, name: str, *, if_exists: bool = False) -> bool:
        request = _requests.build(admin_pb2.DropMapRequest, name=name, if_exists=if_exists)
        return bool(
            (await self._call(lambda s: s.admin.DropMap, request, idempotent=False)).dropped
        )

    async def list_maps(self) -> list[MapInfo]:
        reply = await self._call(
            lambda s: s.admin.ListMaps,
            _requests.build(admin_pb2.ListMapsRequest),
            idempotent=True,
        )
        return [MapInfo.from_message(item) for item in reply.maps]

    async def describe_map(self, name: str) -> MapInfo:
        request = _requests.build(admin_pb2.DescribeMapRequest, name=name)
        return MapInfo.from_message(
            await self._call(lambda s: s.admin.DescribeMap, request, idempotent=True)
        )

    async def cluster_info(self) -> ClusterInfo:
        reply = await self._call(
            lambda s: s.admin.ClusterInfo,
            _requests.build(admin_pb2.ClusterInfoRequest),
            idempotent=True,
        )
        return ClusterInfo.from_message(reply)

    async def get(self, map_name: str, key: str, *, at: int | None = None) -> Any:
        reply = await self._call(
            lambda s: s.data.Get, get_request(map_name, key, at), idempotent=True
        )
        return _codec.decode(reply.value) if reply.found else None

    async def get_versioned(
        self, map_name: str, key: str, *, at: int | None = None
    ) -> Versioned | None:
        reply = await self._call(
            lambda s: s.data.Get, get_request(map_name, key, at), idempotent=True
        )
        return Versioned(_codec.decode(reply.value), reply.version) if reply.found else None

    async def get_many(
        self, map_name: str, keys: Iterable[str], *, at: int | None = None
    ) -> dict[str, Any]:
        key_list = _requests.check_keys(keys)
        request = _requests.get_many_request(map_name, key_list)
        if at is not None:
            request.read_version = read_version_of(at)
        reply = await self._call(lambda s: s.data.GetMany, request, idempotent=True)
        return _requests.get_many_result(key_list, reply)

    async def read_version(self) -> int:
        """The current read version, for `at=` reads that must see one state."""
        reply = await self._call(
            lambda s: s.data.ReadVersion, data_pb2.ReadVersionRequest(), idempotent=True
        )
        return int(reply.read_version)

    async def put(
        self,
        map_name: str,
        key: str,
        value: Any,
        *,
        if_version: int | None = None,
        if_absent: bool = False,
        if_exists: bool = False,
    ) -> int:
        request = _requests.build(
            data_pb2.PutRequest,
            map=map_name,
            key=_requests.check_key(key),
            value=_codec.encode(value),
            request_id=_requests.new_id(),
            condition=_requests.condition(if_version, if_absent, if_exists),
        )
        return int((await self._call(lambda s: s.data.Put, request, idempotent=True)).version)

    async def put_many(
        self, map_name: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]
    ) -> list[int]:
        request = _requests.put_many_request(map_name, items)
        return list((await self._call(lambda s: s.data.PutMany, request, idempotent=True)).versions)

    async def delete(
        self, map_name: str, key: str, *, if_version: int | None = None, if_exists: bool = False
    ) -> bool:
        request = _requests.build(
            data_pb2.DeleteRequest,
            map=map_name,
            key=_requests.check_key(key),
            request_id=_requests.new_id(),
            condition=_requests.condition(if_version, False, if_exists),
        )
        return bool((await self._call(lambda s: s.data.Delete, request, idempotent=True)).existed)

    async def scan(
        self,
        map_name: str,
        *,
        prefix: str = "",
        limit: int = 0,
        chunk_entries: int = 0,
        at: int | None = None,
    ) -> AsyncIterator[tuple[str, Any]]:
        request = _requests.build(
            data_pb2.ScanRequest,
            map=map_name,
            prefix=prefix,
            limit=limit,
            chunk_entries=chunk_entries,
            read_version=0 if at is None else read_version_of(at),
        )
        stream = self._connection.current.data.Scan(request, metadata=self._metadata)
        try:
            async for chunk in stream:
                for key, value in zip(chunk.keys, _codec.decode_many(chunk.values), strict=True):
                    yield key, value
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            stream.cancel()

    def transaction(self) -> AsyncTransaction:
        return AsyncTransaction(self)

    async def transact(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs ``function(tx, *args, **kwargs)`` (a coroutine function or a plain one) in a
        transaction, retrying it on conflict; returns its result."""
        policy = self.transaction_retry
        async for attempt in tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=tenacity.wait_random_exponential(
                multiplier=policy.initial_backoff_s, max=policy.max_backoff_s
            ),
            retry=tenacity.retry_if_exception_type(ConflictError),
            reraise=True,
        ):
            with attempt:
                transaction = AsyncTransaction(self)
                result = function(transaction, *args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                await transaction.commit()
                return result
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls a deployed procedure in one round trip; see `Client.call`."""
        from shoal import _procedure_calls
        from shoal._errors import FailedPreconditionError

        request = _procedure_calls.call_request(name, args, kwargs)
        try:
            reply = await self._call(_procedure_calls.call_method, request, idempotent=False)
        except FailedPreconditionError as error:
            raise _procedure_calls.procedure_error(error) from None
        return _procedure_calls.result_of(reply)

    async def procedures(self) -> list[dict[str, Any]]:
        """The procedures the coordinator serves; see `Client.procedures`."""
        from shoal import _procedure_calls
        from shoal.v1 import procedures_pb2

        reply = await self._call(
            _procedure_calls.list_method, procedures_pb2.ListProceduresRequest(), idempotent=True
        )
        return _procedure_calls.procedure_list(reply)

    def _transaction_keys_max(self) -> int:
        return self._keys_max or 0

    async def _learn_limits(self) -> None:
        if self._keys_max is None:
            info = await self.cluster_info()
            self._keys_max = int(info.limits.get("transaction_keys_max", 0))

    async def _commit(
        self, request: transactions_pb2.CommitRequest
    ) -> transactions_pb2.CommitResponse:
        reply: transactions_pb2.CommitResponse = await self._call(
            lambda s: s.transactions.Commit, request, idempotent=True
        )
        return reply


class AsyncTransaction(TransactionWrites):
    """The asyncio form of `Transaction`: reads and commit are awaited, writes are buffered."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client._transaction_keys_max)
        self._client = client

    async def _learn_limits(self) -> None:
        # The limit is asked for by an awaited read; buffered writes use what is known.
        if self._state.size >= SIZE_CHECKED_FROM:
            await self._client._learn_limits()

    async def get(self, map_name: str, key: str) -> Any:
        target, known, value = self._known(map_name, key)
        if known:
            return value
        await self._learn_limits()
        reply = await self._client._call(
            lambda s: s.data.Get, self._get_request(map_name, key), idempotent=True
        )
        return self._got(target, reply)

    async def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that exist, as this transaction sees them; the keys
        not yet known are read in one batch at the transaction's read version."""
        key_list, missing, request = self._batch_request(map_name, keys)
        if request is not None:
            await self._learn_limits()
            reply = await self._client._call(lambda s: s.data.GetMany, request, idempotent=True)
            self._state.record_batch(map_name, missing, reply)
        return self._state.visible(map_name, key_list)

    async def scan(
        self, map_name: str, *, prefix: str = "", limit: int = 0
    ) -> AsyncIterator[tuple[str, Any]]:
        """As `Transaction.scan`: the map at the read version, in read-only transactions."""
        self._state.note_scan()
        if not self._state.read_version:
            reply = await self._client._call(
                lambda s: s.data.ReadVersion, data_pb2.ReadVersionRequest(), idempotent=True
            )
            self._state.note_read_version(int(reply.read_version))
        async for item in self._client.scan(
            map_name, prefix=prefix, limit=limit, at=self._state.read_version
        ):
            yield item

    async def commit(self) -> CommitResult:
        request = self._commit_request()
        if request is None:
            assert self.result is not None
            return self.result
        return self._committed(await self._client._commit(request))

    async def __aenter__(self) -> AsyncTransaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.rollback()
        elif not self._state.finished:
            await self.commit()
