"""SQL analyst tasks over the orders table: point lookups, a selective filter, an aggregate.

Each request covers the statement and reading its whole result (``fetchall``), since
the cursor streams rows as they are read. Parameters are bound, never interpolated.
"""

from __future__ import annotations

from typing import Any

from loadtests.locust.dataset import REGIONS, order_key
from loadtests.locust.metering import payload_bytes
from loadtests.locust.session import Session

POINT = "sql.point"
FILTER = "sql.filter"
AGGREGATE = "sql.aggregate"


def _query(session: Session, name: str, statement: str, params: list[Any]) -> None:
    with session.meter.measure(name) as measurement:
        sql: Any = session.sdk.sql  # type: ignore[attr-defined,unused-ignore]
        rows = sql(statement, params).fetchall()
        measurement.response_length = payload_bytes(rows)


def point(session: Session) -> None:
    key = order_key(session.orders.index())
    statement = f"SELECT region, customer, amount, ts FROM {session.maps.orders} WHERE __key = ?"
    _query(session, POINT, statement, [key])


def filtered(session: Session) -> None:
    # One region of 50 and the top tenth of amounts: about 0.2% of the rows.
    region = REGIONS[session.rng.randrange(len(REGIONS))]
    statement = (
        f"SELECT __key, customer, amount FROM {session.maps.orders} "
        "WHERE region = ? AND amount >= ? ORDER BY amount DESC"
    )
    _query(session, FILTER, statement, [region, 900.0])


def aggregate(session: Session) -> None:
    statement = (
        f"SELECT region, count(*) AS orders, sum(amount) AS revenue FROM {session.maps.orders} "
        "GROUP BY region ORDER BY revenue DESC"
    )
    _query(session, AGGREGATE, statement, [])
