"""The diff of two map tables in DuckDB, checked against a plain Python computation."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from coordinator.operators.diff import diff_map

SCHEMA = pa.schema(
    [
        ("__key", pa.string()),
        ("__version", pa.int64()),
        ("region", pa.string()),
        ("amount", pa.int64()),
        ("rate", pa.float64()),
    ]
)


def table(rows: dict[str, dict[str, object]], schema: pa.Schema = SCHEMA) -> pa.Table:
    keys = sorted(rows)
    columns: dict[str, list[object]] = {"__key": keys, "__version": [1] * len(keys)}
    for field in schema:
        if field.name not in columns:
            columns[field.name] = [rows[key].get(field.name) for key in keys]
    return pa.Table.from_pydict(columns, schema=schema)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_diff_equals_an_independent_computation(seed: int) -> None:
    rng = random.Random(seed)
    production = {
        f"k{index:05d}": {
            "region": rng.choice(["eu", "us", None]),
            "amount": rng.randint(-100, 1000),
            "rate": rng.random(),
        }
        for index in range(3000)
    }
    sandbox = {key: dict(value) for key, value in production.items()}
    for key in rng.sample(sorted(sandbox), 40):
        del sandbox[key]
    for key in rng.sample(sorted(sandbox), 60):
        change = rng.choice(["amount", "region", "null"])
        if change == "amount":
            sandbox[key]["amount"] = int(sandbox[key]["amount"]) + rng.randint(1, 500)  # type: ignore[call-overload]
        elif change == "region":
            sandbox[key]["region"] = "apac"
        else:
            sandbox[key]["amount"] = None
    for index in range(25):
        sandbox[f"new{index}"] = {"region": "eu", "amount": index, "rate": 0.5}

    report = diff_map(duckdb.connect(), table(production), table(sandbox), sample=5)

    only_production = sorted(set(production) - set(sandbox))
    only_sandbox = sorted(set(sandbox) - set(production))
    different = sorted(
        key for key in set(production) & set(sandbox) if production[key] != sandbox[key]
    )
    assert report["only_in_production"] == len(only_production) == 40
    assert report["only_in_sandbox"] == len(only_sandbox) == 25
    assert report["different"] == len(different)
    assert report["same"] == len(production) - 40 - len(different)
    assert [item["key"] for item in report["samples"]["only_in_production"]] == only_production[:5]
    assert [item["key"] for item in report["samples"]["only_in_sandbox"]] == only_sandbox[:5]
    assert [item["key"] for item in report["samples"]["different"]] == different[:5]
    first = report["samples"]["different"][0]
    assert first["production"] == production[first["key"]]
    assert first["sandbox"] == sandbox[first["key"]]
    assert first["fields"] == [
        name
        for name in ("region", "amount", "rate")
        if production[first["key"]][name] != sandbox[first["key"]][name]
    ]

    amount = report["numeric"]["amount"]
    assert amount["production_total"] == sum(
        int(value["amount"])
        for value in production.values()
        if value["amount"] is not None  # type: ignore[call-overload]
    )
    assert amount["sandbox_total"] == sum(
        int(value["amount"])
        for value in sandbox.values()
        if value["amount"] is not None  # type: ignore[call-overload]
    )

    def amount_of(rows: dict[str, dict[str, object]], key: str) -> int:
        value = rows.get(key, {}).get("amount")
        return 0 if value is None else int(value)  # type: ignore[call-overload]

    deltas = sorted(
        (
            (-abs(amount_of(sandbox, key) - amount_of(production, key)), key)
            for key in set(production) | set(sandbox)
            if production.get(key, {}).get("amount") != sandbox.get(key, {}).get("amount")
        ),
    )
    assert [item["key"] for item in amount["largest_differences"]] == [key for _, key in deltas[:5]]
    assert "region" not in report["numeric"]


def test_columns_of_one_side_and_changed_types_compare() -> None:
    narrow = pa.schema([("__key", pa.string()), ("__version", pa.int64()), ("amount", pa.int64())])
    wide = pa.schema(
        [
            ("__key", pa.string()),
            ("__version", pa.int64()),
            ("amount", pa.float64()),
            ("note", pa.string()),
        ]
    )
    production = table({"a": {"amount": 1}, "b": {"amount": 2}}, narrow)
    sandbox = table({"a": {"amount": 1.0, "note": None}, "b": {"amount": 2.0, "note": "x"}}, wide)

    report = diff_map(duckdb.connect(), production, sandbox, sample=10)

    # b gained a note; a is the same (1 and 1.0 compare as numbers).
    assert report["columns_only_in_sandbox"] == ["note"]
    assert report["different"] == 1
    assert [item["key"] for item in report["samples"]["different"]] == ["b"]
    assert report["samples"]["different"][0]["fields"] == ["note"]


def test_identical_tables_have_no_differences() -> None:
    rows = {f"k{i}": {"region": "eu", "amount": i, "rate": 1.0} for i in range(100)}
    report = diff_map(duckdb.connect(), table(rows), table(rows), sample=3)
    assert (report["only_in_production"], report["only_in_sandbox"], report["different"]) == (
        0,
        0,
        0,
    )
    assert report["same"] == 100
    assert report["numeric"]["amount"]["largest_differences"] == []
