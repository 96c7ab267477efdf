"""Unit tests of grid.schema: parsing, validation of values, and compatible changes."""

from typing import Any

import pytest

from grid.errors import InvalidArgument, ResourceExhausted, ValidationError
from grid.schema import FIELD_TYPES, FieldSpec, Schema, Validator, check_compatible, parse_schema


def validator(described: Any) -> Validator:
    return Validator(parse_schema(described))


def rejection(described: Any, document: Any, key: str | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validator(described).validate(document, key)
    return caught.value


def refusal(described: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_schema(described)
    assert not isinstance(caught.value, ValidationError)
    return caught.value


# Parsing ------------------------------------------------------------------------


def test_shorthand_parses_type_names_and_descriptions():
    schema = parse_schema({"owner": "string", "balance": {"type": "int", "min": 0}})
    assert [spec.name for spec in schema.fields] == ["owner", "balance"]
    assert schema.by_name["owner"] == FieldSpec(name="owner", type="string")
    assert schema.by_name["balance"].minimum == 0
    assert schema.by_name["balance"].required is False
    assert schema.key_field is None
    assert schema.version == 1


def test_normalized_form_round_trips_through_to_json():
    described = {
        "owner": {"type": "string", "required": True, "pattern": "[a-z]+", "doc": "who"},
        "balance": {"type": "int", "min": 0, "max": 100, "default": 5},
        "ratio": {"type": "float", "min": -1.5, "max": 1.5},
        "active": "bool",
        "blob": {"type": "bytes", "max_length": 16, "min_length": 1},
        "seen": "timestamp",
        "tags": {"type": "list", "items": "string", "max_length": 3},
        "extra": "map",
        "anything": "json",
        "color": {"type": "string", "enum": ["red", "green"]},
        "id": {"type": "string", "ref": "people"},
    }
    schema = parse_schema(described)
    normalized = schema.to_json()
    assert normalized["version"] == 1
    assert normalized["fields"][0] == {
        "name": "owner",
        "type": "string",
        "required": True,
        "pattern": "[a-z]+",
        "doc": "who",
    }
    assert normalized["fields"][1] == {
        "name": "balance",
        "type": "int",
        "default": 5,
        "min": 0,
        "max": 100,
    }
    assert normalized["fields"][9]["enum"] == ["red", "green"]
    again = parse_schema(normalized)
    assert again == schema
    assert again.to_json() == normalized


def test_normalized_form_keeps_key_field_and_version():
    described = {
        "version": 3,
        "key_field": "id",
        "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "int"}],
    }
    schema = parse_schema(described)
    assert schema.key_field == "id"
    assert schema.version == 3
    assert schema.to_json() == described
    assert parse_schema(schema.to_json()) == schema


def test_with_version_keeps_fields():
    schema = parse_schema({"a": "int"})
    bumped = schema.with_version(2)
    assert bumped.version == 2
    assert bumped.fields == schema.fields
    assert bumped.by_name["a"].type == "int"


def test_references_lists_fields_with_ref():
    schema = parse_schema({"owner": {"type": "string", "ref": "people"}, "n": "int"})
    assert [spec.name for spec in schema.references()] == ["owner"]


@pytest.mark.parametrize(
    ("described", "message"),
    [
        ([], "schema must be a JSON object"),
        ("string", "schema must be a JSON object"),
        ({}, "at least one field"),
        ({"fields": []}, "at least one field"),
        ({"a": "integer"}, "schema.a.type must be one of"),
        ({"a": {"min": 1}}, "schema.a.type must be one of"),
        ({"a": 5}, "schema.a must be a type name or an object"),
        ({"a": {"type": "int", "minimum": 1}}, "unknown property 'minimum'"),
        ({"a": {"type": "int", "required": "yes"}}, "schema.a.required must be true or false"),
        ({"a": {"type": "string", "min": 1}}, "min/max apply to int and float"),
        ({"a": {"type": "int", "min": 5, "max": 1}}, "min 5 exceeds max 1"),
        ({"a": {"type": "int", "min": "1"}}, "schema.a.min must be a number"),
        ({"a": {"type": "int", "max": True}}, "schema.a.max must be a number"),
        ({"a": {"type": "int", "max_length": 3}}, "min_length/max_length apply to"),
        ({"a": {"type": "string", "min_length": -1}}, "min_length must be a non-negative"),
        ({"a": {"type": "string", "max_length": 1.5}}, "max_length must be a non-negative"),
        ({"a": {"type": "int", "pattern": "x"}}, "pattern must be a string on a string field"),
        ({"a": {"type": "string", "pattern": "("}}, "schema.a.pattern is not a regular expression"),
        ({"a": {"type": "string", "pattern": "(?=x)x"}}, "lookaround are not supported"),
        ({"a": {"type": "string", "pattern": r"(a)\1"}}, "backreferences and lookaround"),
        ({"a": {"type": "string", "pattern": "a" * 5000}}, "the limit is 4096"),
        ({"a": {"type": "float", "enum": [1.5]}}, "enum must be a non-empty list"),
        ({"a": {"type": "string", "enum": []}}, "enum must be a non-empty list"),
        ({"a": {"type": "string", "enum": "red"}}, "enum must be a non-empty list"),
        ({"a": {"type": "bool", "ref": "m"}}, "ref must name a map"),
        ({"a": {"type": "string", "ref": 5}}, "ref must name a map"),
        ({"a": {"type": "string", "items": "int"}}, "items must be a scalar type name"),
        ({"a": {"type": "list", "items": "map"}}, "items must be a scalar type name"),
        ({"a": {"type": "string", "doc": 5}}, "schema.a.doc must be a string"),
        ({"a": {"type": "int", "default": "x"}}, "schema.a.default is invalid: expected int"),
        ({"a": {"type": "int", "min": 0, "default": -1}}, "default is invalid: -1 is below"),
        ({"a": {"type": "int", "default": None}}, "default is invalid: expected int, got null"),
    ],
)
def test_malformed_schemas_are_refused_naming_the_problem(described, message):
    assert message in str(refusal(described))


def test_malformed_field_errors_name_the_field():
    assert refusal({"amount": {"type": "int", "min": "x"}}).field == "schema.amount"
    assert refusal({"amount": "decimal"}).field == "schema.amount"


@pytest.mark.parametrize("name", ["1abc", "has space", "dash-ed", "", "x" * 129, "é"])
def test_invalid_field_names_are_refused(name):
    error = refusal({name: "string"})
    assert "must match" in str(error)


def test_longest_field_name_is_accepted():
    assert parse_schema({"x" * 128: "string"}).fields[0].name == "x" * 128


@pytest.mark.parametrize("name", ["__key", "__anything"])
def test_reserved_field_names_are_refused(name):
    error = refusal({name: "string"})
    assert "reserved" in str(error)
    assert error.field == f"schema.{name}"


def test_single_leading_underscore_is_allowed():
    assert parse_schema({"_private": "int"}).fields[0].name == "_private"


def test_normalized_form_errors():
    assert "schema.fields[1]" in str(
        refusal({"fields": [{"name": "a", "type": "int"}, {"type": "int"}]})
    )
    assert "names field 'a' twice" in str(
        refusal({"fields": [{"name": "a", "type": "int"}, {"name": "a", "type": "string"}]})
    )
    assert "key_field 'b' is not a field" in str(
        refusal({"fields": [{"name": "a", "type": "int"}], "key_field": "b"})
    )
    assert "version must be a positive integer" in str(
        refusal({"fields": [{"name": "a", "type": "int"}], "version": 0})
    )


def test_field_types_are_the_documented_set():
    assert set(FIELD_TYPES) == {
        "string",
        "int",
        "float",
        "bool",
        "bytes",
        "timestamp",
        "list",
        "map",
        "json",
    }


# Types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_type", "good", "bad", "described_as"),
    [
        ("string", "hello", 5, "int"),
        ("int", 5, 5.5, "float"),
        ("int", -(2**63), "5", "string"),
        ("float", 1.5, "1.5", "string"),
        ("float", 3, True, "bool"),
        ("bool", False, 0, "int"),
        ("bytes", {"$bytes": "aGVsbG8="}, "aGVsbG8=", "string"),
        ("bytes", {"$bytes": ""}, {"$bytes": "not base64!"}, "a malformed bytes tag"),
        ("timestamp", {"$ts": "2024-06-11T10:00:00+02:00"}, "2024-06-11", "string"),
        (
            "timestamp",
            {"$ts": "2024-06-11T10:00:00"},
            {"$ts": "yesterday"},
            "a malformed timestamp",
        ),
        ("list", [1, "a"], {"a": 1}, "object"),
        ("map", {"a": [1]}, [1], "list"),
    ],
)
def test_each_type_accepts_its_values_and_refuses_others(field_type, good, bad, described_as):
    check = validator({"f": field_type})
    assert check.validate({"f": good}) == {"f": good}
    with pytest.raises(ValidationError) as caught:
        check.validate({"f": bad})
    assert caught.value.field == "f"
    assert caught.value.rule == "type"
    assert f"expected {field_type}, got {described_as}" in str(caught.value)


def test_bool_is_not_an_int():
    error = rejection({"f": "int"}, {"f": True})
    assert error.rule == "type"
    assert "got bool" in str(error)


def test_int_must_fit_in_64_bits():
    check = validator({"f": "int"})
    assert check.validate({"f": 2**63 - 1}) == {"f": 2**63 - 1}
    for value in (2**63, -(2**63) - 1):
        with pytest.raises(ValidationError) as caught:
            check.validate({"f": value})
        assert caught.value.rule == "type"
        assert "64 bits" in str(caught.value)


def test_bytes_tag_must_be_the_only_key():
    error = rejection({"f": "bytes"}, {"f": {"$bytes": "aGk=", "other": 1}})
    assert error.rule == "type"


def test_json_accepts_any_document():
    check = validator({"f": "json"})
    for value in (1, "s", [1, {"a": None}], {"deep": {"er": [True]}}, 1.5, False):
        assert check.validate({"f": value}) == {"f": value}


def test_list_items_are_checked():
    check = validator({"tags": {"type": "list", "items": "int"}})
    assert check.validate({"tags": [1, 2, 3]}) == {"tags": [1, 2, 3]}
    with pytest.raises(ValidationError) as caught:
        check.validate({"tags": [1, "two"]})
    assert caught.value.field == "tags[]"
    assert caught.value.rule == "type"
    assert "expected int, got string" in str(caught.value)


def test_list_items_of_bytes_and_timestamps():
    check = validator({"blobs": {"type": "list", "items": "bytes"}})
    assert check.validate({"blobs": [{"$bytes": "AA=="}]})
    with pytest.raises(ValidationError):
        check.validate({"blobs": ["AA=="]})


def test_value_must_be_an_object():
    for document in ([1], "text", 5, None):
        with pytest.raises(ValidationError) as caught:
            validator({"f": "int"}).validate(document)
        assert caught.value.field == "$"
        assert caught.value.rule == "type"


# Required, optional and defaults ---------------------------------------------------


def test_optional_fields_may_be_absent_or_null():
    check = validator({"a": "int", "b": "string"})
    assert check.validate({}) == {}
    assert check.validate({"a": None}) == {"a": None}


def test_required_field_missing_or_null_is_refused():
    described = {"a": {"type": "int", "required": True}, "b": "string"}
    for document in ({"b": "x"}, {"a": None}):
        error = rejection(described, document)
        assert error.field == "a"
        assert error.rule == "required"
        assert "field 'a'" in str(error)
        assert "(rule: required)" in str(error)


def test_defaults_fill_missing_fields_without_changing_the_input():
    check = validator({"a": {"type": "int", "default": 7}, "b": "string"})
    document = {"b": "x"}
    assert check.validate(document) == {"a": 7, "b": "x"}
    assert document == {"b": "x"}
    assert check.validate({"a": 1}) == {"a": 1}


def test_required_field_with_default_is_filled():
    check = validator({"a": {"type": "string", "required": True, "default": "z"}})
    assert check.validate({}) == {"a": "z"}
    with pytest.raises(ValidationError) as caught:
        check.validate({"a": None})
    assert caught.value.rule == "required"


def test_unknown_fields_are_refused():
    error = rejection({"a": "int"}, {"a": 1, "zeta": 2, "beta": 3})
    assert error.field == "beta"
    assert error.rule == "unknown_field"


# Constraints ----------------------------------------------------------------------


def test_min_and_max_are_inclusive():
    check = validator({"n": {"type": "int", "min": 0, "max": 10}})
    assert check.validate({"n": 0}) == {"n": 0}
    assert check.validate({"n": 10}) == {"n": 10}
    below = rejection({"n": {"type": "int", "min": 0, "max": 10}}, {"n": -1})
    assert (below.field, below.rule) == ("n", "min")
    above = rejection({"n": {"type": "int", "min": 0, "max": 10}}, {"n": 11})
    assert (above.field, above.rule) == ("n", "max")
    assert "11 is above the maximum 10" in str(above)


def test_float_bounds():
    described = {"x": {"type": "float", "min": -0.5, "max": 0.5}}
    assert validator(described).validate({"x": 0.5}) == {"x": 0.5}
    assert rejection(described, {"x": 0.51}).rule == "max"
    assert rejection(described, {"x": -1}).rule == "min"


def test_string_lengths_count_characters():
    described = {"s": {"type": "string", "min_length": 2, "max_length": 3}}
    check = validator(described)
    assert check.validate({"s": "ab"})
    assert check.validate({"s": "äöü"})
    assert rejection(described, {"s": "a"}).rule == "min_length"
    error = rejection(described, {"s": "abcd"})
    assert (error.field, error.rule) == ("s", "max_length")
    assert "length 4 exceeds the maximum 3" in str(error)


def test_bytes_lengths_count_decoded_bytes():
    described = {"b": {"type": "bytes", "max_length": 5}}
    check = validator(described)
    assert check.validate({"b": {"$bytes": "aGVsbG8="}})  # five bytes, eight characters
    assert rejection(described, {"b": {"$bytes": "aGVsbG8h"}}).rule == "max_length"


def test_list_lengths():
    described = {"l": {"type": "list", "min_length": 1, "max_length": 2}}
    assert validator(described).validate({"l": [1, 2]})
    assert rejection(described, {"l": []}).rule == "min_length"
    assert rejection(described, {"l": [1, 2, 3]}).rule == "max_length"


def test_pattern_must_match_the_whole_string():
    described = {"code": {"type": "string", "pattern": "[A-Z]{3}"}}
    check = validator(described)
    assert check.validate({"code": "ABC"}) == {"code": "ABC"}
    for text in ("ABCD", "xABC", "AB"):
        error = rejection(described, {"code": text})
        assert (error.field, error.rule) == ("code", "pattern")


@pytest.mark.timeout(60)
def test_patterns_match_in_linear_time():
    # With a backtracking engine this pattern takes exponential time on the value: one put
    # held the server for good. RE2 answers at once; the per-test timeout is the guard.
    described = {"a": {"type": "string", "pattern": "(a+)+$"}}
    check = validator(described)
    for length in (40, 1000, 100_000):
        error = rejection(described, {"a": "a" * length + "!"})
        assert (error.field, error.rule) == ("a", "pattern")
    assert check.validate({"a": "a" * 100_000}) == {"a": "a" * 100_000}


def test_a_refused_pattern_names_its_field():
    error = refusal({"ok": "string", "code": {"type": "string", "pattern": "(?<=x)y"}})
    assert error.field == "schema.code"


def test_enum_of_strings_and_ints():
    colors = {"c": {"type": "string", "enum": ["red", "green"]}}
    assert validator(colors).validate({"c": "red"})
    error = rejection(colors, {"c": "blue"})
    assert (error.field, error.rule) == ("c", "enum")
    assert "'blue' is not one of 'red', 'green'" in str(error)
    sizes = {"n": {"type": "int", "enum": [1, 2]}}
    assert validator(sizes).validate({"n": 2})
    assert rejection(sizes, {"n": 3}).rule == "enum"


def test_type_is_checked_before_other_rules():
    error = rejection({"n": {"type": "int", "min": 0}}, {"n": "zero"})
    assert error.rule == "type"


def test_validation_error_is_an_invalid_argument_with_reason():
    error = rejection({"n": {"type": "int", "max": 1}}, {"n": 2})
    assert isinstance(error, InvalidArgument)
    assert error.status == "INVALID_ARGUMENT"
    assert error.reason == "2 is above the maximum 1"
    assert str(error) == "field 'n': 2 is above the maximum 1 (rule: max)"


# Key field ------------------------------------------------------------------------


def key_schema(key_type: str = "string") -> dict[str, Any]:
    return {
        "key_field": "id",
        "fields": [{"name": "id", "type": key_type}, {"name": "n", "type": "int"}],
    }


def test_key_field_is_filled_from_the_key():
    check = validator(key_schema())
    assert check.validate({"n": 1}, key="k1") == {"n": 1, "id": "k1"}
    assert check.validate({"n": 1, "id": None}, key="k1") == {"n": 1, "id": "k1"}


def test_key_field_matching_the_key_is_accepted():
    assert validator(key_schema()).validate({"id": "k1"}, key="k1") == {"id": "k1"}
    assert validator(key_schema("int")).validate({"id": 5}, key="5") == {"id": 5}


def test_key_field_differing_from_the_key_is_refused():
    error = rejection(key_schema(), {"id": "k2"}, key="k1")
    assert (error.field, error.rule) == ("id", "key_field")
    assert "differs from the key" in str(error)


def test_key_field_is_left_alone_without_a_key():
    assert validator(key_schema()).validate({"n": 1}) == {"n": 1}


def test_filled_key_field_obeys_the_field_type():
    check = validator(key_schema("int"))
    try:
        value = check.validate({"n": 1}, key="not-a-number")
    except ValidationError:
        return
    assert type(value["id"]) is int


# Compatibility --------------------------------------------------------------------


BASE: dict[str, Any] = {
    "name": {"type": "string", "required": True, "max_length": 10, "pattern": "[a-z]+"},
    "age": {"type": "int", "min": 0, "max": 150},
    "color": {"type": "string", "enum": ["red", "green"]},
    "owner": {"type": "string", "ref": "people"},
    "tags": {"type": "list", "items": "string", "min_length": 1},
}


def changed(**fields: Any) -> Schema:
    described: dict[str, Any] = {name: dict(spec) for name, spec in BASE.items()}
    for name, spec in fields.items():
        if spec is None:
            del described[name]
        else:
            described[name] = spec
    return parse_schema(described)


def refused_change(new: Schema) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        check_compatible(parse_schema(BASE), new)
    return caught.value


def test_identical_schema_is_compatible():
    check_compatible(parse_schema(BASE), parse_schema(BASE))


@pytest.mark.parametrize(
    "new",
    [
        pytest.param(changed(nickname="string"), id="add-optional"),
        pytest.param(
            changed(level={"type": "int", "required": True, "default": 1}),
            id="add-required-with-default",
        ),
        pytest.param(changed(age={"type": "int", "min": -5, "max": 200}), id="loosen-min-max"),
        pytest.param(changed(age={"type": "int"}), id="drop-min-max"),
        pytest.param(
            changed(color={"type": "string", "enum": ["red", "green", "blue"]}),
            id="widen-enum",
        ),
        pytest.param(changed(color="string"), id="drop-enum"),
        pytest.param(
            changed(name={"type": "string", "required": True, "max_length": 20}),
            id="longer-max-length-and-no-pattern",
        ),
        pytest.param(changed(tags={"type": "list", "items": "string"}), id="drop-min-length"),
        pytest.param(
            changed(age={"type": "int", "min": 0, "max": 150, "required": True, "default": 0}),
            id="make-required-with-default",
        ),
        pytest.param(
            changed(name={"type": "string", "max_length": 10, "pattern": "[a-z]+"}),
            id="make-optional",
        ),
    ],
)
def test_compatible_changes_are_allowed(new):
    check_compatible(parse_schema(BASE), new)


@pytest.mark.parametrize(
    ("new", "field_name", "reason"),
    [
        (changed(age="float"), "age", "changing the type from int to float"),
        (changed(level={"type": "int", "required": True}), "level", "adding required field"),
        (changed(age=None), "age", "removing field 'age'"),
        (changed(age={"type": "int", "min": 1, "max": 150}), "age", "raising the minimum"),
        (changed(age={"type": "int", "min": 0, "max": 100}), "age", "lowering the maximum"),
        (
            changed(name={"type": "string", "required": True, "max_length": 5}),
            "name",
            "lowering the maximum length",
        ),
        (
            changed(tags={"type": "list", "items": "string", "min_length": 2}),
            "tags",
            "raising the minimum length",
        ),
        (
            changed(name={"type": "string", "required": True, "pattern": "[a-z]*"}),
            "name",
            "changing the pattern",
        ),
        (changed(color={"type": "string", "enum": ["red"]}), "color", "removing enum values"),
        (changed(owner={"type": "string", "ref": "others"}), "owner", "changing the reference"),
        (changed(owner="string"), "owner", "changing the reference"),
        (
            changed(tags={"type": "list", "items": "int", "min_length": 1}),
            "tags",
            "changing the item type",
        ),
        (
            changed(age={"type": "int", "min": 0, "max": 150, "required": True}),
            "age",
            "making the field required without a default",
        ),
    ],
)
def test_incompatible_changes_are_refused_with_reasons(new, field_name, reason):
    error = refused_change(new)
    assert error.field == field_name
    assert reason in str(error)


def test_adding_limits_where_there_were_none_is_refused():
    old = parse_schema({"n": "int", "s": "string"})
    for new, reason in (
        ({"n": {"type": "int", "max": 5}, "s": "string"}, "lowering the maximum"),
        ({"n": {"type": "int", "min": 5}, "s": "string"}, "raising the minimum"),
        ({"n": "int", "s": {"type": "string", "max_length": 5}}, "lowering the maximum length"),
        ({"n": "int", "s": {"type": "string", "min_length": 1}}, "raising the minimum length"),
        ({"n": "int", "s": {"type": "string", "pattern": "x"}}, "changing the pattern"),
        ({"n": {"type": "int", "enum": [1]}, "s": "string"}, "removing enum values"),
    ):
        with pytest.raises(InvalidArgument, match=reason):
            check_compatible(old, parse_schema(new))


def test_changing_the_key_field_is_refused():
    old = parse_schema({"fields": [{"name": "id", "type": "string"}], "key_field": "id"})
    new = parse_schema({"fields": [{"name": "id", "type": "string"}]})
    with pytest.raises(InvalidArgument) as caught:
        check_compatible(old, new)
    assert caught.value.field == "key_field"


def test_a_schema_past_fields_max_is_refused_before_parsing():
    described = {f"f{index}": "string" for index in range(10_000)}
    with pytest.raises(ResourceExhausted) as refused:
        parse_schema(described, fields_max=1000)
    assert refused.value.field == "schema"
    assert "10000 fields; the limit is 1000" in refused.value.message
    assert len(parse_schema(described, fields_max=10_000).fields) == 10_000


@pytest.mark.timeout(60)
def test_parsing_is_linear_in_the_number_of_fields():
    # Duplicates were found by counting each name in the whole list: 50,000 fields took
    # minutes. The per-test timeout is the guard.
    described = {"fields": [{"name": f"f{index}", "type": "int"} for index in range(50_000)]}
    assert len(parse_schema(described).fields) == 50_000
    described["fields"].append({"name": "f7", "type": "int"})
    assert "names field 'f7' twice" in str(refusal(described))


def test_a_malformed_tag_is_never_described_as_the_type_it_fails():
    error = rejection({"when": "timestamp"}, {"when": {"$ts": "yesterday"}})
    assert "expected timestamp, got timestamp" not in str(error)
    assert "not ISO 8601: 'yesterday'" in str(error)
