"""Assignment casts: what an INSERT or UPDATE value becomes in its column, or why not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from coordinator.sql.casts import assign
from grid.errors import ValidationError
from grid.schema import FieldSpec


def column(field_type: str, items: str | None = None) -> FieldSpec:
    return FieldSpec(name="c", type=field_type, items=items)


@pytest.mark.parametrize(
    ("field_type", "value", "expected"),
    [
        ("int", 7, 7),
        ("int", 3.0, 3),
        ("int", Decimal("4.00"), 4),
        ("int", " 7 ", 7),
        ("int", "-12", -12),
        ("int", 2**63 - 1, 2**63 - 1),
        ("float", 2, 2.0),
        ("float", Decimal("2.5"), 2.5),
        ("float", "1e3", 1000.0),
        ("float", " .5", 0.5),
        ("string", "x", "x"),
        ("string", 5, "5"),
        ("string", 2.5, "2.5"),
        ("string", Decimal("2.50"), "2.50"),
        ("string", True, "true"),
        ("bool", False, False),
        ("bool", "Yes", True),
        ("bool", "0", False),
        ("timestamp", "2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("timestamp", "2024-02-03 04:05:06", datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)),
        (
            "timestamp",
            "2024-02-03T04:05:06+02:00",
            datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("timestamp", date(2024, 1, 2), datetime(2024, 1, 2, tzinfo=UTC)),
        ("timestamp", datetime(2024, 1, 2, 3), datetime(2024, 1, 2, 3, tzinfo=UTC)),
        ("bytes", b"\x00", b"\x00"),
        ("bytes", memoryview(b"ab"), b"ab"),
    ],
)
def test_lossless_casts(field_type: str, value: Any, expected: Any) -> None:
    result = assign(column(field_type), value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("field_type", "value", "reason"),
    [
        ("int", 2.5, "lose its fraction"),
        ("int", Decimal("0.1"), "lose its fraction"),
        ("int", True, "boolean"),
        ("int", "7.0", "not an integer"),
        ("int", 2**63, "64 bits"),
        ("int", float("inf"), "finite"),
        ("float", 2**60 + 1, "more digits"),
        ("float", float("nan"), "finite"),
        ("float", "abc", "not a number"),
        ("float", False, "boolean"),
        ("string", [1], "not text"),
        ("string", datetime(2024, 1, 1), "not text"),
        ("bool", 1, "not a boolean"),
        ("bool", "maybe", "not a boolean"),
        ("timestamp", "yesterday", "not a timestamp"),
        ("timestamp", 5, "not a timestamp"),
        ("bytes", "abc", "not a blob"),
    ],
)
def test_casts_that_would_lose_information_are_refused(
    field_type: str, value: Any, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        assign(column(field_type), value)
    assert (caught.value.field, caught.value.rule) == ("c", "type")


def test_null_stays_null_and_lists_cast_each_item() -> None:
    for field_type in ("int", "float", "string", "bool", "timestamp", "bytes", "list", "map"):
        assert assign(column(field_type), None) is None
    assert assign(column("list", "int"), [1, 2.0, "3", None]) == [1, 2, 3, None]
    with pytest.raises(ValidationError, match=r"BIGINT\[\]"):
        assign(column("list", "int"), [1.5])
    with pytest.raises(ValidationError, match="not a list"):
        assign(column("list", "int"), "x")
    # Lists of mixed items, maps and JSON take what they are given.
    assert assign(column("map"), {"a": 1}) == {"a": 1}
