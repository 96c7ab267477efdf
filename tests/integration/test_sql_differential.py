"""Grid SQL against plain DuckDB on the same rows: a seeded differential test.

`make test` runs a few hundred statements from seed 17. A long run:
`.venv/bin/python -m pytest tests/integration/test_sql_differential.py --queries 10000
--sql-seed 5 -s` (it prints its counts). A failure prints the seed, the case and the
minimized statement with its parameters and both answers; tests/support/sql_differential.py
has the generator.
"""

from __future__ import annotations

import uuid

import pytest

from shoal import Client
from tests.support.sql_differential import Differential

pytestmark = pytest.mark.integration

FAILURES_SHOWN = 5


def test_grid_sql_agrees_with_duckdb(shoal_server: str, request: pytest.FixtureRequest) -> None:
    queries: int = request.config.getoption("--queries")
    seed: int = request.config.getoption("--sql-seed")
    # A long run takes its time; the default run stays well under a minute.
    with Client(shoal_server, timeout_s=60) as client:
        tester = Differential(client, seed, uuid.uuid4().hex[:8])
        try:
            tester.load()
            tester.run(queries)
        finally:
            tester.close()
    print(f"\nSQL differential, seed {seed}, {queries} cases: {tester.counts.line()}")
    for note in tester.notes:
        print(note)
    assert not tester.failures, (
        f"{len(tester.failures)} mismatch(es) between grid SQL and DuckDB "
        f"(replay: --sql-seed {seed} --queries {queries}):\n\n"
        + "\n\n".join(tester.failures[:FAILURES_SHOWN])
    )
    # The run met every shape, and most statements were answered by both.
    assert tester.counts.point_lookups > queries // 20
    assert tester.counts.partitions > queries // 20
    assert tester.counts.both_refused < tester.counts.statements // 4
