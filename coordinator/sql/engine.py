"""The SQL engine: parse (sqlglot), plan, snapshot, execute (DuckDB over Arrow), stream.

A SELECT reads one consistent snapshot of the maps it names (see snapshot.py), or, for
a point lookup on the key, just the keys asked for, read in one consistent batch. The
DuckDB connections are in-memory, with file access, extension loading and
configuration changes disabled, so no statement reaches anything outside the grid.
Results leave as Arrow record batches of bounded size, pulled from DuckDB as the
client reads them, so a large result never sits whole in the coordinator.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa
from sqlglot import exp

from coordinator.keyvalue import KeyValue
from coordinator.observability.sql import SqlTelemetry
from coordinator.sql import analysis as analysis_module
from coordinator.sql import functions, point_lookup
from coordinator.sql.analysis import Analysis
from coordinator.sql.point_lookup import PointLookup
from coordinator.sql.snapshot import Snapshots
from coordinator.sql.tables import KEY_COLUMN, build_image
from coordinator.sql.watchdog import Watchdog
from grid import values as grid_values
from grid.catalog import Catalog, MapDefinition
from grid.errors import (
    GridError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
    "threads": 2,
}


@dataclass(frozen=True)
class SqlConfig:
    timeout_ms: int = 30_000
    scan_rows_max: int = 50_000_000
    result_bytes_max: int = 512 * 1024 * 1024
    batch_rows: int = 8192
    connections: int = 4
    # DuckDB's memory limit for one statement (each pooled connection is its own database).
    memory_bytes_max: int = 512 * 1024 * 1024
    # No result batch may be larger than a gRPC message can carry.
    batch_bytes_max: int = 64 * 1024 * 1024


@dataclass
class Header:
    columns: list[tuple[str, str]]
    schema: pa.Schema
    kind: str


@dataclass
class Summary:
    rows: int = 0
    rows_affected: int = 0
    elapsed_us: int = 0
    rows_scanned: int = 0


# A record batch of the result (pyarrow is untyped here, hence Any).
Event: TypeAlias = Header | Summary | Any


class StatementTimeout(GridError):
    status = "DEADLINE_EXCEEDED"


class StatementCancelled(GridError):
    status = "CANCELLED"


@dataclass
class Cancellation:
    """Lets the caller (a cancelled gRPC call) interrupt a running statement."""

    cancelled: bool = False
    _interrupt: Callable[[], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._interrupt is not None:
                self._interrupt()

    def attach(self, interrupt: Callable[[], None] | None) -> None:
        with self._lock:
            self._interrupt = interrupt
            if interrupt is not None and self.cancelled:
                interrupt()


@dataclass(frozen=True)
class RunOptions:
    """What a client asked of one statement's run: a shorter time limit, a way to cancel."""

    timeout_ms: int = 0
    cancellation: Cancellation | None = None


Modify: TypeAlias = Callable[
    [Analysis, list[Any], Callable[[str], MapDefinition], RunOptions], Iterator[Event]
]


REGISTERED_TABLES_MAX = 32
# A statement whose result was larger than this gives its DuckDB database back.
HEAVY_RESULT_BYTES = 64 * 1024 * 1024


# A result up to this size is read whole before its first batch is sent, so its DuckDB
# connection goes back to the pool before the client reads (see run_query).
READ_AHEAD_BYTES = 1024 * 1024
# How often an interrupt is repeated until the statement ends (see Interruptor).
INTERRUPT_REPEAT_S = 0.05


class Interruptor:
    """Interrupts one statement's connection, but only while that statement runs.

    DuckDB forgets an interrupt that arrives between the steps of a statement (before
    it starts executing, or between result batches): a 1 ms time limit would fire
    before the statement began and never stop it. So once asked, the interruptor keeps
    interrupting until the statement is over, and the statement checks `requested`
    between its steps.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, watchdog: Watchdog) -> None:
        self._connection = connection
        self._watchdog = watchdog
        self._lock = threading.Lock()
        self._active = True
        self.requested = False

    def interrupt(self) -> None:
        with self._lock:
            if not self._active:
                return
            self.requested = True
            self._connection.interrupt()
        self._watchdog.arm(INTERRUPT_REPEAT_S, self.interrupt)

    def finish(self) -> None:
        with self._lock:
            self._active = False


class PooledConnection:
    """A DuckDB connection and the Arrow tables it has registered.

    Registering a table costs about a millisecond, so a table that is still the one
    registered under its name (an unchanged map between queries) is not registered again.

    DuckDB's names are case-blind: registering `Customers` replaces `customers`. So the
    memory is keyed by the case-folded name and holds the map's own name with its table;
    remembering by exact name let a query of `Customers` read `customers`' rows, which
    another caller had registered over it since (and which its principal may not read).
    """

    def __init__(self, memory_bytes_max: int = 0) -> None:
        config = dict(DUCKDB_CONFIG)
        if memory_bytes_max:
            config["memory_limit"] = f"{memory_bytes_max}B"
        self.connection = duckdb.connect(config=config)
        functions.register(self.connection)
        # Case-folded name -> (the map's name, the table registered for it).
        self._registered: dict[str, tuple[str, pa.Table]] = {}

    def bind(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            folded = name.casefold()
            current = self._registered.get(folded)
            if current is None or current[0] != name or current[1] is not table:
                self.connection.register(name, table)
                self._registered.pop(folded, None)
                self._registered[folded] = (name, table)
        while len(self._registered) > REGISTERED_TABLES_MAX:
            oldest = next(iter(self._registered))
            name, _ = self._registered.pop(oldest)
            try:
                self.connection.unregister(name)
            except duckdb.Error:
                pass


class ConnectionPool:
    """DuckDB connections, each used by one statement at a time."""

    def __init__(self, size: int, memory_bytes_max: int = 0) -> None:
        self._idle: queue.LifoQueue[PooledConnection] = queue.LifoQueue()
        self._size = size
        self._memory_bytes_max = memory_bytes_max
        self._created = 0
        self._lock = threading.Lock()

    def acquire(self) -> PooledConnection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self._size:
                self._created += 1
                return PooledConnection(self._memory_bytes_max)
        return self._idle.get()

    def release(self, pooled: PooledConnection, *, heavy: bool = False) -> None:
        if heavy:
            # DuckDB keeps the memory a large result took until its database closes
            # (about the result's size, measured): a fresh one takes the old one's place.
            pooled.connection.close()
            pooled = PooledConnection(self._memory_bytes_max)
        self._idle.put(pooled)


def duckdb_error(error: duckdb.Error) -> GridError:
    message = str(error).split("\n")[0]
    if isinstance(error, duckdb.InterruptException):
        return StatementCancelled("the statement was interrupted")
    if isinstance(error, duckdb.OutOfMemoryException):
        return ResourceExhausted(
            f"the statement needs more memory than sql_memory_bytes_max allows: {message}",
            field="statement",
        )
    if "max expression depth" in message.lower():
        # DuckDB's own bound, whose advice (SET max_expression_depth) may not run here.
        return analysis_module.too_deep()
    if isinstance(error, duckdb.PermissionException):
        return InvalidArgument(f"not allowed: {message}", field="statement")
    return InvalidArgument(message, field="statement")


def _nesting(value: Any) -> int:
    """How deeply lists and objects nest in a parameter (without recursion)."""
    deepest = 0
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, depth + 1)
            pending.extend(
                (inner, depth + 1) for inner in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def decode_parameters(values: Sequence[Any]) -> list[Any]:
    """Parameters as DuckDB binds them: tagged bytes and timestamps become Python values."""
    decoded = []
    for index, value in enumerate(values):
        if _nesting(value) > analysis_module.NESTING_MAX:
            # DuckDB binds a nested value recursively and fails past its own limit.
            raise InvalidArgument(
                f"parameter {index + 1} nests more than {analysis_module.NESTING_MAX} levels",
                field="params",
            )
        instant = grid_values.tagged_timestamp(value)
        data = grid_values.tagged_bytes(value)
        decoded.append(instant if instant is not None else data if data is not None else value)
    return decoded


ARROW_TYPE_NAMES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.binary(): "BLOB",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
}


def _key_columns(definition: MapDefinition) -> dict[str, str]:
    """The columns that hold a map's key (lower-case, as DuckDB matches names) and their
    field types: `__key` is always text; a key field is text or an integer."""
    columns = {KEY_COLUMN: "string"}
    schema = definition.schema
    if schema is not None and schema.key_field:
        columns[schema.key_field.lower()] = schema.by_name[schema.key_field].type
    return columns


def _find_point_lookup(analysis: Analysis, definition: MapDefinition) -> PointLookup | None:
    key_columns = _key_columns(definition)
    cache_key = tuple(sorted(key_columns.items()))
    if cache_key not in analysis.point_lookups:
        analysis.point_lookups[cache_key] = point_lookup.find(
            analysis.tree, analysis.tables, key_columns
        )
    return analysis.point_lookups[cache_key]


def _sql_type_name(arrow_type: pa.DataType) -> str:
    """The type name DuckDB would give the column (lists as `BIGINT[]`)."""
    if pa.types.is_list(arrow_type):
        return _sql_type_name(arrow_type.value_type) + "[]"
    return ARROW_TYPE_NAMES.get(arrow_type, str(arrow_type).upper())


def _project(image: pa.Table, projection: tuple[str, ...], started: float) -> Iterator[Event]:
    """A point lookup's plain columns, straight from the image: no DuckDB needed."""
    names: list[str] = []
    # DuckDB matches column names without regard to case; so must the fast path.
    by_lower_name = {column.lower(): column for column in reversed(image.column_names)}
    for name in projection:
        if name == "*":
            names.extend(image.column_names)
        elif name in image.column_names:
            names.append(name)
        elif name.lower() in by_lower_name:
            names.append(by_lower_name[name.lower()])
        else:
            raise InvalidArgument(
                f'Binder Error: Referenced column "{name}" not found in FROM clause!',
                field="statement",
            )
    table = image.select(names)
    columns = [(field.name, _sql_type_name(field.type)) for field in table.schema]
    yield Header(columns=columns, schema=table.schema, kind="select")
    yield from table.to_batches()
    yield Summary(
        rows=table.num_rows,
        elapsed_us=int((time.perf_counter() - started) * 1_000_000),
        rows_scanned=table.num_rows,
    )


def _duckdb_text(tree: exp.Expression) -> str:
    """The SQL DuckDB runs for a statement (sqlglot writes it back recursively)."""
    try:
        return str(functions.rewrite_aggregates(tree.copy()).sql(dialect="duckdb"))
    except RecursionError:
        raise analysis_module.too_deep() from None


class SqlEngine:
    def __init__(
        self,
        catalog: Catalog,
        keyvalue: KeyValue,
        snapshots: Snapshots,
        config: SqlConfig,
        modify: Modify,
    ) -> None:
        self.catalog = catalog
        self.keyvalue = keyvalue
        self.snapshots = snapshots
        self.config = config
        self.pool = ConnectionPool(config.connections, config.memory_bytes_max)
        self.watchdog = Watchdog()
        self._modify = modify
        # Statement figures and spans (coordinator.observability.sql); None for none.
        self.telemetry: SqlTelemetry | None = None

    def definition(self, name: str) -> MapDefinition:
        try:
            return self.catalog.get(name)
        except NotFound:
            raise InvalidArgument(f"unknown table '{name}'", field="statement") from None

    def execute(
        self,
        statement: str,
        parameters: Sequence[Any],
        *,
        batch_rows: int = 0,
        timeout_ms: int = 0,
        cancellation: Cancellation | None = None,
    ) -> Iterator[Event]:
        """The statement's events: a header, record batches, a summary."""
        events = self._execute(
            statement,
            parameters,
            batch_rows=batch_rows,
            timeout_ms=timeout_ms,
            cancellation=cancellation,
        )
        telemetry = self.telemetry
        yield from (events if telemetry is None else telemetry.observe(events))

    def _execute(
        self,
        statement: str,
        parameters: Sequence[Any],
        *,
        batch_rows: int = 0,
        timeout_ms: int = 0,
        cancellation: Cancellation | None = None,
    ) -> Iterator[Event]:
        started = time.perf_counter()
        analysis = analysis_module.parse(statement)
        parameters = decode_parameters(parameters)
        # Tables and columns as of every catalog change acknowledged so far, whichever
        # coordinator made it (one small read on a shared store; grid.catalog.Catalog.confirm).
        self.catalog.confirm()
        if analysis.parameters != len(parameters):
            raise InvalidArgument(
                f"the statement has {analysis.parameters} parameter(s) but "
                f"{len(parameters)} were given",
                field="params",
            )
        if analysis.kind != "select":
            if analysis.explain:
                raise InvalidArgument("EXPLAIN applies to SELECT statements", field="statement")
            options = RunOptions(timeout_ms=timeout_ms, cancellation=cancellation)
            yield from self._modify(analysis, list(parameters), self.definition, options)
            return
        definitions = [self.definition(name) for name in analysis.tables]
        lookup = _find_point_lookup(analysis, definitions[0]) if len(definitions) == 1 else None
        keys = point_lookup.keys(lookup, parameters) if lookup is not None else None
        if keys is not None:
            keys = self._storable(keys)
        if lookup is not None and keys is not None:
            definition = definitions[0]
            entries = self.keyvalue.get_many(definition.name, keys, consistent=True)
            found = [(key, entry) for key, entry in zip(keys, entries, strict=True) if entry]
            image = build_image(definition, found)
            if lookup.projection is not None and not analysis.explain:
                yield from _project(image, lookup.projection, started)
                return
            partitions = sorted(set(self.keyvalue.partitioner.partitions_of(keys)))
            plan = [
                f"point lookup on {definition.name}.{lookup.column}: {len(keys)} key(s), "
                f"partitions {partitions}, no scan"
                + (", answered without DuckDB" if lookup.projection is not None else "")
            ]
            tables, rows_scanned = {definition.name: image}, len(found)
        else:
            tables, rows_scanned, plan = self._scan(analysis, definitions)
        if analysis.explain:
            yield from self._explain(analysis, tables, parameters, plan, started)
            return
        if not analysis.duckdb_text:
            analysis.duckdb_text = _duckdb_text(analysis.tree)
        yield from self.run_query(
            analysis.duckdb_text,
            tables,
            parameters,
            batch_rows=batch_rows,
            timeout_ms=timeout_ms,
            cancellation=cancellation,
            rows_scanned=rows_scanned,
            started=started,
        )

    def _scan(
        self, analysis: Analysis, definitions: list[MapDefinition]
    ) -> tuple[dict[str, pa.Table], int, list[str]]:
        """The Arrow tables of a snapshot of the maps, and the plan lines that say how."""
        plan: list[str] = []
        snapshots = self.snapshots.capture(definitions)
        if self.telemetry is not None:
            self.telemetry.rebuilt(
                sum(snapshot.partitions_rebuilt for snapshot in snapshots.values())
            )
        scanned = sum(snapshot.table.num_rows for snapshot in snapshots.values())
        if scanned > self.config.scan_rows_max:
            raise ResourceExhausted(
                f"the statement would scan {scanned} rows; the limit is "
                f"{self.config.scan_rows_max}",
                field="statement",
            )
        for name, snapshot in snapshots.items():
            columns = analysis.columns_by_table.get(name) or ["*"]
            plan.append(
                f"scan {name}: {snapshot.table.num_rows} rows, partitions scanned "
                f"{snapshot.partitions_scanned} ({snapshot.partitions_rebuilt} rebuilt), "
                f"columns [{', '.join(columns)}]"
            )
        if analysis.filters:
            plan.append("filters pushed into the scan: " + " AND ".join(analysis.filters))
        return {name: snapshot.table for name, snapshot in snapshots.items()}, scanned, plan

    def _storable(self, keys: list[str]) -> list[str] | None:
        """The keys that could exist (an empty or oversized key matches no row, it is not
        an error); None when there are more than one batch read takes."""
        if len(keys) > self.keyvalue.limits.batch_entries_max:
            return None
        storable = []
        for key in keys:
            try:
                self.keyvalue.planner.check_key(key)
            except InvalidArgument:
                continue
            storable.append(key)
        return storable

    def run_query(
        self,
        statement: exp.Expression | str,
        tables: dict[str, pa.Table],
        parameters: Sequence[Any],
        *,
        batch_rows: int = 0,
        timeout_ms: int = 0,
        cancellation: Cancellation | None = None,
        rows_scanned: int = 0,
        started: float | None = None,
        kind: str = "select",
    ) -> Iterator[Event]:
        started = time.perf_counter() if started is None else started
        text = statement if isinstance(statement, str) else _duckdb_text(statement)
        pooled = self.pool.acquire()
        connection = pooled.connection
        alarm: int | None = None
        timed_out = threading.Event()
        reader: Any = None
        sent_bytes = 0
        released = False
        interruptor = Interruptor(connection, self.watchdog)
        # The configured limit caps what a client asks for; a client may only ask for less.
        limit_ms = min(timeout_ms or self.config.timeout_ms, self.config.timeout_ms)

        def check_interrupted() -> None:
            if timed_out.is_set():
                raise StatementTimeout(f"the statement ran past its time limit of {limit_ms} ms")
            if interruptor.requested:
                raise StatementCancelled("the statement was interrupted")

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            # After this, a late timeout or cancellation cannot interrupt the next
            # statement that gets this connection from the pool.
            interruptor.finish()
            if alarm is not None:
                self.watchdog.disarm(alarm)
            if cancellation is not None:
                cancellation.attach(None)
            if reader is not None:
                # A result left open (the client went away mid-stream) would make the
                # connection refuse the next statement that gets it from the pool.
                reader.close()
            self.pool.release(pooled, heavy=sent_bytes > HEAVY_RESULT_BYTES)

        def checked(batch: Any) -> Any:
            nonlocal sent_bytes
            check_interrupted()
            sent_bytes += batch.nbytes
            if batch.nbytes > self.config.batch_bytes_max:
                # Refused before it is copied into messages (several times its size).
                raise ResourceExhausted(
                    f"a result batch of {batch.nbytes} bytes exceeds "
                    f"message_bytes_max ({self.config.batch_bytes_max}); select less "
                    "per row or ask for fewer rows per batch",
                    field="statement",
                )
            if sent_bytes > self.config.result_bytes_max:
                raise ResourceExhausted(
                    f"the result exceeds {self.config.result_bytes_max} bytes; add a "
                    "LIMIT or aggregate",
                    field="statement",
                )
            return batch

        try:
            pooled.bind(tables)
            if cancellation is not None:
                cancellation.attach(interruptor.interrupt)

            def on_timeout() -> None:
                timed_out.set()
                interruptor.interrupt()

            alarm = self.watchdog.arm(limit_ms / 1000, on_timeout)
            try:
                relation = connection.sql(text, params=list(parameters) or None)
                check_interrupted()
                if relation is None:
                    raise InvalidArgument("the statement returns no rows", field="statement")
                columns = list(zip(relation.columns, [str(t) for t in relation.types], strict=True))
                # Like the time limit, a client may ask for smaller batches, never larger.
                rows_per_batch = min(batch_rows or self.config.batch_rows, self.config.batch_rows)
                reader = relation.to_arrow_reader(rows_per_batch)
                check_interrupted()
                schema = reader.schema
                # Read ahead before the first yield: a result that fits READ_AHEAD_BYTES
                # gives its DuckDB connection back at once, so a client that pauses
                # between batches holds memory only, never one of the few connections
                # (threads waiting for connections held by paused streams whose next
                # step waits for a thread would never finish).
                ahead: list[Any] = []
                ahead_bytes = 0
                finished = False
                while ahead_bytes <= READ_AHEAD_BYTES:
                    # pyarrow's reader raises StopIteration after the last batch.
                    batch = checked(reader.read_next_batch())
                    ahead.append(batch)
                    ahead_bytes += batch.nbytes
            except StopIteration:
                finished = True
            # DuckDB errors met while the result streams reach us through Arrow's reader,
            # as OSError ("INTERRUPT Error: Interrupted!") or an ArrowException.
            except (duckdb.Error, pa.ArrowException, OSError) as error:
                raise self._statement_error(error, timed_out, limit_ms) from None
            if finished:
                release()
            yield Header(columns=columns, schema=schema, kind=kind)
            rows = 0
            for batch in ahead:
                rows += batch.num_rows
                yield batch
            if not finished:
                try:
                    for batch in reader:
                        rows += batch.num_rows
                        yield checked(batch)
                except (duckdb.Error, pa.ArrowException, OSError) as error:
                    raise self._statement_error(error, timed_out, limit_ms) from None
            yield Summary(
                rows=rows,
                elapsed_us=int((time.perf_counter() - started) * 1_000_000),
                rows_scanned=rows_scanned,
            )
        finally:
            release()

    @staticmethod
    def _statement_error(error: Exception, timed_out: threading.Event, limit_ms: int) -> GridError:
        if timed_out.is_set():
            return StatementTimeout(f"the statement ran past its time limit of {limit_ms} ms")
        if isinstance(error, duckdb.Error):
            return duckdb_error(error)
        message = str(error).split("\n")[0]
        if message.startswith("INTERRUPT"):
            return StatementCancelled("the statement was interrupted")
        return InvalidArgument(message, field="statement")

    def _explain(
        self,
        analysis: Analysis,
        tables: dict[str, pa.Table],
        parameters: Sequence[Any],
        plan: list[str],
        started: float,
    ) -> Iterator[Event]:
        pooled = self.pool.acquire()
        try:
            pooled.bind(tables)
            connection = pooled.connection
            text = _duckdb_text(analysis.tree)
            try:
                rows = connection.sql("EXPLAIN " + text, params=list(parameters) or None)
                physical = rows.fetchall() if rows is not None else []
            except duckdb.Error as error:
                raise duckdb_error(error) from None
        finally:
            self.pool.release(pooled)
        lines = ["shoal plan:", *(f"  {line}" for line in plan), "duckdb plan:"]
        for row in physical:
            lines.extend(f"  {line}" for line in str(row[-1]).splitlines())
        schema = pa.schema([("plan", pa.string())])
        yield Header(columns=[("plan", "VARCHAR")], schema=schema, kind="explain")
        yield pa.record_batch([pa.array(lines, pa.string())], schema=schema)
        yield Summary(rows=len(lines), elapsed_us=int((time.perf_counter() - started) * 1e6))
