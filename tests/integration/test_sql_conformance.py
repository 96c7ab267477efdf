"""Grid SQL conformance: each query's result on Shoal equals stdlib sqlite3's on the same rows.

Seeded random rows go into two maps on the shared server (`orders`, ~2000 rows, and
`customers`, 200 rows whose key is the `cid` field) and into an in-memory SQLite
database, an engine independent of DuckDB. Queries are written in the subset both
dialects read the same way: explicit NULLS FIRST/LAST wherever NULLs are sorted, no
integer division, no casts of fractions to integers, rounding only where no value sits
on a tie, and LIKE made case-sensitive in SQLite as it is in DuckDB. Results compare as
multisets unless the query's ORDER BY fixes the order completely; floats compare with a
tolerance.
"""

from __future__ import annotations

import math
import random
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from shoal import Client

pytestmark = pytest.mark.integration

SEED = 20_240_611
ORDER_ROWS = 2000
CUSTOMER_ROWS = 200
REGIONS = [
    "north",
    "south",
    "east",
    "west",
    "central",
    "alpine",
    "coastal",
    "delta",
    "harbor",
    "island",
]
STATUSES = ["new", "paid", "shipped", "cancelled", "returned"]
NOTES = ["gift", "Gift wrap", "urgent", "URGENT delivery", "leave at door", "call first", ""]
COUNTRIES = ["NL", "DE", "FR", "US", "JP", "BR", "IN", "ZA"]
FIRST_NAMES = ["ada", "Grace", "ALAN", "edsger", "Barbara", "donald", "Frances", "ken"]
TS_START = 1_700_000_000

ORDERS_SCHEMA = {
    "id": "int",
    "region": "string",
    "amount": "float",
    "qty": "int",
    "ts": "int",
    "status": "string",
    "customer_id": "string",
    "note": "string",
}
CUSTOMERS_SCHEMA: dict[str, Any] = {
    "key_field": "cid",
    "fields": [
        {"name": "cid", "type": "string", "required": True},
        {"name": "name", "type": "string"},
        {"name": "country", "type": "string"},
        {"name": "tier", "type": "int"},
        {"name": "credit", "type": "float"},
        {"name": "since", "type": "int"},
    ],
}
ORDER_COLUMNS = list(ORDERS_SCHEMA)
CUSTOMER_COLUMNS = [spec["name"] for spec in CUSTOMERS_SCHEMA["fields"]]


def _maybe(rng: random.Random, value: Any, null_fraction: float) -> Any:
    return None if rng.random() < null_fraction else value


def _amount(rng: random.Random) -> float:
    # Whole cents that never end in 5, so round(amount, 1) never meets a tie that the
    # two engines could break differently.
    cents = rng.randint(100, 99_999)
    if cents % 10 == 5:
        cents += 1
    return cents / 100


def generate_customers(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for index in range(1, CUSTOMER_ROWS + 1):
        rows.append(
            {
                "cid": f"c{index:03d}",
                "name": f"{rng.choice(FIRST_NAMES)}_{index:03d}",
                "country": rng.choice(COUNTRIES),
                "tier": rng.randint(1, 5),
                "credit": _maybe(rng, _amount(rng) * 10, 0.1),
                "since": TS_START - rng.randint(0, 5_000_000),
            }
        )
    return rows


def generate_orders(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for index in range(ORDER_ROWS):
        # A few orders name a customer that does not exist, for the outer joins.
        customer = rng.choice([f"c{rng.randint(1, CUSTOMER_ROWS):03d}"] * 30 + ["c999"])
        rows.append(
            {
                "id": index,
                "region": _maybe(rng, rng.choice(REGIONS), 0.03),
                "amount": _maybe(rng, _amount(rng), 0.05),
                "qty": rng.randint(0, 20),
                "ts": TS_START + rng.randint(0, 1_000_000),
                "status": _maybe(rng, rng.choice(STATUSES), 0.02),
                "customer_id": _maybe(rng, customer, 0.02),
                "note": _maybe(rng, rng.choice(NOTES), 0.3),
            }
        )
    return rows


def order_key(row: dict[str, Any]) -> str:
    return f"o{row['id']:05d}"


@dataclass
class Dataset:
    client: Client
    orders: str
    customers: str
    sqlite: sqlite3.Connection


@pytest.fixture(scope="module")
def dataset(shoal_server: str) -> Iterator[Dataset]:
    rng = random.Random(SEED)
    customers = generate_customers(rng)
    orders = generate_orders(rng)
    suffix = uuid.uuid4().hex[:8]
    orders_map, customers_map = f"conf_orders_{suffix}", f"conf_customers_{suffix}"
    client = Client(shoal_server, timeout_s=30)
    client.create_map(orders_map, schema=ORDERS_SCHEMA)
    client.create_map(customers_map, schema=CUSTOMERS_SCHEMA)
    # Absent fields are NULL columns, so NULLs are not stored at all.
    client.put_many(
        orders_map,
        {order_key(row): {k: v for k, v in row.items() if v is not None} for row in orders},
    )
    client.put_many(
        customers_map,
        {row["cid"]: {k: v for k, v in row.items() if v is not None} for row in customers},
    )
    database = sqlite3.connect(":memory:")
    # DuckDB's LIKE is case-sensitive; SQLite's is not unless told.
    database.execute("PRAGMA case_sensitive_like = ON")
    database.execute(
        "CREATE TABLE orders (__key TEXT, id INTEGER, region TEXT, amount REAL, qty INTEGER, "
        "ts INTEGER, status TEXT, customer_id TEXT, note TEXT)"
    )
    database.execute(
        "CREATE TABLE customers (__key TEXT, cid TEXT, name TEXT, country TEXT, tier INTEGER, "
        "credit REAL, since INTEGER)"
    )
    database.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(order_key(row), *(row[name] for name in ORDER_COLUMNS)) for row in orders],
    )
    database.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(row["cid"], *(row[name] for name in CUSTOMER_COLUMNS)) for row in customers],
    )
    try:
        yield Dataset(client, orders_map, customers_map, database)
    finally:
        database.close()
        client.drop_map(orders_map, if_exists=True)
        client.drop_map(customers_map, if_exists=True)
        client.close()


@dataclass(frozen=True)
class Query:
    """One conformance query; `{o}` and `{c}` stand for the orders and customers tables."""

    name: str
    text: str
    params: tuple[Any, ...] = ()
    # True when the ORDER BY fixes the order of every row, so order is compared too.
    ordered: bool = False


def family(prefix: str, queries: Sequence[str | tuple[str, bool]]) -> list[Query]:
    found = []
    for index, item in enumerate(queries, 1):
        text, ordered = (item, False) if isinstance(item, str) else item
        found.append(Query(f"{prefix}-{index:02d}", text, ordered=ordered))
    return found


WHERE_PREDICATES = [
    "amount > 500",
    "amount >= 250.5 AND qty < 5",
    "qty = 0 OR qty = 20",
    "NOT (qty BETWEEN 5 AND 15)",
    "region IN ('north', 'south', 'east')",
    "region NOT IN ('north', 'south')",
    "qty BETWEEN 3 AND 7",
    "amount BETWEEN 100 AND 200",
    "amount NOT BETWEEN 10 AND 990",
    "note LIKE 'gift%'",
    "note LIKE '%URGENT%'",
    "note NOT LIKE '%a%'",
    "customer_id LIKE 'c0_5'",
    "region IS NULL",
    "amount IS NULL",
    "amount IS NOT NULL AND region IS NOT NULL AND qty > 18",
    "status <> 'paid'",
    "status != 'new' AND (qty < 2 OR amount > 900)",
    "ts >= 1700500000",
    "ts < 1700100000 OR ts > 1700900000",
    "region = 'north' AND NOT status = 'cancelled'",
    "coalesce(region, 'none') = 'none'",
    "amount * qty > 5000",
    "qty % 3 = 0",
    "length(note) > 5",
    "lower(note) = 'gift'",
    "id < 100 AND id % 2 = 1",
    "__key IN ('o00001', 'o00002', 'o01999', 'missing')",
    "__key = 'o00042'",
    "__key > 'o01990'",
    "region IN ('north') OR amount IS NULL",
    "upper(region) = 'WEST'",
    "substr(customer_id, 2, 2) = '01'",
    "qty IN (1, 2, 3) AND status IN ('paid', 'shipped')",
    "amount > 999.995",
    "qty > 100",
    "status IS NULL OR customer_id IS NULL",
    "NOT (region IS NULL OR status IS NULL) AND qty = 7",
    "(qty + 1) * 2 BETWEEN 10 AND 12",
    "note = ''",
]

QUERIES: list[Query] = [
    *family(
        "where", [f"SELECT id, region, amount, qty FROM {{o}} WHERE {p}" for p in WHERE_PREDICATES]
    ),
    *family(
        "group",
        [
            "SELECT count(*) FROM {o}",
            "SELECT count(amount), count(region), count(note), count(*) FROM {o}",
            "SELECT count(DISTINCT region), count(DISTINCT customer_id), "
            "count(DISTINCT status) FROM {o}",
            "SELECT sum(qty), min(qty), max(qty), avg(qty) FROM {o}",
            "SELECT sum(amount), min(amount), max(amount), avg(amount) FROM {o}",
            "SELECT min(region), max(region), min(note), max(note) FROM {o}",
            "SELECT region, count(*) FROM {o} GROUP BY region",
            "SELECT region, sum(amount), avg(amount) FROM {o} GROUP BY region",
            "SELECT status, region, count(*), sum(qty) FROM {o} GROUP BY status, region",
            "SELECT region, count(DISTINCT status) FROM {o} GROUP BY region",
            "SELECT qty, count(*) FROM {o} GROUP BY qty",
            "SELECT qty % 5, count(*) FROM {o} GROUP BY qty % 5",
            "SELECT region, max(amount) - min(amount) FROM {o} GROUP BY region",
            "SELECT customer_id, count(*), sum(amount) FROM {o} WHERE status = 'paid' "
            "GROUP BY customer_id",
            "SELECT status, avg(qty) FROM {o} WHERE amount > 100 GROUP BY status",
            "SELECT region IS NULL, count(*) FROM {o} GROUP BY region IS NULL",
            "SELECT CASE WHEN amount > 500 THEN 'big' ELSE 'small' END AS size, count(*) "
            "FROM {o} GROUP BY 1",
            "SELECT count(*) FROM {o} WHERE 1 = 0",
            "SELECT sum(amount), max(qty) FROM {o} WHERE 1 = 0",
            "SELECT region, count(*) FROM {o} WHERE qty > 100 GROUP BY region",
            "SELECT country, count(*), avg(tier) FROM {c} GROUP BY country",
            "SELECT tier, sum(credit), count(credit) FROM {c} GROUP BY tier",
            "SELECT region, status, min(ts), max(ts) FROM {o} GROUP BY region, status",
        ],
    ),
    *family(
        "having",
        [
            "SELECT region, count(*) FROM {o} GROUP BY region HAVING count(*) > 190",
            "SELECT customer_id, sum(amount) FROM {o} GROUP BY customer_id "
            "HAVING sum(amount) > 6000",
            "SELECT status, avg(amount) FROM {o} GROUP BY status "
            "HAVING avg(amount) BETWEEN 400 AND 600",
            "SELECT qty, count(*) FROM {o} GROUP BY qty HAVING count(*) < 95 AND qty > 3",
            "SELECT region, count(DISTINCT customer_id) AS n FROM {o} GROUP BY region "
            "HAVING count(DISTINCT customer_id) > 120",
            "SELECT country FROM {c} GROUP BY country HAVING max(tier) = 5 AND min(tier) = 1",
            "SELECT region, sum(qty) FROM {o} WHERE status <> 'cancelled' GROUP BY region "
            "HAVING sum(qty) > (SELECT avg(qty) * 150 FROM {o})",
            "SELECT customer_id FROM {o} GROUP BY customer_id HAVING count(*) <= 5",
        ],
    ),
    *family(
        "order",
        [
            ("SELECT id, amount FROM {o} ORDER BY amount DESC NULLS LAST, id LIMIT 20", True),
            ("SELECT id FROM {o} ORDER BY id LIMIT 10 OFFSET 100", True),
            ("SELECT id, region FROM {o} ORDER BY region NULLS FIRST, id DESC LIMIT 30", True),
            ("SELECT id, qty, ts FROM {o} ORDER BY qty DESC, ts, id LIMIT 50 OFFSET 25", True),
            (
                "SELECT region, count(*) AS n FROM {o} GROUP BY region "
                "ORDER BY n DESC, region NULLS LAST",
                True,
            ),
            (
                "SELECT customer_id, sum(amount) AS s FROM {o} WHERE customer_id IS NOT NULL "
                "GROUP BY customer_id ORDER BY s DESC NULLS LAST, customer_id LIMIT 10",
                True,
            ),
            ("SELECT __key FROM {o} ORDER BY __key DESC LIMIT 5", True),
            ("SELECT id FROM {o} WHERE region = 'north' ORDER BY ts, id LIMIT 10 OFFSET 10", True),
            ("SELECT cid, name FROM {c} ORDER BY name, cid LIMIT 15", True),
            ("SELECT id FROM {o} ORDER BY id LIMIT 0", True),
            ("SELECT id FROM {o} ORDER BY id LIMIT 10 OFFSET 5000", True),
            ("SELECT id, amount FROM {o} ORDER BY 2 NULLS FIRST, 1 LIMIT 120", True),
            (
                "SELECT id, lower(note) FROM {o} ORDER BY lower(note) NULLS LAST, id DESC LIMIT 25",
                True,
            ),
            (
                "SELECT status, region, count(*) FROM {o} GROUP BY 1, 2 "
                "ORDER BY 1 NULLS LAST, 2 NULLS LAST",
                True,
            ),
            ("SELECT id FROM {o} ORDER BY qty * amount DESC NULLS LAST, id LIMIT 7", True),
            ("SELECT id, ts FROM {o} ORDER BY ts DESC, id LIMIT 50 OFFSET 1990", True),
        ],
    ),
    *family(
        "distinct",
        [
            "SELECT DISTINCT region FROM {o}",
            "SELECT DISTINCT status, region FROM {o}",
            ("SELECT DISTINCT qty FROM {o} WHERE qty > 10 ORDER BY qty", True),
            "SELECT DISTINCT customer_id FROM {o} WHERE amount > 900",
            "SELECT count(*) FROM (SELECT DISTINCT region, status FROM {o}) AS d",
            "SELECT DISTINCT country, tier FROM {c}",
            "SELECT DISTINCT coalesce(note, '?') FROM {o}",
        ],
    ),
    *family(
        "join",
        [
            "SELECT o.id, c.name FROM {o} AS o JOIN {c} AS c ON o.customer_id = c.cid "
            "WHERE o.qty > 15",
            "SELECT o.id, c.country FROM {o} o INNER JOIN {c} c ON c.cid = o.customer_id "
            "WHERE c.tier = 5",
            "SELECT c.country, count(*), sum(o.amount) FROM {o} o JOIN {c} c "
            "ON o.customer_id = c.cid GROUP BY c.country",
            "SELECT o.id, o.customer_id, c.name FROM {o} o LEFT JOIN {c} c "
            "ON o.customer_id = c.cid WHERE c.cid IS NULL",
            "SELECT c.cid, count(o.id) FROM {c} c LEFT JOIN {o} o ON o.customer_id = c.cid "
            "GROUP BY c.cid",
            "SELECT c.cid FROM {c} c LEFT JOIN {o} o ON o.customer_id = c.cid "
            "AND o.status = 'returned' WHERE o.id IS NULL",
            "SELECT c.tier, o.status, count(*) FROM {o} o JOIN {c} c ON o.customer_id = c.cid "
            "GROUP BY c.tier, o.status",
            "SELECT o.region, c.country, avg(o.amount) FROM {o} o JOIN {c} c "
            "ON o.customer_id = c.cid WHERE o.amount IS NOT NULL GROUP BY 1, 2",
            "SELECT a.id, b.id FROM {o} a JOIN {o} b ON a.customer_id = b.customer_id "
            "AND a.id < b.id WHERE a.qty = 20 AND b.qty = 20",
            (
                "SELECT o.id, c.name, c.credit FROM {o} o JOIN {c} c ON o.customer_id = c.cid "
                "ORDER BY o.id LIMIT 20",
                True,
            ),
            "SELECT c.name, max(o.ts) FROM {c} c JOIN {o} o ON o.customer_id = c.cid "
            "WHERE c.country = 'NL' GROUP BY c.name",
            "SELECT o.id, c.cid, r.avg_amount FROM {o} o JOIN {c} c ON o.customer_id = c.cid "
            "JOIN (SELECT region, avg(amount) AS avg_amount FROM {o} GROUP BY region) r "
            "ON o.region = r.region WHERE o.amount > r.avg_amount AND c.tier >= 4",
            "SELECT count(*), count(c.cid) FROM {o} o LEFT JOIN {c} c ON o.customer_id = c.cid",
            "SELECT c.country, count(DISTINCT o.region) FROM {c} c JOIN {o} o "
            "ON o.customer_id = c.cid GROUP BY c.country",
            "SELECT a.country, b.status FROM (SELECT DISTINCT country FROM {c}) a CROSS JOIN "
            "(SELECT DISTINCT status FROM {o} WHERE status IS NOT NULL) b",
            "SELECT o.id, c.name FROM {o} o, {c} c WHERE o.customer_id = c.cid "
            "AND o.amount < 20 AND c.tier < 3",
        ],
    ),
    *family(
        "subquery",
        [
            "SELECT id FROM {o} WHERE customer_id IN (SELECT cid FROM {c} WHERE tier = 1)",
            "SELECT id FROM {o} WHERE customer_id NOT IN (SELECT cid FROM {c} WHERE tier > 1)",
            "SELECT cid FROM {c} c WHERE EXISTS (SELECT 1 FROM {o} o "
            "WHERE o.customer_id = c.cid AND o.amount > 990)",
            "SELECT cid FROM {c} c WHERE NOT EXISTS (SELECT 1 FROM {o} o "
            "WHERE o.customer_id = c.cid AND o.qty > 18)",
            "SELECT id, amount FROM {o} WHERE amount > (SELECT avg(amount) FROM {o}) AND qty = 1",
            "SELECT id, amount - (SELECT min(amount) FROM {o}) FROM {o} WHERE region = 'delta'",
            "SELECT cid, (SELECT count(*) FROM {o} o WHERE o.customer_id = c.cid) FROM {c} c",
            "SELECT region, n FROM (SELECT region, count(*) AS n FROM {o} GROUP BY region) AS t "
            "WHERE n > 195",
            "SELECT avg(s) FROM (SELECT customer_id, sum(amount) AS s FROM {o} "
            "GROUP BY customer_id) AS t",
            "SELECT max(n), min(n) FROM (SELECT customer_id, count(*) AS n FROM {o} "
            "GROUP BY customer_id) t",
            "SELECT id, region, amount FROM {o} o1 WHERE amount = "
            "(SELECT max(amount) FROM {o} o2 WHERE o2.region = o1.region)",
            "SELECT cid FROM {c} WHERE tier = (SELECT max(tier) FROM {c}) "
            "AND credit > (SELECT avg(credit) FROM {c})",
            "SELECT id FROM {o} WHERE customer_id IN (SELECT customer_id FROM {o} "
            "GROUP BY customer_id HAVING count(*) >= 15)",
            (
                "SELECT t.status, t.total FROM (SELECT status, sum(qty) AS total FROM {o} "
                "WHERE status IS NOT NULL GROUP BY status) t ORDER BY t.total DESC, t.status",
                True,
            ),
            "SELECT * FROM (SELECT id, qty * 2 AS doubled FROM {o} WHERE qty > 17) AS d "
            "WHERE doubled > 36",
        ],
    ),
    *family(
        "cte",
        [
            "WITH big AS (SELECT * FROM {o} WHERE amount > 800) "
            "SELECT region, count(*) FROM big GROUP BY region",
            "WITH per AS (SELECT customer_id, sum(amount) AS s FROM {o} GROUP BY customer_id) "
            "SELECT c.country, max(per.s) FROM per JOIN {c} c ON per.customer_id = c.cid "
            "GROUP BY c.country",
            "WITH a AS (SELECT region, avg(amount) AS m FROM {o} GROUP BY region), "
            "b AS (SELECT avg(m) AS mm FROM a) SELECT region FROM a, b WHERE a.m > b.mm",
            (
                "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 22) "
                "SELECT x, (SELECT count(*) FROM {o} WHERE qty = x) FROM n ORDER BY x",
                True,
            ),
            "WITH t AS (SELECT id, qty FROM {o} WHERE qty > 18) SELECT count(*), sum(qty) FROM t",
            "WITH c5 AS (SELECT cid FROM {c} WHERE tier = 5) "
            "SELECT id FROM {o} WHERE customer_id IN (SELECT cid FROM c5)",
            "WITH s AS (SELECT status, count(*) AS n FROM {o} GROUP BY status) "
            "SELECT status FROM s WHERE n = (SELECT max(n) FROM s)",
            "WITH r AS (SELECT DISTINCT region FROM {o} WHERE region IS NOT NULL) "
            "SELECT r.region, count(o.id) FROM r LEFT JOIN {o} o ON o.region = r.region "
            "AND o.qty = 0 GROUP BY r.region",
            "SELECT customer_id FROM {o} WHERE qty = 20 UNION SELECT cid FROM {c} WHERE tier = 5",
            "SELECT region FROM {o} WHERE qty = 0 UNION ALL SELECT region FROM {o} WHERE qty = 20",
            "SELECT customer_id FROM {o} WHERE status = 'paid' "
            "INTERSECT SELECT cid FROM {c} WHERE country = 'NL'",
            "SELECT cid FROM {c} EXCEPT SELECT customer_id FROM {o} WHERE amount > 500",
        ],
    ),
    *family(
        "window",
        [
            "SELECT id, row_number() OVER (PARTITION BY region "
            "ORDER BY amount DESC NULLS LAST, id) FROM {o}",
            "SELECT id, rank() OVER (ORDER BY qty DESC) FROM {o}",
            "SELECT id, dense_rank() OVER (PARTITION BY status ORDER BY qty) FROM {o}",
            "SELECT id, sum(amount) OVER (PARTITION BY region) FROM {o}",
            "SELECT id, sum(qty) OVER (PARTITION BY customer_id ORDER BY ts, id) FROM {o}",
            "SELECT id, lag(amount) OVER (ORDER BY id) FROM {o}",
            "SELECT id, lag(qty, 2, -1) OVER (PARTITION BY region ORDER BY id) FROM {o}",
            "SELECT id, lead(ts) OVER (PARTITION BY customer_id ORDER BY ts, id) FROM {o}",
            "SELECT id, count(*) OVER (PARTITION BY status) FROM {o}",
            "SELECT id, avg(amount) OVER (PARTITION BY region ORDER BY id "
            "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM {o}",
            "SELECT * FROM (SELECT id, region, row_number() OVER (PARTITION BY region "
            "ORDER BY ts DESC, id) AS rn FROM {o}) t WHERE rn <= 3",
            "SELECT id, first_value(id) OVER (PARTITION BY region "
            "ORDER BY amount NULLS LAST, id) FROM {o}",
            "SELECT id, max(amount) OVER (PARTITION BY customer_id) - amount FROM {o}",
            "SELECT region, status, sum(count(*)) OVER (PARTITION BY region) FROM {o} "
            "GROUP BY region, status",
            "SELECT cid, ntile(4) OVER (ORDER BY credit NULLS FIRST, cid) FROM {c}",
            "SELECT id, percent_rank() OVER (ORDER BY qty) FROM {o} WHERE region = 'north'",
            "SELECT id, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC NULLS LAST) "
            "FROM {o} WHERE customer_id < 'c020'",
        ],
    ),
    *family(
        "scalar",
        [
            "SELECT id, lower(region), upper(status) FROM {o}",
            "SELECT id, length(note), length(customer_id) FROM {o}",
            "SELECT id, abs(qty - 10), abs(amount - 500) FROM {o}",
            "SELECT id, round(amount), round(amount, 1) FROM {o}",
            "SELECT id, coalesce(region, status, 'none') FROM {o}",
            "SELECT id, substr(customer_id, 2), substr(note, 1, 3) FROM {o}",
            "SELECT id, CASE WHEN qty = 0 THEN 'none' WHEN qty < 10 THEN 'few' ELSE 'many' END "
            "FROM {o}",
            "SELECT id, CASE region WHEN 'north' THEN 1 WHEN 'south' THEN 2 ELSE 0 END FROM {o}",
            "SELECT id, CAST(qty AS DOUBLE) / 4, CAST(ts AS VARCHAR) FROM {o}",
            "SELECT id, CAST(substr(customer_id, 2) AS INTEGER) FROM {o}",
            "SELECT id, region || '-' || status FROM {o}",
            "SELECT id, nullif(qty, 0), ifnull(note, 'n/a') FROM {o}",
            "SELECT id, replace(note, 'a', 'A'), trim(' ' || note || ' ') FROM {o}",
            "SELECT id, instr(note, 'ent') FROM {o}",
            "SELECT id, amount * qty, amount / nullif(qty, 0) FROM {o}",
            "SELECT id, qty % 4, -qty, qty * 3 - ts % 7 FROM {o}",
            "SELECT cid, upper(substr(name, 1, 1)) || lower(substr(name, 2)) FROM {c}",
            "SELECT lower(name), length(name) FROM {c}",
            "SELECT cid, CASE WHEN credit IS NULL THEN -1 ELSE round(credit) END FROM {c}",
            "SELECT id, coalesce(amount, 0) + qty FROM {o}",
            "SELECT id, abs(ts - 1700500000) < 1000 FROM {o}",
            "SELECT id, ltrim(customer_id, 'c'), rtrim(note, 't') FROM {o}",
            "SELECT id, CAST(qty AS VARCHAR) || 'x' FROM {o}",
            "SELECT DISTINCT length(region) FROM {o}",
            "SELECT id, upper(note) LIKE '%GIFT%', note IS NULL FROM {o}",
        ],
    ),
    *family(
        "point",
        [
            "SELECT id, qty FROM {o} WHERE __key = 'o00042' AND qty >= 0",
            "SELECT cid, name FROM {c} WHERE cid IN ('c001', 'c100', 'c200', 'c999')",
            "SELECT id, (SELECT count(*) FROM {o}) FROM {o} WHERE __key = 'o00042'",
            "SELECT id FROM {o} WHERE __key IN ('o00001', 'o00002') "
            "AND amount < (SELECT max(amount) FROM {o})",
            "SELECT id FROM {o} WHERE __key = 'o00007' "
            "AND EXISTS (SELECT 1 FROM {o} x WHERE x.__key = 'o01500')",
            "SELECT cid, (SELECT count(*) FROM {c} c2 WHERE c2.tier = c1.tier) FROM {c} c1 "
            "WHERE cid = 'c050'",
            "SELECT id FROM {o} WHERE __key = 'o00042' OR qty = 20",
        ],
    ),
    *family(
        "aggregate",
        [
            "SELECT count(*), count(DISTINCT qty), sum(DISTINCT qty) FROM {o}",
            "SELECT avg(DISTINCT tier), count(DISTINCT country) FROM {c}",
            "SELECT status, min(amount), max(amount), avg(amount), sum(amount), count(amount) "
            "FROM {o} GROUP BY status",
            "SELECT sum(CASE WHEN status = 'paid' THEN amount ELSE 0 END), "
            "sum(CASE WHEN status = 'new' THEN 1 ELSE 0 END) FROM {o}",
            "SELECT region, max(length(note)) FROM {o} GROUP BY region",
            "SELECT min(ts), max(ts), max(ts) - min(ts) FROM {o}",
            "SELECT country, min(name), max(name), count(DISTINCT tier) FROM {c} GROUP BY country",
            "SELECT customer_id, avg(amount * qty) FROM {o} GROUP BY customer_id",
            "SELECT count(DISTINCT customer_id || status) FROM {o}",
        ],
    ),
]

PARAMETER_QUERIES = [
    ("SELECT id FROM {o} WHERE region = ? AND qty > ?", ("north", 10), False),
    (
        "SELECT region, count(*), sum(amount) FROM {o} WHERE ts >= ? GROUP BY region "
        "ORDER BY 3 DESC",
        (TS_START + 400_000,),
        True,
    ),
    ("SELECT id FROM {o} WHERE amount BETWEEN ? AND ?", (100.5, 200.25), False),
    ("SELECT id, qty FROM {o} WHERE __key IN (?, ?, ?)", ("o00010", "o00020", "nope"), False),
    ("SELECT id, amount FROM {o} WHERE __key = ?", ("o01234",), False),
    ("SELECT id FROM {o} WHERE status IN (?, ?) AND amount > ?", ("paid", "new", 750.0), False),
    ("SELECT id FROM {o} WHERE note LIKE ?", ("%gift%",), False),
    ("SELECT count(*) FROM {o} WHERE customer_id = ?", ("c007",), False),
    (
        "SELECT cid, name FROM {c} WHERE tier >= ? AND country <> ? ORDER BY cid LIMIT ?",
        (3, "NL", 10),
        True,
    ),
    ("SELECT id, amount * ? FROM {o} WHERE qty = ?", (2.5, 3), False),
    (
        "WITH p AS (SELECT ? AS lo, ? AS hi) SELECT id FROM {o}, p "
        "WHERE {o}.qty BETWEEN p.lo AND p.hi",
        (4, 6),
        False,
    ),
    (
        "SELECT cid FROM {c} c WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.customer_id = c.cid "
        "AND o.qty = ?) AND tier = ?",
        (20, 2),
        False,
    ),
    ("SELECT id FROM {o} WHERE qty > ? ORDER BY id LIMIT ? OFFSET ?", (5, 10, 3), True),
    ("SELECT cid FROM {c} WHERE cid = ?", ("c123",), False),
    ("SELECT ? || name, tier + ? FROM {c} WHERE tier = ?", ("x-", 100, 4), False),
]
QUERIES += [
    Query(f"params-{index:02d}", text, params, ordered)
    for index, (text, params, ordered) in enumerate(PARAMETER_QUERIES, 1)
]


def _normalize(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    key: list[Any] = []
    for value in row:
        if value is None:
            key.append((0, 0))
        elif isinstance(value, int | float):
            key.append((1, float(f"{value:.6g}")))
        else:
            key.append((2, str(value)))
    return tuple(key)


def _same_value(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)
    return bool(left == right)


def assert_same_rows(
    grid_rows: list[tuple[Any, ...]], reference: list[tuple[Any, ...]], *, ordered: bool
) -> None:
    grid = [tuple(_normalize(value) for value in row) for row in grid_rows]
    expected = [tuple(_normalize(value) for value in row) for row in reference]
    assert len(grid) == len(expected), f"{len(grid)} rows, SQLite has {len(expected)}"
    if not ordered:
        grid.sort(key=_sort_key)
        expected.sort(key=_sort_key)
    for position, (got, want) in enumerate(zip(grid, expected, strict=True)):
        assert len(got) == len(want), f"row {position}: {got} vs SQLite {want}"
        assert all(_same_value(a, b) for a, b in zip(got, want, strict=True)), (
            f"row {position}: {got} vs SQLite {want}"
        )


def test_the_set_is_large_and_mostly_non_empty(dataset: Dataset) -> None:
    assert len(QUERIES) >= 150
    assert len({query.name for query in QUERIES}) == len(QUERIES)
    empty = [
        query.name
        for query in QUERIES
        if not dataset.sqlite.execute(
            query.text.format(o="orders", c="customers"), query.params
        ).fetchall()
    ]
    # A few queries check empty answers on purpose; most must have rows to compare.
    assert len(empty) <= 8, empty


@pytest.mark.parametrize("query", QUERIES, ids=[query.name for query in QUERIES])
def test_query_matches_sqlite(dataset: Dataset, query: Query) -> None:
    reference = dataset.sqlite.execute(
        query.text.format(o="orders", c="customers"), query.params
    ).fetchall()
    statement = query.text.format(o=dataset.orders, c=dataset.customers)
    rows = dataset.client.sql(statement, list(query.params) or None).fetchall()
    assert_same_rows(rows, reference, ordered=query.ordered)
