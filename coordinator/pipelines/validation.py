"""Checks an event before the pipeline's code sees it: decoding, schema, references.

Every failure becomes a `Rejection` naming the stage, the rule, the field and a message;
these travel to the dead-letter topic as headers. Referential checks need the grid, so
`EventValidator.references` only lists what to look up; the applier looks it up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from grid.errors import GridError, ValidationError
from grid.schema import Schema, Validator

STAGE_DECODE = "decode"
STAGE_DEDUP = "dedup"
STAGE_VALIDATE = "validate"
STAGE_APPLY = "apply"
STAGE_COMMIT = "commit"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was not applied."""

    stage: str
    rule: str
    field: str
    message: str


def decode_payload(raw: bytes | None) -> tuple[Any, Rejection | None]:
    """The JSON payload of a record, or why it has none."""
    if raw is None:
        return None, Rejection(STAGE_DECODE, "json", "$", "the record has no value")
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as error:
        return None, Rejection(STAGE_DECODE, "json", "$", f"the value is not JSON: {error}")


def dedup_key_of(document: Any, field_name: str) -> tuple[str | None, Rejection | None]:
    """The event's identity for deduplication: its `field_name`, as text."""
    value = document.get(field_name) if type(document) is dict else None
    if value is None or isinstance(value, dict | list):
        return None, Rejection(
            STAGE_DEDUP,
            "dedup_key",
            field_name,
            f"the event has no usable dedup key field '{field_name}'",
        )
    return value if type(value) is str else str(value), None


def rejection_from_error(error: BaseException, stage: str) -> Rejection:
    """The rejection for an exception raised while applying an event."""
    if isinstance(error, ValidationError):
        return Rejection(stage, error.rule, error.field or "", str(error))
    if isinstance(error, GridError):
        return Rejection(stage, error.status.lower(), error.field or "", error.message)
    return Rejection(stage, "exception", "", f"{type(error).__name__}: {error}")


class EventValidator:
    """An event schema, compiled: types, ranges, patterns, enums, required fields, and the
    fields whose value must be an existing key of another map."""

    def __init__(self, schema: Schema, name: str) -> None:
        self.schema = schema
        self.name = name
        self._validator = Validator(schema)
        self._references = tuple(
            (spec.name, spec.ref) for spec in schema.references() if spec.ref is not None
        )

    @property
    def has_references(self) -> bool:
        return bool(self._references)

    def check(self, document: Any) -> tuple[dict[str, Any] | None, Rejection | None]:
        """The document with defaults filled in, or the first rule it breaks."""
        try:
            return self._validator.validate(document), None
        except ValidationError as error:
            return None, Rejection(STAGE_VALIDATE, error.rule, error.field or "", error.reason)

    def references(self, document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(field, map, key) for every reference the event makes."""
        found = []
        for field_name, target_map in self._references:
            value = document.get(field_name)
            if value is not None:
                found.append((field_name, target_map, str(value)))
        return found


def missing_reference(field_name: str, target_map: str, key: str) -> Rejection:
    return Rejection(
        STAGE_VALIDATE, "ref", field_name, f"'{key}' is not a key of map '{target_map}'"
    )
