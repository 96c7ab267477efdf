"""A PEP 249 (DB-API 2.0) interface to Shoal's SQL.

    import shoal.dbapi as db
    connection = db.connect("127.0.0.1:50051")
    cursor = connection.cursor()
    cursor.execute("SELECT region, sum(amount) FROM orders WHERE ts >= ? GROUP BY 1", [since])
    cursor.fetchall()

Every statement commits on its own (INSERT, UPDATE and DELETE are each one grid
transaction), so `commit` has nothing to do and `rollback` is not supported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from typing import Any

from shoal._client import Client
from shoal._errors import (
    AlreadyExistsError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    ShoalError,
    UnavailableError,
)
from shoal._sql import Cursor as _ResultCursor

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"


class Warning(Exception):
    pass


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


Date = date
Time = time
Timestamp = datetime
Binary = bytes
STRING = "VARCHAR"
BINARY = "BLOB"
NUMBER = "DOUBLE"
DATETIME = "TIMESTAMP WITH TIME ZONE"
ROWID = "VARCHAR"


def _translate(error: ShoalError) -> DatabaseError:
    # A value that breaks a rule of the map's schema (required, type, min, ...) is a
    # constraint violation, as NOT NULL and CHECK failures are in other drivers.
    if isinstance(error, InvalidArgumentError) and error.rule:
        return IntegrityError(str(error))
    if isinstance(error, InvalidArgumentError | NotFoundError):
        return ProgrammingError(str(error))
    if isinstance(error, AlreadyExistsError | FailedPreconditionError):
        return IntegrityError(str(error))
    if isinstance(
        error, ConflictError | UnavailableError | DeadlineExceededError | ResourceExhaustedError
    ):
        return OperationalError(str(error))
    return DatabaseError(str(error))


class Cursor:
    arraysize = 100

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._result: _ResultCursor | None = None
        self._closed = False

    @property
    def description(self) -> list[tuple[str, str, None, None, None, None, None]] | None:
        return None if self._result is None else self._result.description

    @property
    def rowcount(self) -> int:
        return -1 if self._result is None else self._result.rowcount

    def _check(self) -> _ResultCursor:
        if self._closed or self.connection.closed:
            raise InterfaceError("the cursor is closed")
        if self._result is None:
            raise ProgrammingError("execute a statement first")
        return self._result

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        if self._closed or self.connection.closed:
            raise InterfaceError("the cursor is closed")
        try:
            self._result = self.connection.client.sql(operation, parameters)
        except ShoalError as error:
            raise _translate(error) from error
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> Cursor:
        total = 0
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)
            self.fetchall() if self.description else None
            total += max(self.rowcount, 0)
        if self._result is not None:
            self._result.rowcount = total
        return self

    def _fetch(self, method: str, *args: Any) -> Any:
        result = self._check()
        try:
            return getattr(result, method)(*args)
        except ShoalError as error:
            raise _translate(error) from error

    def fetchone(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._fetch("fetchone")
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._fetch("fetchmany", size or self.arraysize)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._fetch("fetchall")
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def close(self) -> None:
        if self._result is not None:
            self._result.close()
        self._closed = True


class Connection:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.closed = False

    def cursor(self) -> Cursor:
        if self.closed:
            raise InterfaceError("the connection is closed")
        return Cursor(self)

    def commit(self) -> None:
        """Statements commit on their own; nothing is pending."""

    def rollback(self) -> None:
        raise NotSupportedError("each statement commits on its own; there is nothing to roll back")

    def close(self) -> None:
        if not self.closed:
            self.client.close()
            self.closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(target: str | Sequence[str] = "127.0.0.1:50051", **options: Any) -> Connection:
    """A DB-API connection; `options` go to `shoal.Client` (timeout_s, ...)."""
    return Connection(Client(target, **options))
