"""Grid SQL DML integrity: a statement that breaks the schema or a reference, or inserts a
key twice, changes nothing at all; rows of one statement span many partitions."""

from __future__ import annotations

from typing import Any

import pytest

import shoal.dbapi as db
from shoal import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
)

pytestmark = pytest.mark.integration

ROWS = 60


def snapshot(client: Client, table: str) -> list[tuple[Any, ...]]:
    """Every row of a table with its version, so any change at all shows."""
    return client.sql(f"SELECT * FROM {table} ORDER BY __key").fetchall()


@pytest.fixture
def accounts(client: Client, map_name: str) -> str:
    client.create_map(
        map_name,
        schema={
            "owner": {"type": "string", "required": True},
            "balance": {"type": "int", "min": 0, "max": 1_000_000},
            "tier": {"type": "string", "enum": ["basic", "gold"]},
        },
    )
    client.put_many(
        map_name,
        {f"a{index:03d}": {"owner": f"o{index}", "balance": index} for index in range(ROWS)},
    )
    return map_name


@pytest.mark.parametrize(
    ("statement", "rule"),
    [
        # The bad row is the last one, after rows that hash to many partitions.
        (
            "INSERT INTO {t} (__key, owner, balance) VALUES "
            + ", ".join(f"('n{i}', 'x', {i})" for i in range(30))
            + ", ('bad', 'x', 'lots')",
            "type",
        ),
        (
            "INSERT INTO {t} (__key, owner, balance) VALUES "
            + ", ".join(f"('n{i}', 'x', {i})" for i in range(30))
            + ", ('bad', 'x', -1)",
            "min",
        ),
        (
            "INSERT INTO {t} (__key, owner, balance) VALUES "
            + ", ".join(f"('n{i}', 'x', {i})" for i in range(30))
            + ", ('bad', NULL, 1)",
            "required",
        ),
        (
            "INSERT INTO {t} (__key, owner, tier) "
            "VALUES ('n1', 'x', 'gold'), ('n2', 'y', 'platinum')",
            "enum",
        ),
        (
            "INSERT INTO {t} (__key, owner, balance) SELECT 'n' || range, 'x', 5 - range "
            "FROM range(10)",
            "min",
        ),
        ("UPDATE {t} SET balance = balance - 10", "min"),
        ("UPDATE {t} SET balance = balance * 100000 WHERE balance > 3", "max"),
        ("UPDATE {t} SET owner = NULL WHERE balance >= 50", "required"),
        ("UPDATE {t} SET balance = balance + 0.5", "type"),
        ("UPDATE {t} SET balance = balance + CAST(0.5 AS DOUBLE)", "type"),
        (
            "INSERT INTO {t} (__key, owner, balance) VALUES (?, ?, ?), (?, ?, ?)",
            "type",
        ),
        ("UPDATE {t} SET tier = CASE WHEN balance < 30 THEN 'gold' ELSE 'silver' END", "enum"),
    ],
    ids=[
        "insert-type",
        "insert-min",
        "insert-required",
        "insert-enum",
        "insert-select-min",
        "update-min",
        "update-max",
        "update-required",
        "update-type",
        "update-double",
        "insert-params-double",
        "update-enum",
    ],
)
def test_a_schema_violation_rolls_back_the_whole_statement(
    client: Client, accounts: str, statement: str, rule: str
) -> None:
    before = snapshot(client, accounts)
    params = ["n1", "x", 1, "n2", "y", 2.5] if "?" in statement else None
    with pytest.raises(InvalidArgumentError) as caught:
        client.sql(statement.format(t=accounts), params)
    # A VALUES list that mixes numbers and text is computed value by value, so the
    # bad value meets its column's type like any other.
    assert caught.value.rule == rule
    assert snapshot(client, accounts) == before


def test_the_same_statements_apply_when_every_row_is_valid(client: Client, accounts: str) -> None:
    values = ", ".join(f"('n{i}', 'x', {i})" for i in range(30))
    assert (
        client.sql(f"INSERT INTO {accounts} (__key, owner, balance) VALUES {values}").rowcount == 30
    )
    assert client.sql(
        f"UPDATE {accounts} SET balance = balance - 1 WHERE balance >= 1"
    ).rowcount == (ROWS - 1 + 29)
    assert client.get(accounts, "a010") == {"owner": "o10", "balance": 9}


@pytest.fixture
def shop(client: Client, map_name: str) -> tuple[str, str]:
    customers, orders = f"{map_name}_customers", f"{map_name}_orders"
    client.sql(f"CREATE TABLE {customers} (id VARCHAR PRIMARY KEY, name VARCHAR)")
    client.sql(
        f"CREATE TABLE {orders} (id INTEGER PRIMARY KEY, "
        f"customer VARCHAR REFERENCES {customers}(id), amount DOUBLE NOT NULL)"
    )
    client.sql(f"INSERT INTO {customers} VALUES ('alice', 'Alice'), ('bob', 'Bob')")
    client.sql(f"INSERT INTO {orders} VALUES (1, 'alice', 10.0), (2, 'bob', 20.0)")
    return customers, orders


def test_create_table_references_become_a_ref_field(client: Client, shop: tuple[str, str]) -> None:
    customers, orders = shop
    schema = client.describe_map(orders).schema
    assert schema is not None
    by_name = {spec["name"]: spec for spec in schema["fields"]}
    assert by_name["customer"]["ref"] == customers
    assert by_name["amount"]["required"] is True
    assert schema["key_field"] == "id"


def test_an_insert_referencing_a_missing_key_changes_nothing(
    client: Client, shop: tuple[str, str]
) -> None:
    _, orders = shop
    before = snapshot(client, orders)
    values = ", ".join(f"({i}, 'alice', {i}.5)" for i in range(10, 40)) + ", (99, 'nobody', 1.0)"
    with pytest.raises(FailedPreconditionError, match="nobody"):
        client.sql(f"INSERT INTO {orders} VALUES {values}")
    assert snapshot(client, orders) == before


def test_an_update_to_a_missing_reference_changes_nothing(
    client: Client, shop: tuple[str, str]
) -> None:
    _, orders = shop
    before = snapshot(client, orders)
    with pytest.raises(FailedPreconditionError, match="carol"):
        client.sql(
            f"UPDATE {orders} SET customer = CASE WHEN id = 2 THEN 'carol' ELSE 'bob' END, "
            "amount = amount + 1"
        )
    assert snapshot(client, orders) == before


def test_a_reference_violation_is_an_integrity_error_in_dbapi(
    shoal_server: str, shop: tuple[str, str]
) -> None:
    _, orders = shop
    with db.connect(shoal_server) as connection:
        cursor = connection.cursor()
        with pytest.raises(db.IntegrityError):
            cursor.execute(f"INSERT INTO {orders} VALUES (?, ?, ?)", [50, "nobody", 1.0])
        with pytest.raises(db.IntegrityError):
            cursor.execute(f"INSERT INTO {orders} VALUES (?, ?, ?)", [51, "alice", None])
        cursor.execute(f"INSERT INTO {orders} VALUES (?, ?, ?)", [52, "alice", 3.0])
        assert cursor.rowcount == 1


def test_a_duplicate_key_insert_changes_nothing(client: Client, shop: tuple[str, str]) -> None:
    customers, orders = shop
    before = snapshot(client, orders)
    with pytest.raises(AlreadyExistsError):
        client.sql(f"INSERT INTO {orders} VALUES (3, 'alice', 1.0), (2, 'bob', 5.0)")
    with pytest.raises(AlreadyExistsError):
        client.sql(f"INSERT INTO {orders} VALUES (4, 'alice', 1.0), (4, 'bob', 5.0)")
    with pytest.raises(AlreadyExistsError):
        client.sql(f"INSERT INTO {customers} (id, name) VALUES (?, ?)", ["alice", "Again"])
    assert snapshot(client, orders) == before
    assert client.get(customers, "alice") == {"id": "alice", "name": "Alice"}


def test_a_duplicate_key_is_an_integrity_error_in_dbapi(
    shoal_server: str, shop: tuple[str, str]
) -> None:
    customers, _ = shop
    with db.connect(shoal_server) as connection, pytest.raises(db.IntegrityError):
        connection.cursor().execute(f"INSERT INTO {customers} VALUES ('bob', 'B2')")


def test_rows_without_a_key_or_with_unknown_columns_are_refused(
    client: Client, shop: tuple[str, str], accounts: str
) -> None:
    customers, orders = shop
    before = snapshot(client, customers)
    with pytest.raises(InvalidArgumentError, match="key"):
        client.sql(f"INSERT INTO {customers} (id, name) VALUES ('carol', 'C'), (NULL, 'D')")
    with pytest.raises(InvalidArgumentError, match="no_such"):
        client.sql(f"INSERT INTO {customers} (id, no_such) VALUES ('dave', 1)")
    with pytest.raises(InvalidArgumentError, match="key"):
        client.sql(f"INSERT INTO {accounts} (owner, balance) VALUES ('x', 1)")
    with pytest.raises(InvalidArgumentError):
        client.sql(f"UPDATE {customers} SET id = 'zed' WHERE id = 'bob'")
    with pytest.raises(InvalidArgumentError):
        client.sql(f"UPDATE {orders} SET __key = 'zed'")
    with pytest.raises(InvalidArgumentError, match="no_such"):
        client.sql(f"UPDATE {customers} SET no_such = 1")
    assert snapshot(client, customers) == before


def test_delete_is_one_statement_over_many_partitions(client: Client, accounts: str) -> None:
    assert client.sql(f"DELETE FROM {accounts} WHERE balance % 2 = 0").rowcount == ROWS // 2
    remaining = client.sql(f"SELECT balance FROM {accounts} ORDER BY balance").fetchall()
    assert [row[0] for row in remaining] == list(range(1, ROWS, 2))
