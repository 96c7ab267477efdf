"""Statements that change the grid: INSERT, UPDATE, DELETE, CREATE TABLE, DROP TABLE.

INSERT, UPDATE and DELETE first compute their rows with DuckDB at one snapshot (a
SELECT made from the statement), then apply them as ONE grid transaction: every row
is validated against the map's schema and references, and one bad row rolls back the
statement. UPDATE and DELETE write on condition of each row's version, so a row
changed since the snapshot aborts the statement (ABORTED, retry) instead of being
overwritten. INSERT of a key that exists fails with ALREADY_EXISTS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from sqlglot import exp

from coordinator.sql import casts
from coordinator.sql.analysis import Analysis
from coordinator.sql.tables import KEY_COLUMN, VALUE_COLUMN, VERSION_COLUMN, python_value
from coordinator.transactions.manager import TransactionManager
from grid.catalog import MapDefinition
from grid.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument
from grid.memory.records import Op
from grid.participant import Condition, Write
from grid.schema import FieldSpec

if TYPE_CHECKING:
    from coordinator.sql.engine import Event, RunOptions, SqlEngine

SQL_FIELD_TYPES = {
    "TEXT": "string",
    "VARCHAR": "string",
    "CHAR": "string",
    "STRING": "string",
    "UUID": "string",
    "INT": "int",
    "INTEGER": "int",
    "BIGINT": "int",
    "SMALLINT": "int",
    "TINYINT": "int",
    "UBIGINT": "int",
    "UINT": "int",
    "DOUBLE": "float",
    "FLOAT": "float",
    "REAL": "float",
    "DECIMAL": "float",
    "BOOLEAN": "bool",
    "BOOL": "bool",
    "BLOB": "bytes",
    "VARBINARY": "bytes",
    "BINARY": "bytes",
    "TIMESTAMP": "timestamp",
    "TIMESTAMPTZ": "timestamp",
    "DATETIME": "timestamp",
    "DATE": "timestamp",
    "JSON": "json",
}

# How many values of a VALUES list one query computes (see Statements._values).
VALUES_CELLS_MAX = 2048
# A value a VALUES list gives as DEFAULT: the column is left out of the row.
OMITTED = object()

# The key column as an assignment target: text.
KEY_SPEC = FieldSpec(name=KEY_COLUMN, type="string")

CreateMap = Callable[[str, bytes, bool], MapDefinition]
DropMap = Callable[[str, bool], bool]


class Statements:
    def __init__(
        self,
        transactions: TransactionManager,
        create_map: CreateMap,
        drop_map: DropMap,
        transaction_keys_max: int,
    ) -> None:
        self.transactions = transactions
        self.create_map = create_map
        self.drop_map = drop_map
        self.transaction_keys_max = transaction_keys_max
        self.engine: SqlEngine | None = None

    def run(
        self,
        analysis: Analysis,
        parameters: list[Any],
        definition: Callable[[str], MapDefinition],
        options: RunOptions,
    ) -> Iterator[Event]:
        """Runs one statement; `options` carry the client's time limit and cancellation
        to the SELECT that computes the rows."""
        if analysis.kind == "create":
            yield from self._create(analysis)
        elif analysis.kind == "drop":
            yield from self._drop(analysis)
        elif analysis.kind == "insert":
            yield from self._insert(analysis, parameters, definition, options)
        elif analysis.kind == "update":
            yield from self._update(analysis, parameters, definition, options)
        else:
            yield from self._delete(analysis, parameters, definition, options)

    # DDL -------------------------------------------------------------------------

    def _create(self, analysis: Analysis) -> Iterator[Event]:
        tree = analysis.tree
        assert isinstance(tree, exp.Create)
        schema_node = tree.this
        if not isinstance(schema_node, exp.Schema) or not isinstance(schema_node.this, exp.Table):
            raise InvalidArgument("CREATE TABLE needs a column list", field="statement")
        name = schema_node.this.name
        fields: dict[str, dict[str, Any]] = {}
        key_field: str | None = None
        for column in schema_node.expressions:
            if isinstance(column, exp.PrimaryKey):
                keys = [item.name for item in column.expressions]
                if len(keys) != 1:
                    raise InvalidArgument("the primary key must be one column", field="statement")
                key_field = keys[0]
                continue
            if not isinstance(column, exp.ColumnDef):
                raise InvalidArgument(
                    f"unsupported table element {column.sql(dialect='duckdb')!r}",
                    field="statement",
                )
            described, primary = _column_field(column)
            fields[column.name] = described
            if primary:
                key_field = column.name
        if key_field is not None:
            if key_field not in fields:
                raise InvalidArgument(
                    f"primary key '{key_field}' is not a column", field="statement"
                )
            if fields[key_field]["type"] not in ("string", "int"):
                raise InvalidArgument(
                    f"primary key '{key_field}' must be VARCHAR or an integer", field="statement"
                )
            # The key always gives the key field (the schema fills it in from the key), so
            # it is not "required" in the value: an SDK put of {"name": ...} under key "bob"
            # must store id = "bob", not fail for the missing id.
            fields[key_field].pop("required", None)
        schema: dict[str, Any] = {
            "fields": [{"name": field_name, **spec} for field_name, spec in fields.items()]
        }
        if key_field is not None:
            schema["key_field"] = key_field
        self.create_map(name, orjson.dumps(schema), bool(tree.args.get("exists")))
        yield from _affected("create", 0)

    def _drop(self, analysis: Analysis) -> Iterator[Event]:
        tree = analysis.tree
        assert isinstance(tree, exp.Drop)
        # sqlglot 30 keeps the dropped tables in `tables`; older versions in `this`.
        targets = tree.args.get("tables") or ([tree.this] if tree.this is not None else [])
        if len(targets) != 1:
            raise InvalidArgument("DROP TABLE drops one table per statement", field="statement")
        name = targets[0].name
        dropped = self.drop_map(name, bool(tree.args.get("exists")))
        yield from _affected("drop", int(dropped))

    # DML -------------------------------------------------------------------------

    def _rows(
        self,
        queries: list[Any],
        parameters: list[Any],
        definition: Callable[[str], MapDefinition],
        options: RunOptions,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Runs SELECTs at one snapshot of the maps they name: the column names (of the
        first) and the rows of all, in order."""
        from coordinator.sql.engine import Header

        assert self.engine is not None
        names: list[str] = []
        for tree in queries:
            ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
            for table in tree.find_all(exp.Table):
                if table.name and table.name not in names and table.name not in ctes:
                    names.append(table.name)
        definitions = [definition(name) for name in names]
        snapshots = self.engine.snapshots.capture(definitions) if definitions else {}
        tables = {name: snapshot.table for name, snapshot in snapshots.items()}
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        counted = 0
        for index, tree in enumerate(queries):
            batches: list[pa.RecordBatch] = []
            events = self.engine.run_query(
                tree,
                tables,
                parameters,
                timeout_ms=options.timeout_ms,
                cancellation=options.cancellation,
            )
            for event in events:
                if isinstance(event, pa.RecordBatch):
                    # Counted as the rows arrive, before any becomes Python objects
                    # (a few hundred bytes a value): a statement past the limit is
                    # refused without taking that memory.
                    counted += event.num_rows
                    if counted > self.transaction_keys_max:
                        raise InvalidArgument(
                            f"the statement changes more than {self.transaction_keys_max} "
                            f"rows; one statement may change at most "
                            f"{self.transaction_keys_max} (transaction_keys_max)",
                            field="statement",
                        )
                    batches.append(event)
                elif isinstance(event, Header) and index == 0:
                    columns = [name for name, _ in event.columns]
            for batch in batches:
                values = [column.to_pylist() for column in batch.columns]
                rows.extend(zip(*values, strict=True))
        return columns, rows

    def _insert(
        self,
        analysis: Analysis,
        parameters: list[Any],
        definition: Callable[[str], MapDefinition],
        options: RunOptions,
    ) -> Iterator[Event]:
        tree = analysis.tree.copy()
        assert isinstance(tree, exp.Insert)
        target = tree.this
        if isinstance(target, exp.Schema):
            table = target.this
            columns = [item.name for item in target.expressions]
        else:
            table = target
            columns = []
        mapping = definition(table.name)
        if mapping.sketch is not None:
            raise InvalidArgument(f"'{mapping.name}' holds sketches; add items through the SDK")
        columns = columns or _default_columns(mapping)
        repeated = sorted({name for name in columns if columns.count(name) > 1})
        if repeated:
            raise InvalidArgument(
                f"column '{repeated[0]}' is named twice in the INSERT", field="statement"
            )
        source = tree.expression
        if isinstance(source, exp.Values):
            rows = self._values(source, columns, parameters, definition, options)
        elif isinstance(source, exp.Query):
            names, rows = self._rows([source], parameters, definition, options)
            _check_arity(len(names), columns)
        else:
            raise InvalidArgument("INSERT takes VALUES or a SELECT", field="statement")
        writes = []
        seen: set[str] = set()
        for row in rows:
            given = {
                name: value
                for name, value in zip(columns, row, strict=True)
                if value is not OMITTED
            }
            key, document = _document(mapping, given)
            if key in seen:
                raise AlreadyExists(f"the statement inserts key '{key}' twice", field="__key")
            seen.add(key)
            writes.append(
                Write(Op.PUT, mapping.name, key, orjson.dumps(document), Condition("if_absent"))
            )
        try:
            self._commit(writes)
        except FailedPrecondition as error:
            # Only the if_absent condition means a duplicate key; a missing referenced key
            # (and any other precondition) stays FAILED_PRECONDITION.
            if "condition if_absent" not in error.message:
                raise
            raise AlreadyExists(f"duplicate key: {error.message}", field=error.field) from None
        yield from _affected("insert", len(writes))

    def _values(
        self,
        source: exp.Values,
        columns: list[str],
        parameters: list[Any],
        definition: Callable[[str], MapDefinition],
        options: RunOptions,
    ) -> list[tuple[Any, ...]]:
        """The rows of a VALUES list, each value computed on its own.

        DuckDB gives each column of a VALUES list one type, combining the rows' types,
        which fails on `('a', 1), ('b', 'x')` and turns `true` into 1 beside an integer.
        Computing the values as the columns of one-row SELECTs keeps each value's own
        type, so each meets its column's assignment cast alone, as a single-row INSERT
        would."""
        tuples: list[list[exp.Expression]] = []
        for item in source.expressions:
            cells = list(item.expressions) if isinstance(item, exp.Tuple) else [item]
            _check_arity(len(cells), columns)
            tuples.append(cells)
        if not tuples:
            return []
        width = len(columns)
        rows_per_query = max(1, VALUES_CELLS_MAX // width)
        queries: list[Any] = []
        for first in range(0, len(tuples), rows_per_query):
            chunk = [
                exp.null() if _is_default(cell) else cell
                for cells in tuples[first : first + rows_per_query]
                for cell in cells
            ]
            queries.append(
                exp.select(*(exp.alias_(cell, f"v{index}") for index, cell in enumerate(chunk)))
            )
        _, wide = self._rows(queries, parameters, definition, options)
        flat = [value for row in wide for value in row]
        defaults = [_is_default(cell) for cells in tuples for cell in cells]
        flat = [
            OMITTED if default else value for value, default in zip(flat, defaults, strict=True)
        ]
        return [tuple(flat[index : index + width]) for index in range(0, len(flat), width)]

    def _update(
        self,
        analysis: Analysis,
        parameters: list[Any],
        definition: Callable[[str], MapDefinition],
        options: RunOptions,
    ) -> Iterator[Event]:
        tree = analysis.tree.copy()
        assert isinstance(tree, exp.Update)
        mapping = definition(tree.this.name)
        fields = _value_columns(mapping)
        assignments: dict[str, exp.Expression] = {}
        for assignment in tree.expressions:
            name = assignment.left.name
            if name == VERSION_COLUMN:
                raise InvalidArgument(
                    f"column '{VERSION_COLUMN}' is the row's version, which the grid keeps: "
                    "it cannot be set",
                    field="statement",
                )
            if name == KEY_COLUMN or (
                mapping.schema is not None and name == mapping.schema.key_field
            ):
                raise InvalidArgument(
                    f"column '{name}' is the key: it cannot be updated (DELETE the row and "
                    "INSERT it under the new key)",
                    field="statement",
                )
            if name not in fields:
                raise InvalidArgument(
                    f"table '{mapping.name}' has no column '{name}'", field="statement"
                )
            if name in assignments:
                raise InvalidArgument(
                    f"column '{name}' is assigned twice in the UPDATE", field="statement"
                )
            assignments[name] = assignment.right
        select = _selecting(
            mapping,
            tree,
            [exp.alias_(assignments.get(name, exp.column(name)), name) for name in fields],
        )
        names, rows = self._rows([select], parameters, definition, options)
        writes = []
        for values in rows:
            row = dict(zip(names, values, strict=True))
            key, document = _document(
                mapping, {name: row[name] for name in fields}, row[KEY_COLUMN]
            )
            writes.append(
                Write(
                    Op.PUT,
                    mapping.name,
                    key,
                    orjson.dumps(document),
                    Condition("if_version", row[VERSION_COLUMN]),
                )
            )
        self._commit_versioned(writes)
        yield from _affected("update", len(writes))

    def _delete(
        self,
        analysis: Analysis,
        parameters: list[Any],
        definition: Callable[[str], MapDefinition],
        options: RunOptions,
    ) -> Iterator[Event]:
        tree = analysis.tree.copy()
        assert isinstance(tree, exp.Delete)
        mapping = definition(tree.this.name)
        _, rows = self._rows([_selecting(mapping, tree, [])], parameters, definition, options)
        writes = [
            Write(Op.DELETE, mapping.name, key, b"", Condition("if_version", version))
            for key, version in rows
        ]
        self._commit_versioned(writes)
        yield from _affected("delete", len(writes))

    def _commit(self, writes: list[Write]) -> None:
        if writes:
            self.transactions.commit(os.urandom(16), [], writes)

    def _commit_versioned(self, writes: list[Write]) -> None:
        try:
            self._commit(writes)
        except FailedPrecondition as error:
            if "condition if_version" in error.message:
                raise Conflict(
                    f"a row changed while the statement ran ({error.message}); retry it",
                    field=error.field,
                ) from None
            raise


def _selecting(mapping: MapDefinition, statement: exp.Expression, columns: list[Any]) -> Any:
    """The SELECT of the rows an UPDATE or DELETE changes: each row's key and version
    (for the write's condition), then `columns`, under the statement's WHERE."""
    select = exp.select(exp.column(KEY_COLUMN), exp.column(VERSION_COLUMN), *columns).from_(
        _quoted(mapping.name)
    )
    where = statement.args.get("where")
    return select if where is None else select.where(where.this)


def _quoted(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _affected(kind: str, count: int) -> Iterator[Event]:
    from coordinator.sql.engine import Header, Summary

    schema = pa.schema([("rows_affected", pa.int64())])
    yield Header(columns=[("rows_affected", "BIGINT")], schema=schema, kind=kind)
    yield pa.record_batch([pa.array([count], pa.int64())], schema=schema)
    yield Summary(rows=1, rows_affected=count)


def _value_columns(mapping: MapDefinition) -> list[str]:
    if mapping.schema is None:
        return [VALUE_COLUMN]
    return [spec.name for spec in mapping.schema.fields]


def _default_columns(mapping: MapDefinition) -> list[str]:
    if mapping.schema is not None and mapping.schema.key_field:
        return _value_columns(mapping)
    return [KEY_COLUMN, *_value_columns(mapping)]


def _is_default(cell: exp.Expression) -> bool:
    """`DEFAULT` as a value of a VALUES list: the column as if the INSERT left it out."""
    return isinstance(cell, exp.Var) and str(cell.name).upper() == "DEFAULT"


def _check_arity(given: int, columns: list[str]) -> None:
    if given != len(columns):
        raise InvalidArgument(
            f"INSERT gives {given} values for {len(columns)} columns ({', '.join(columns)})",
            field="statement",
        )


def _document(mapping: MapDefinition, row: dict[str, Any], key: Any = None) -> tuple[str, Any]:
    """The key and the stored JSON document of one row, each value cast to its column's
    type (see casts.py). A NULL stays NULL: a DEFAULT does not replace it."""
    unknown = [name for name in row if name not in (KEY_COLUMN, *_value_columns(mapping))]
    if unknown:
        raise InvalidArgument(
            f"table '{mapping.name}' has no column '{unknown[0]}'", field=unknown[0]
        )
    document: Any
    if mapping.schema is None:
        text = row.get(VALUE_COLUMN)
        try:
            document = orjson.loads(text) if isinstance(text, str) else python_value(None, text)
        except orjson.JSONDecodeError:
            document = text
    else:
        specs = mapping.schema.by_name
        # A NULL is stored only where it differs from leaving the field out: beside a
        # DEFAULT, which would otherwise replace it.
        document = {
            name: python_value(specs[name], casts.assign(specs[name], value))
            for name, value in row.items()
            if name != KEY_COLUMN and (value is not None or specs[name].has_default)
        }
    if key is None:
        key = row.get(KEY_COLUMN)
    if key is None and mapping.schema is not None and mapping.schema.key_field:
        key = document.get(mapping.schema.key_field)
    if key is None:
        raise InvalidArgument(
            f"a row of '{mapping.name}' has no key: give __key"
            + (
                f" or {mapping.schema.key_field}"
                if mapping.schema and mapping.schema.key_field
                else ""
            ),
            field=KEY_COLUMN,
        )
    if not isinstance(key, str):
        try:
            key = casts.assign(KEY_SPEC, key)
        except InvalidArgument as error:
            raise InvalidArgument(error.message, field=KEY_COLUMN) from None
    return key, document


def _column_field(column: exp.ColumnDef) -> tuple[dict[str, Any], bool]:
    kind = column.args.get("kind")
    if not isinstance(kind, exp.DataType):
        raise InvalidArgument(f"column '{column.name}' needs a type", field=column.name)
    described: dict[str, Any]
    if kind.is_type(exp.DataType.Type.ARRAY) or kind.is_type(exp.DataType.Type.LIST):
        inner = kind.expressions[0] if kind.expressions else None
        item = _sql_type(inner.sql(dialect="duckdb")) if inner is not None else None
        described = {"type": "list"}
        if item is not None and item not in ("json",):
            described["items"] = item
    else:
        field_type = _sql_type(kind.sql(dialect="duckdb"))
        if field_type is None:
            raise InvalidArgument(
                f"column '{column.name}' has unsupported type {kind.sql(dialect='duckdb')}",
                field=column.name,
            )
        described = {"type": field_type}
    primary = False
    for constraint in column.args.get("constraints") or []:
        detail = constraint.kind
        if isinstance(detail, exp.PrimaryKeyColumnConstraint):
            primary = True
        elif isinstance(detail, exp.NotNullColumnConstraint):
            described["required"] = True
        elif isinstance(detail, exp.DefaultColumnConstraint):
            literal = detail.this
            if not isinstance(literal, exp.Literal | exp.Boolean | exp.Null):
                raise InvalidArgument(
                    f"column '{column.name}': DEFAULT must be a literal", field=column.name
                )
            described["default"] = literal.to_py()
        elif isinstance(detail, exp.Reference):
            target = detail.this
            table = target.this if isinstance(target, exp.Schema) else target
            described["ref"] = table.name
        else:
            raise InvalidArgument(
                f"column '{column.name}': constraint {constraint.sql(dialect='duckdb')} is not "
                "supported (PRIMARY KEY, NOT NULL, DEFAULT and REFERENCES are)",
                field=column.name,
            )
    return described, primary


def _sql_type(text: str) -> str | None:
    base = text.upper().split("(")[0].strip()
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return SQL_FIELD_TYPES.get(base)
