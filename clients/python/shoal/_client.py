"""The synchronous client."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from shoal import _codec, _requests, _tls
from shoal._connection import Connection, RetryPolicy, parse_targets
from shoal._errors import ConflictError
from shoal._model import ClusterInfo, MapInfo, Versioned
from shoal._snapshot import Snapshot, get_request, read_version_of
from shoal._tls import TLSConfig, with_token
from shoal._transaction import Transaction, TransactionRetry
from shoal.v1 import admin_pb2, data_pb2, transactions_pb2

if TYPE_CHECKING:
    # Imported where used: a short-lived process (the `shoal` command) that only reads a
    # key should not pay for the sketch, SQL and retry machinery.
    from shoal._auth import Auth
    from shoal._backfill import BackfillProgress, BackfillSummary
    from shoal._reconcile import Reconciliation
    from shoal._replays import Replays
    from shoal._sandbox import Sandboxes
    from shoal._sketches import Sketches
    from shoal._sql import Cursor

Result = TypeVar("Result")


class Client:
    """A connection to a Shoal grid through one or more coordinators.

    ``target`` is ``"host:port"``, a comma-separated list of them, or a sequence; calls
    fail over between them. Every call has a deadline (``timeout_s``). Reads and
    retry-safe writes are retried on UNAVAILABLE; errors raise typed ``ShoalError``s.
    """

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
        self._connection = Connection(self.targets, retry or RetryPolicy(), _tls.resolve(tls))
        # The server's transaction_keys_max, asked for once by the first transaction
        # that grows large (see _transaction_state.SIZE_CHECKED_FROM).
        self._keys_max: int | None = None

    # Lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self, method: Any, request: Any, *, idempotent: bool, timeout_s: float | None = None
    ) -> Any:
        return self._connection.call(
            method,
            request,
            timeout_s=timeout_s or self.timeout_s,
            idempotent=idempotent,
            metadata=self._metadata,
        )

    @functools.cached_property
    def auth(self) -> Auth:
        """Tokens, grants, teams and the audit log: ``client.auth.create_token(...)``."""
        from shoal._auth import Auth

        return Auth(self)

    @functools.cached_property
    def sketches(self) -> Sketches:
        """Sketch maps: ``client.sketches.create(map, kind="hll", lg_k=12)``, ``add``,
        ``estimate``, ``merge_estimate`` and the kind-specific queries."""
        from shoal._sketches import Sketches

        return Sketches(self)

    @functools.cached_property
    def replays(self) -> Replays:
        """Replays of a Kafka range through a pipeline into a sandbox or another grid:
        ``client.replays.start(...)``, ``status``, ``follow``, ``cancel``, ``list``."""
        from shoal._replays import Replays

        return Replays(self)

    def reconcile(
        self,
        pipeline: str,
        from_time: datetime | str | int,
        to_time: datetime | str | int,
        *,
        redeliver: bool = False,
    ) -> Reconciliation:
        """Per Kafka partition of a pipeline this coordinator runs, in the window: events
        Kafka holds, applied, rejected, duplicates, and offset ranges missing or applied
        twice; ``redeliver`` re-applies the missing ranges exactly once, then reports."""
        from shoal._reconcile import run_reconcile

        return run_reconcile(self, pipeline, from_time, to_time, redeliver=redeliver)

    def backfill(
        self,
        file: str | Path,
        *,
        pipeline: str | Path,
        name: str = "",
        sandbox: str | None = None,
        into: str | None = None,
        dead_letters: str | Path | None = None,
        rows_per_call: int = 1000,
        on_progress: Callable[[BackfillProgress], None] | None = None,
    ) -> BackfillSummary:
        """Applies the rows of a .jsonl, .csv or .parquet file through ``pipeline`` (a .py
        file or a running pipeline's name) into this grid, a sandbox or a grid by address
        (``into``), exactly once per file content: a re-run is a no-op
        (``already_done``), an interrupted run resumes. Rejected rows are in the summary
        and in a dead-letter file (``<file>.rejects.jsonl`` unless ``dead_letters``)."""
        from shoal._backfill import run_backfill

        return run_backfill(
            self,
            file,
            pipeline=pipeline,
            name=name,
            sandbox=sandbox,
            into=into,
            dead_letters=dead_letters,
            rows_per_call=rows_per_call,
            on_progress=on_progress,
        )

    @functools.cached_property
    def sandboxes(self) -> Sandboxes:
        """Operators' sandboxes: ``client.sandboxes.create("incident-42", from_snapshot=True)``,
        ``list``, ``describe``, ``delete``, ``diff``."""
        from shoal._sandbox import Sandboxes

        return Sandboxes(self)

    def sandbox(self, name: str, *, ready_timeout_s: float = 60.0) -> Client:
        """A client connected to the sandbox ``name`` (its address asked of this client's
        coordinator), with this client's timeout, retries, TLS and token. A sandbox being
        created or started again (after a restart of production) is waited for, up to
        ``ready_timeout_s``; one that failed raises FailedPreconditionError."""
        from shoal._sandbox import sandbox_target, wait_ready

        info = wait_ready(self.sandboxes, name, ready_timeout_s)
        target = sandbox_target(info.address, self._connection.targets[self._connection_index()])
        return Client(
            target,
            timeout_s=self.timeout_s,
            retry=self._connection.retry,
            transaction_retry=self.transaction_retry,
            metadata=self._metadata,
            tls=self._connection.tls,
        )

    def _connection_index(self) -> int:
        return self._connection._index

    # Maps ------------------------------------------------------------------------

    def create_map(
        self,
        name: str,
        schema: Mapping[str, Any] | None = None,
        *,
        if_not_exists: bool = False,
    ) -> MapInfo:
        """Creates a map; with a schema its values are validated (see the README)."""
        request = _requests.build(
            admin_pb2.CreateMapRequest,
            name=name,
            schema_json=_requests.schema_bytes(schema),
            if_not_exists=if_not_exists,
        )
        return MapInfo.from_message(
            self._call(lambda s: s.admin.CreateMap, request, idempotent=False)
        )

    def drop_map(self, name: str, *, if_exists: bool = False) -> bool:
        request = _requests.build(admin_pb2.DropMapRequest, name=name, if_exists=if_exists)
        reply = self._call(lambda s: s.admin.DropMap, request, idempotent=False)
        return bool(reply.dropped)

    def list_maps(self) -> list[MapInfo]:
        reply = self._call(
            lambda s: s.admin.ListMaps,
            _requests.build(admin_pb2.ListMapsRequest),
            idempotent=True,
        )
        return [MapInfo.from_message(item) for item in reply.maps]

    def describe_map(self, name: str) -> MapInfo:
        request = _requests.build(admin_pb2.DescribeMapRequest, name=name)
        return MapInfo.from_message(
            self._call(lambda s: s.admin.DescribeMap, request, idempotent=True)
        )

    def alter_schema(self, name: str, schema: Mapping[str, Any]) -> MapInfo:
        """Replaces a map's schema with a compatible new version."""
        request = _requests.build(
            admin_pb2.AlterMapSchemaRequest, name=name, schema_json=_requests.schema_bytes(schema)
        )
        return MapInfo.from_message(
            self._call(lambda s: s.admin.AlterMapSchema, request, idempotent=False)
        )

    def cluster_info(self) -> ClusterInfo:
        reply = self._call(
            lambda s: s.admin.ClusterInfo,
            _requests.build(admin_pb2.ClusterInfoRequest),
            idempotent=True,
        )
        return ClusterInfo.from_message(reply)

    # Keys ------------------------------------------------------------------------

    def get(self, map_name: str, key: str, *, at: int | None = None) -> Any:
        """The value of a key, or None when it does not exist; `at` reads it as of a
        read version (`snapshot().version`, `tx.read_version`) within the window."""
        reply = self._call(_get, get_request(map_name, key, at), idempotent=True)
        return _codec.decode(reply.value) if reply.found else None

    def get_versioned(self, map_name: str, key: str, *, at: int | None = None) -> Versioned | None:
        """The value and its version, or None when the key does not exist."""
        reply = self._call(_get, get_request(map_name, key, at), idempotent=True)
        return Versioned(_codec.decode(reply.value), reply.version) if reply.found else None

    def get_many(
        self, map_name: str, keys: Iterable[str], *, at: int | None = None
    ) -> dict[str, Any]:
        """A dict of the keys that exist and their values; `at` reads them as of a read
        version (without it, each key's latest committed value)."""
        key_list = _requests.check_keys(keys)
        request = _requests.get_many_request(map_name, key_list)
        if at is not None:
            request.read_version = read_version_of(at)
        reply = self._call(_get_many, request, idempotent=True)
        return _requests.get_many_result(key_list, reply)

    def snapshot(self) -> Snapshot:
        """A consistent view of the whole grid as of now, for several calls: every read
        through it sees the same read version (for the server's `mvcc_window_ms`)."""
        reply = self._call(_read_version_call, data_pb2.ReadVersionRequest(), idempotent=True)
        return Snapshot(self, int(reply.read_version))

    def put(
        self,
        map_name: str,
        key: str,
        value: Any,
        *,
        if_version: int | None = None,
        if_absent: bool = False,
        if_exists: bool = False,
    ) -> int:
        """Stores a value; returns its new version. Conditions make it a compare-and-set."""
        request = _requests.build(
            data_pb2.PutRequest,
            map=map_name,
            key=_requests.check_key(key),
            value=_codec.encode(value),
            request_id=_requests.new_id(),
            condition=_requests.condition(if_version, if_absent, if_exists),
        )
        return int(self._call(_put, request, idempotent=True).version)

    def put_many(
        self, map_name: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]
    ) -> list[int]:
        """Stores many values in one call; returns their versions in order.

        Each partition's share is atomic; use a transaction for all-or-nothing.
        """
        request = _requests.put_many_request(map_name, items)
        return list(self._call(_put_many, request, idempotent=True).versions)

    def delete(
        self,
        map_name: str,
        key: str,
        *,
        if_version: int | None = None,
        if_exists: bool = False,
    ) -> bool:
        """Deletes a key; returns whether it existed."""
        request = _requests.build(
            data_pb2.DeleteRequest,
            map=map_name,
            key=_requests.check_key(key),
            request_id=_requests.new_id(),
            condition=_requests.condition(if_version, False, if_exists),
        )
        return bool(self._call(_delete, request, idempotent=True).existed)

    def scan(
        self,
        map_name: str,
        *,
        prefix: str = "",
        limit: int = 0,
        chunk_entries: int = 0,
        at: int | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of a map, streamed in chunks; each partition at one read
        version, or all of them as of `at`."""
        request = _requests.build(
            data_pb2.ScanRequest,
            map=map_name,
            prefix=prefix,
            limit=limit,
            chunk_entries=chunk_entries,
            read_version=0 if at is None else read_version_of(at),
        )
        stream = self._connection.current.data.Scan(request, timeout=None, metadata=self._metadata)
        try:
            for chunk in _stream(stream):
                yield from zip(chunk.keys, _codec.decode_many(chunk.values), strict=True)
        finally:
            stream.cancel()

    # SQL -------------------------------------------------------------------------

    def sql(
        self,
        statement: str,
        params: Sequence[Any] | None = None,
        *,
        timeout_s: float | None = None,
        batch_rows: int = 0,
    ) -> Cursor:
        """Runs one SQL statement; `?` placeholders bind `params` in order. Returns a cursor
        (fetchall, fetchone, description, to_arrow, to_pandas) over the streamed result."""
        from shoal._sql import Cursor

        return Cursor(self).execute(statement, params, timeout_s=timeout_s, batch_rows=batch_rows)

    # Transactions ----------------------------------------------------------------

    def transaction(self) -> Transaction:
        """One attempt: ``with client.transaction() as tx:`` commits at the end of the block
        and raises ConflictError when another transaction got in the way."""
        return Transaction(self)

    def transact(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        """Runs ``function(tx, *args, **kwargs)`` in a transaction and commits it, retrying
        the whole function with backoff when the commit conflicts. Returns its result."""
        import tenacity

        policy = self.transaction_retry
        for attempt in tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=tenacity.wait_random_exponential(
                multiplier=policy.initial_backoff_s, max=policy.max_backoff_s
            ),
            retry=tenacity.retry_if_exception_type(ConflictError),
            reraise=True,
        ):
            with attempt:
                transaction = Transaction(self)
                result = function(transaction, *args, **kwargs)
                transaction.commit()
                return result
        raise AssertionError("unreachable: tenacity reraises the last error")

    # Procedures ------------------------------------------------------------------

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls the procedure ``name`` deployed with the coordinator (``shoal serve
        --procedures``) with JSON arguments, in one round trip; returns its JSON result.

        It runs as one serializable transaction that the coordinator retries on conflict.
        Raises ProcedureError when the procedure raised, NotFoundError for an unknown name,
        DeadlineExceededError past its time limit. A call whose answer is lost (UNAVAILABLE)
        is not retried: its outcome is unknown, as for any write without an id.
        """
        from shoal import _procedure_calls
        from shoal._errors import FailedPreconditionError

        request = _procedure_calls.call_request(name, args, kwargs)
        try:
            reply = self._call(_procedure_calls.call_method, request, idempotent=False)
        except FailedPreconditionError as error:
            raise _procedure_calls.procedure_error(error) from None
        return _procedure_calls.result_of(reply)

    def procedures(self) -> list[dict[str, Any]]:
        """The procedures the coordinator serves: name, parameters, module, description
        and counters of calls by outcome."""
        from shoal import _procedure_calls
        from shoal.v1 import procedures_pb2

        reply = self._call(
            _procedure_calls.list_method,
            procedures_pb2.ListProceduresRequest(),
            idempotent=True,
        )
        return _procedure_calls.procedure_list(reply)

    def _transaction_keys_max(self) -> int:
        if self._keys_max is None:
            self._keys_max = int(self.cluster_info().limits.get("transaction_keys_max", 0))
        return self._keys_max

    def _commit(self, request: transactions_pb2.CommitRequest) -> transactions_pb2.CommitResponse:
        reply: transactions_pb2.CommitResponse = self._call(_commit, request, idempotent=True)
        return reply


def _stream(stream: Any) -> Iterator[Any]:
    import grpc

    from shoal._errors import from_rpc_error

    try:
        yield from stream
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None


def _read_version_call(stubs: Any) -> Any:
    return stubs.data.ReadVersion


def _get(stubs: Any) -> Any:
    return stubs.data.Get


def _get_many(stubs: Any) -> Any:
    return stubs.data.GetMany


def _put(stubs: Any) -> Any:
    return stubs.data.Put


def _put_many(stubs: Any) -> Any:
    return stubs.data.PutMany


def _delete(stubs: Any) -> Any:
    return stubs.data.Delete


def _commit(stubs: Any) -> Any:
    return stubs.transactions.Commit
