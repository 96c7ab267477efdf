"""Procedures as code: the ``@procedure`` decorator and what a procedure's ``tx`` offers.

A procedure is a function ``f(tx, *args)`` deployed with the coordinator and run there,
next to the data, as one serializable transaction; a client calls it in one round trip::

    from shoal.procedures import procedure

    @procedure(name="transfer")
    def transfer(tx, src, dst, amount):
        source = tx.get("accounts", src)
        if source["balance"] < amount:
            raise ValueError(f"{src} holds less than {amount}")
        tx.put("accounts", src, {"balance": source["balance"] - amount})
        tx.increment("accounts", dst, "balance", amount)
        return source["balance"] - amount

    # client side: Client(...).call("transfer", "alice", "bob", 10)

The coordinator loads such modules (``shoal serve --procedures procedures/``) and retries a
call whose commit conflicts, running the function again, so a procedure must do nothing
but compute and call ``tx``: no files, sockets, sleeps or clocks (the coordinator refuses
what it can see of these while a procedure runs). Arguments and the result are JSON.
This module only describes procedures, so it imports nothing but the standard library.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ProcedureSpec", "ProcedureTransaction", "procedure"]

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


class ProcedureTransaction(Protocol):
    """What a procedure receives as ``tx``: the SDK's transaction calls, run in the
    coordinator. Reads see one read version and the procedure's own writes; everything
    commits when the procedure returns, or nothing when it raises."""

    @property
    def read_version(self) -> int: ...

    def get(self, map_name: str, key: str) -> Any: ...

    def get_many(self, map_name: str, keys: Iterable[str]) -> dict[str, Any]: ...

    def exists(self, map_name: str, key: str) -> bool: ...

    def put(
        self,
        map_name: str,
        key: str,
        value: Any,
        *,
        if_version: int | None = None,
        if_absent: bool = False,
        if_exists: bool = False,
    ) -> None: ...

    def delete(
        self, map_name: str, key: str, *, if_version: int | None = None, if_exists: bool = False
    ) -> None: ...

    def increment(
        self, map_name: str, key: str, field: str | dict[str, Any], amount: int | float = 1
    ) -> None: ...

    def append(self, map_name: str, key: str, field: str, items: Iterable[Any]) -> None: ...

    def sketch_add(self, map_name: str, key: str, items: Any) -> None: ...


ProcedureFunction = Callable[..., Any]


@dataclass(frozen=True)
class ProcedureSpec:
    """Everything ``@procedure`` declares about one procedure."""

    name: str
    function: ProcedureFunction = field(compare=False, repr=False)
    module: str = ""
    # The parameters after ``tx``, as Python writes them ("src, dst, amount").
    parameters: str = ""
    description: str = ""


def _parameters_after_tx(function: ProcedureFunction) -> str:
    try:
        # Annotations of a module with `from __future__ import annotations` are text.
        signature = inspect.signature(function, eval_str=True)
    except Exception:
        signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1:]
    return ", ".join(
        str(parameter.replace(annotation=_annotation_text(parameter.annotation)))
        for parameter in parameters
    ).replace("'", "")


def _annotation_text(annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) if isinstance(annotation, type) else annotation


def procedure(*, name: str | None = None) -> Callable[[ProcedureFunction], ProcedureFunction]:
    """Declares ``function(tx, ...)`` a procedure called ``name`` (default: the function's
    name). The function stays an ordinary function: tests may call it with any ``tx``."""
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        raise ValueError(f"a procedure name must match {NAME_PATTERN.pattern}, got {name!r}")

    def decorate(function: ProcedureFunction) -> ProcedureFunction:
        if not callable(function):
            raise TypeError("@procedure decorates a function f(tx, ...)")
        if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
            raise TypeError("a procedure is a plain function f(tx, ...), not async or a generator")
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            raise TypeError("@procedure needs a function whose signature can be read") from None
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(
                f"procedure {getattr(function, '__name__', function)!r} must take the "
                "transaction as its first argument: f(tx, ...)"
            )
        procedure_name = name if name is not None else getattr(function, "__name__", "")
        if not NAME_PATTERN.match(procedure_name):
            raise ValueError(f"a procedure name must match {NAME_PATTERN.pattern}")
        doc = inspect.getdoc(function) or ""
        spec = ProcedureSpec(
            name=procedure_name,
            function=function,
            module=getattr(function, "__module__", "") or "",
            parameters=_parameters_after_tx(function),
            description=doc.strip().splitlines()[0] if doc.strip() else "",
        )
        function.__shoal_procedure__ = spec  # type: ignore[attr-defined]
        for collector in _collectors():
            collector.append(spec)
        return function

    return decorate


# Collection of definitions while the coordinator imports procedure modules -----------

_local = threading.local()


def _collectors() -> list[list[ProcedureSpec]]:
    stack: list[list[ProcedureSpec]] | None = getattr(_local, "stack", None)
    return [] if stack is None else stack


@contextmanager
def collecting() -> Iterator[list[ProcedureSpec]]:
    """Gathers the procedures declared by modules imported inside the block (on this
    thread); the coordinator's discovery uses it."""
    stack: list[list[ProcedureSpec]] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    found: list[ProcedureSpec] = []
    stack.append(found)
    try:
        yield found
    finally:
        stack.remove(found)
