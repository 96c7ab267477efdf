"""The errors sketches raise: bad parameters, wrong kinds, bad items and unreadable bytes."""

from __future__ import annotations


class SketchError(ValueError):
    """Base of every sketch error.

    Each one is bad input from a caller, so each is a ValueError: the server maps
    them all to INVALID_ARGUMENT without knowing the subclasses.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SketchParameterError(SketchError):
    """A sketch parameter (or a query argument) is missing, unknown or out of range."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(reason)
        self.parameter = parameter

    def __str__(self) -> str:
        return f"{self.parameter}: {self.reason}"


# Messages name a query as the SDK, CLI and SQL users call it, not by this library's methods.
QUERY_NAMES = {
    "distinct_count": "estimate",
    "might_contain": "contains",
    "might_contain_many": "contains",
}


class SketchKindError(SketchError):
    """An operation was asked of a sketch kind that does not support it."""

    def __init__(self, operation: str, kind: str, expected: tuple[str, ...]) -> None:
        query = QUERY_NAMES.get(operation, operation)
        reason = f"{query} needs a {' or '.join(expected)} sketch, not {kind}"
        super().__init__(reason)
        self.operation = operation
        self.kind = kind
        self.expected = expected


class SketchItemError(SketchError):
    """An item cannot go into a sketch of this kind (wrong type, NaN, not encodable)."""

    def __init__(self, kind: str, index: int | None, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.index = index

    def __str__(self) -> str:
        where = "" if self.index is None else f" (item {self.index} of the batch)"
        return f"{self.kind}: {self.reason}{where}"


class SketchFormatError(SketchError):
    """Serialized bytes cannot be read as a sketch of the given spec."""
