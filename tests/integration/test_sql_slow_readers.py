"""Many SQL result streams whose readers pause between batches must all finish.

Found by the load test (issue 18): on grpc.aio, each step of a result stream runs on
the SQL lane's threads (`--workers` of them) while the stream holds one of the engine's
few DuckDB connections (`ConnectionPool`, 4) between steps. When more streams start
than there are threads, every thread waits in `ConnectionPool.acquire` for a
connection that belongs to a paused stream, whose next step waits for a thread: no
stream finishes until its deadline. The engine now reads a result of up to
READ_AHEAD_BYTES whole before sending its first batch and gives the connection back
then, so a paused reader holds memory, not a connection. A private server, so a stuck
SQL lane cannot reach other tests.
"""

from __future__ import annotations

import threading
import time

import pytest

from shoal import Client
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

READERS = 30
DEADLINE_S = 10.0


def test_thirty_slow_readers_all_finish(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    with Client(fresh_server.target) as client:
        client.create_map("rows", schema={"n": {"type": "int"}})
        client.put_many("rows", {f"k{index}": {"n": index} for index in range(2_000)})
    finished: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with Client(fresh_server.target, timeout_s=DEADLINE_S) as reader:
                cursor = reader.sql("SELECT * FROM rows", batch_rows=100)
                first = cursor.fetchmany(100)
                time.sleep(0.5)  # a reader that takes a moment between batches
                finished.append(len(first) + len(cursor.fetchall()))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=read, daemon=True) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S * 3)
    assert not errors, f"{len(errors)} readers failed, the first: {errors[0]!r}"
    assert finished == [2_000] * READERS
