"""Partitions of a backlog advance together: a pipeline catching up on a filled topic must
not apply one partition to its end while the others wait.

The Kafka client prefetches up to 4 MiB of each partition and hands its buffers back one
partition at a time; before the consumer asked each partition for its share of a batch,
a backlog was applied partition by partition and one partition of a benchmark stalled for
about 45 s while the others moved.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from shoal import Client
from tests.support.kafka import Message, create_topic, produce_with_kcat, unique
from tests.support.pipeline_server import PipelinesApi
from tests.support.server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

PARTITIONS = 4
PER_PARTITION = 4_000
PIPELINE = """
from shoal.pipelines import pipeline


@pipeline(topic={topic!r}, group={group!r}, batch_max=400, batch_ms=50, max_in_flight=2)
def apply(event, tx):
    tx.put("fair", event["id"], event)
"""


def test_a_backlog_is_applied_from_every_partition_together(tmp_path: Path, kafka_bootstrap):
    topic, group = unique("fair"), unique("fair")
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    padding = "x" * 100
    produce_with_kcat(
        kafka_bootstrap,
        topic,
        [
            Message(
                number % PARTITIONS,
                f"e{number}".encode(),
                json.dumps({"id": f"e{number}", "padding": padding}).encode(),
            )
            for number in range(PARTITIONS * PER_PARTITION)
        ],
    )
    data = tmp_path / "data"
    plain = ServerProcess(data).start()
    with Client(plain.target) as client:
        client.create_map("fair")
    plain.stop()
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "fair.py").write_text(PIPELINE.format(topic=topic, group=group))
    server = ServerProcess(data, ["--pipelines", str(folder), "--kafka", kafka_bootstrap]).start()
    total = PARTITIONS * PER_PARTITION
    try:
        with PipelinesApi(server.target) as api:
            # Every sample of the committed offsets while the backlog is applied.
            samples: list[list[int]] = []
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                try:
                    lags = sorted(api.lag(group), key=lambda item: item.partition)
                except grpc.RpcError as error:
                    # The consumer is still connecting.
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                    time.sleep(0.1)
                    continue
                committed = [item.committed_offset for item in lags]
                if len(committed) == PARTITIONS:
                    samples.append(committed)
                    if sum(committed) >= total:
                        break
                time.sleep(0.02)
            else:
                pytest.fail(f"the backlog was not applied: {samples[-1:]}")
    finally:
        server.stop()
    # Wherever a quarter to three quarters of the backlog was applied, no partition may
    # be left behind near its start while another is near its end.
    middle = [sample for sample in samples if total / 4 <= sum(sample) <= 3 * total / 4]
    assert middle, f"no sample caught the middle of the run: {samples}"
    for sample in middle:
        assert min(sample) >= PER_PARTITION / 8, (
            f"partitions advanced unevenly: committed offsets {sample} of {PER_PARTITION} each"
        )
