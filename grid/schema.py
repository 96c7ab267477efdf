"""Map schemas: their description, parsing and the validation of values.

A schema is written as a mapping of field name to a type name or a field
description, for example ``{"owner": "string", "balance": {"type": "int", "min": 0}}``,
or in the normalized form ``{"fields": [{"name": ..., "type": ...}, ...]}`` that
``Schema.to_json`` produces. Fields are optional unless ``"required": true``;
values may not carry fields the schema does not name.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grid import values
from grid.errors import InvalidArgument, ResourceExhausted, ValidationError
from grid.patterns import compile_pattern

FIELD_TYPES = ("string", "int", "float", "bool", "bytes", "timestamp", "list", "map", "json")
SCALAR_TYPES = ("string", "int", "float", "bool", "bytes", "timestamp")
FIELD_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
FIELD_KEYS = frozenset(
    {
        "name",
        "type",
        "required",
        "default",
        "min",
        "max",
        "min_length",
        "max_length",
        "pattern",
        "enum",
        "ref",
        "items",
        "doc",
    }
)
INT_MIN = values.INT_MIN
INT_MAX = values.INT_MAX

Checker = Callable[[Any], None]


@dataclass(frozen=True)
class FieldSpec:
    """One field of a schema."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    has_default: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    ref: str | None = None
    items: str | None = None
    doc: str | None = None

    def to_json(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.required:
            described["required"] = True
        if self.has_default:
            described["default"] = self.default
        for name, value in (
            ("min", self.minimum),
            ("max", self.maximum),
            ("min_length", self.min_length),
            ("max_length", self.max_length),
            ("pattern", self.pattern),
            ("ref", self.ref),
            ("items", self.items),
            ("doc", self.doc),
        ):
            if value is not None:
                described[name] = value
        if self.enum is not None:
            described["enum"] = list(self.enum)
        return described


@dataclass(frozen=True)
class Schema:
    """The fields of a map's values, and which field, if any, mirrors the key."""

    fields: tuple[FieldSpec, ...]
    key_field: str | None = None
    version: int = 1
    by_name: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({spec.name: spec for spec in self.fields})

    def to_json(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "version": self.version,
            "fields": [spec.to_json() for spec in self.fields],
        }
        if self.key_field is not None:
            described["key_field"] = self.key_field
        return described

    def references(self) -> list[FieldSpec]:
        return [spec for spec in self.fields if spec.ref is not None]

    def with_version(self, version: int) -> Schema:
        return Schema(fields=self.fields, key_field=self.key_field, version=version)


def parse_schema(described: Any, *, fields_max: int | None = None) -> Schema:
    """Builds a Schema from its JSON description, or raises InvalidArgument naming the fault.

    `fields_max` bounds the number of fields (ResourceExhausted past it), checked before
    any field is parsed; a stored schema is loaded without it."""
    if not isinstance(described, Mapping):
        raise InvalidArgument("schema must be a JSON object", field="schema")
    key_field = None
    version = 1
    normalized_keys = {"fields", "key_field", "version"}
    if isinstance(described.get("fields"), list) and set(described) <= normalized_keys:
        raw_fields: list[tuple[str, Any]] = []
        for position, item in enumerate(described["fields"]):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise InvalidArgument(
                    f"schema.fields[{position}] must be an object with a string 'name'",
                    field=f"schema.fields[{position}]",
                )
            raw_fields.append((item["name"], item))
        key_field = described.get("key_field")
        version = described.get("version", 1)
        if not isinstance(version, int) or version < 1:
            raise InvalidArgument("schema.version must be a positive integer", field="schema")
    else:
        raw_fields = list(described.items())
    if not raw_fields:
        raise InvalidArgument("schema must name at least one field", field="schema")
    if fields_max is not None and len(raw_fields) > fields_max:
        raise ResourceExhausted(
            f"schema has {len(raw_fields)} fields; the limit is {fields_max} "
            "(setting schema_fields_max)",
            field="schema",
        )
    specs = tuple(_parse_field(name, item) for name, item in raw_fields)
    names = [spec.name for spec in specs]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InvalidArgument(f"schema names field '{duplicates[0]}' twice", field="schema")
    if key_field is not None and key_field not in names:
        raise InvalidArgument(
            f"schema.key_field '{key_field}' is not a field of the schema", field="schema"
        )
    return Schema(fields=specs, key_field=key_field, version=version)


def _parse_field(name: Any, item: Any) -> FieldSpec:
    where = f"schema.{name}"
    if not isinstance(name, str) or not FIELD_NAME_PATTERN.match(name):
        raise InvalidArgument(
            f"field name {name!r} must match {FIELD_NAME_PATTERN.pattern}", field=where
        )
    if name.startswith("__"):
        raise InvalidArgument(f"field name '{name}' is reserved (leading '__')", field=where)
    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, Mapping):
        raise InvalidArgument(f"{where} must be a type name or an object", field=where)
    unknown = sorted(set(item) - FIELD_KEYS)
    if unknown:
        raise InvalidArgument(f"{where} has unknown property '{unknown[0]}'", field=where)
    field_type = item.get("type")
    if field_type not in FIELD_TYPES:
        raise InvalidArgument(
            f"{where}.type must be one of {', '.join(FIELD_TYPES)}, got {field_type!r}",
            field=where,
        )
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise InvalidArgument(f"{where}.required must be true or false", field=where)
    minimum = _number_or_none(item, "min", where)
    maximum = _number_or_none(item, "max", where)
    if (minimum is not None or maximum is not None) and field_type not in ("int", "float"):
        raise InvalidArgument(f"{where}: min/max apply to int and float fields", field=where)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InvalidArgument(f"{where}: min {minimum} exceeds max {maximum}", field=where)
    min_length = _length_or_none(item, "min_length", where)
    max_length = _length_or_none(item, "max_length", where)
    if (min_length is not None or max_length is not None) and field_type not in (
        "string",
        "bytes",
        "list",
    ):
        raise InvalidArgument(
            f"{where}: min_length/max_length apply to string, bytes and list fields", field=where
        )
    pattern = item.get("pattern")
    if pattern is not None:
        if field_type != "string" or not isinstance(pattern, str):
            raise InvalidArgument(
                f"{where}.pattern must be a string on a string field", field=where
            )
        compile_pattern(pattern, where)
    enum = item.get("enum")
    if enum is not None:
        if not isinstance(enum, list) or not enum or field_type not in ("string", "int"):
            raise InvalidArgument(
                f"{where}.enum must be a non-empty list on a string or int field", field=where
            )
        enum = tuple(enum)
    ref = item.get("ref")
    if ref is not None and (not isinstance(ref, str) or field_type not in ("string", "int")):
        raise InvalidArgument(f"{where}.ref must name a map, on a string or int field", field=where)
    items = item.get("items")
    if items is not None and (field_type != "list" or items not in SCALAR_TYPES):
        raise InvalidArgument(
            f"{where}.items must be a scalar type name on a list field", field=where
        )
    doc = item.get("doc")
    if doc is not None and not isinstance(doc, str):
        raise InvalidArgument(f"{where}.doc must be a string", field=where)
    spec = FieldSpec(
        name=name,
        type=field_type,
        required=required,
        minimum=minimum,
        maximum=maximum,
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
        enum=enum,
        ref=ref,
        items=items,
        doc=doc,
    )
    if "default" in item:
        default = item["default"]
        try:
            _field_checker(spec)(default)
        except ValidationError as error:
            raise InvalidArgument(
                f"{where}.default is invalid: {error.reason}", field=where
            ) from None
        spec = FieldSpec(**{**spec.__dict__, "default": default, "has_default": True})
    return spec


def _number_or_none(item: Mapping[str, Any], name: str, where: str) -> float | None:
    number = item.get(name)
    if number is None:
        return None
    if isinstance(number, bool) or not isinstance(number, int | float) or math.isnan(number):
        raise InvalidArgument(f"{where}.{name} must be a number", field=where)
    return number


def _length_or_none(item: Mapping[str, Any], name: str, where: str) -> int | None:
    length = item.get(name)
    if length is None:
        return None
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise InvalidArgument(f"{where}.{name} must be a non-negative integer", field=where)
    return length


def _type_checker(field_name: str, field_type: str) -> Checker:
    """A function that raises ValidationError unless its argument has the type."""

    def fail(value: Any) -> None:
        raise ValidationError(field_name, "type", f"expected {field_type}, got {_describe(value)}")

    if field_type == "string":

        def check_string(value: Any) -> None:
            if type(value) is not str:
                fail(value)

        return check_string
    if field_type == "int":

        def check_int(value: Any) -> None:
            if type(value) is not int:
                fail(value)
            if not INT_MIN <= value <= INT_MAX:
                raise ValidationError(field_name, "type", "integer does not fit in 64 bits")

        return check_int
    if field_type == "float":

        def check_float(value: Any) -> None:
            if type(value) is not float and type(value) is not int:
                fail(value)

        return check_float
    if field_type == "bool":

        def check_bool(value: Any) -> None:
            if type(value) is not bool:
                fail(value)

        return check_bool
    if field_type == "bytes":

        def check_bytes(value: Any) -> None:
            if values.tagged_bytes(value) is None:
                fail(value)

        return check_bytes
    if field_type == "timestamp":

        def check_timestamp(value: Any) -> None:
            if values.tagged_timestamp(value) is None:
                fail(value)

        return check_timestamp
    if field_type == "list":

        def check_list(value: Any) -> None:
            if type(value) is not list:
                fail(value)

        return check_list
    if field_type == "map":

        def check_map(value: Any) -> None:
            if type(value) is not dict:
                fail(value)

        return check_map
    return lambda value: None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is dict and len(value) == 1:
        # A tag that does not decode is described as what it holds, so that the message
        # never reads "expected timestamp, got timestamp".
        if values.BYTES_TAG in value:
            if values.tagged_bytes(value) is None:
                return f"a malformed bytes tag (not base64: {value[values.BYTES_TAG]!r})"
            return "bytes"
        if values.TIMESTAMP_TAG in value:
            if values.tagged_timestamp(value) is None:
                return f"a malformed timestamp (not ISO 8601: {value[values.TIMESTAMP_TAG]!r})"
            return "timestamp"
    return {
        str: "string",
        int: "int",
        float: "float",
        bool: "bool",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _length_of(spec: FieldSpec, value: Any) -> int:
    if spec.type == "bytes":
        data = values.tagged_bytes(value)
        return len(data) if data is not None else 0
    return len(value)


def _field_checker(spec: FieldSpec) -> Checker:
    """All the rules of one field, compiled into one function."""
    checks: list[Checker] = [_type_checker(spec.name, spec.type)]
    name = spec.name
    if spec.minimum is not None:
        minimum = spec.minimum

        def check_min(value: Any) -> None:
            if value < minimum:
                raise ValidationError(name, "min", f"{value} is below the minimum {minimum}")

        checks.append(check_min)
    if spec.maximum is not None:
        maximum = spec.maximum

        def check_max(value: Any) -> None:
            if value > maximum:
                raise ValidationError(name, "max", f"{value} is above the maximum {maximum}")

        checks.append(check_max)
    if spec.min_length is not None:
        min_length = spec.min_length

        def check_min_length(value: Any) -> None:
            if _length_of(spec, value) < min_length:
                raise ValidationError(
                    name, "min_length", f"length is below the minimum {min_length}"
                )

        checks.append(check_min_length)
    if spec.max_length is not None:
        max_length = spec.max_length

        def check_max_length(value: Any) -> None:
            length = _length_of(spec, value)
            if length > max_length:
                raise ValidationError(
                    name, "max_length", f"length {length} exceeds the maximum {max_length}"
                )

        checks.append(check_max_length)
    if spec.pattern is not None:
        compiled = compile_pattern(spec.pattern, f"schema.{name}")

        def check_pattern(value: Any) -> None:
            if compiled.fullmatch(value) is None:
                raise ValidationError(
                    name, "pattern", f"{value!r} does not match the pattern {compiled.pattern!r}"
                )

        checks.append(check_pattern)
    if spec.enum is not None:
        allowed = frozenset(spec.enum)
        shown = ", ".join(repr(item) for item in spec.enum)

        def check_enum(value: Any) -> None:
            if value not in allowed:
                raise ValidationError(name, "enum", f"{value!r} is not one of {shown}")

        checks.append(check_enum)
    if spec.items is not None:
        item_check = _type_checker(f"{name}[]", spec.items)

        def check_items(value: Any) -> None:
            for item in value:
                item_check(item)

        checks.append(check_items)
    if len(checks) == 1:
        return checks[0]

    def check_all(value: Any) -> None:
        for check in checks:
            check(value)

    return check_all


class Validator:
    """Checks values against a schema, filling in defaults."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._checks = {spec.name: _field_checker(spec) for spec in schema.fields}
        self._required = [spec.name for spec in schema.fields if spec.required]
        self._defaults = {spec.name: spec.default for spec in schema.fields if spec.has_default}
        self._known = frozenset(self._checks)

    def validate(self, document: Any, key: str | None = None) -> dict[str, Any]:
        """The value with defaults filled in, or a ValidationError naming field and rule."""
        if type(document) is not dict:
            raise ValidationError("$", "type", f"expected an object, got {_describe(document)}")
        value: dict[str, Any] = document
        unknown = value.keys() - self._known
        if unknown:
            name = sorted(unknown)[0]
            raise ValidationError(name, "unknown_field", "the schema has no such field")
        if self._defaults:
            missing_defaults = self._defaults.keys() - value.keys()
            if missing_defaults:
                value = {**value, **{name: self._defaults[name] for name in missing_defaults}}
        for name in self._required:
            if value.get(name) is None:
                raise ValidationError(name, "required", "the field is required")
        checks = self._checks
        for name, item in value.items():
            if item is not None:
                checks[name](item)
        key_field = self.schema.key_field
        if key_field is not None and key is not None:
            stated = value.get(key_field)
            if stated is None:
                filled: Any = key
                if self.schema.by_name[key_field].type == "int":
                    try:
                        filled = int(key)
                    except ValueError:
                        raise ValidationError(
                            key_field, "type", f"the key {key!r} is not an int"
                        ) from None
                    if str(filled) != key:
                        # One integer, one key: '05' beside '5' would hold the same
                        # primary key twice (and SQL's `id = 5` must find one row).
                        raise ValidationError(
                            key_field, "type", f"the key {key!r} is not written as {filled}"
                        )
                checks[key_field](filled)
                value = {**value, key_field: filled}
            elif str(stated) != key:
                raise ValidationError(
                    key_field, "key_field", f"{stated!r} differs from the key {key!r}"
                )
        return value


def check_compatible(old: Schema, new: Schema) -> None:
    """Raises FailedPrecondition-worthy InvalidArgument unless values valid under `old` stay
    valid under `new`: fields may be added when optional or defaulted, constraints loosened."""
    for old_spec in old.fields:
        new_spec = new.by_name.get(old_spec.name)
        if new_spec is None:
            raise InvalidArgument(
                f"removing field '{old_spec.name}' would orphan the values stored",
                field=old_spec.name,
            )
        _check_field_compatible(old_spec, new_spec)
    for new_spec in new.fields:
        if new_spec.name in old.by_name:
            continue
        if new_spec.required and not new_spec.has_default:
            raise InvalidArgument(
                f"adding required field '{new_spec.name}' without a default could "
                "invalidate stored values",
                field=new_spec.name,
            )
    if old.key_field != new.key_field:
        raise InvalidArgument("the key field of a map cannot change", field="key_field")


def _check_field_compatible(old: FieldSpec, new: FieldSpec) -> None:
    name = old.name

    def refuse(what: str) -> None:
        raise InvalidArgument(f"field '{name}': {what} could invalidate stored values", field=name)

    if old.type != new.type:
        refuse(f"changing the type from {old.type} to {new.type}")
    if new.required and not old.required and not new.has_default:
        refuse("making the field required without a default")
    if new.minimum is not None and (old.minimum is None or new.minimum > old.minimum):
        refuse("raising the minimum")
    if new.maximum is not None and (old.maximum is None or new.maximum < old.maximum):
        refuse("lowering the maximum")
    if new.min_length is not None and (old.min_length is None or new.min_length > old.min_length):
        refuse("raising the minimum length")
    if new.max_length is not None and (old.max_length is None or new.max_length < old.max_length):
        refuse("lowering the maximum length")
    if new.pattern is not None and new.pattern != old.pattern:
        refuse("changing the pattern")
    if new.enum is not None and (old.enum is None or not set(old.enum) <= set(new.enum)):
        refuse("removing enum values")
    if new.ref != old.ref:
        refuse("changing the reference")
    if new.items != old.items and new.items is not None:
        refuse("changing the item type")
