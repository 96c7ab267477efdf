"""A coordinator process running the orders pipeline, and what tests ask of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import grpc

from shoal import Client
from shoal.v1 import pipelines_pb2, pipelines_pb2_grpc
from tests.support.pipeline_workload import CUSTOMERS, Expected, write_pipeline
from tests.support.server_process import REPO_ROOT, ServerProcess


def start_pipeline_server(
    data_dir: Path,
    pipelines: Path,
    bootstrap: str,
    *,
    extra: list[str] | None = None,
    environment: dict[str, str] | None = None,
) -> ServerProcess:
    """A coordinator with the orders maps and customers, running the given pipelines."""
    server = ServerProcess(
        data_dir,
        [
            "--pipelines",
            str(pipelines),
            "--kafka",
            bootstrap,
            "--kafka-session-timeout-ms",
            "6000",
            "--log-level",
            "INFO",
            *(extra or []),
        ],
        environment=dict(environment or {}),
    ).start()
    with Client(server.target) as client:
        for name in ("orders", "revenue", "customers"):
            client.create_map(name, if_not_exists=True)
        client.put_many("customers", {f"c{number}": {"n": number} for number in range(CUSTOMERS)})
    return server


def orders_pipeline(folder: Path, topic: str, group: str, **settings: Any) -> Path:
    return write_pipeline(folder, topic=topic, group=group, **settings)


class PipelinesApi:
    """The Pipelines gRPC service of one coordinator."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pipelines_pb2_grpc.PipelinesStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> PipelinesApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def info(self, name: str) -> pipelines_pb2.PipelineInfo:
        reply = self.stub.List(pipelines_pb2.ListPipelinesRequest(), timeout=10)
        (found,) = [item for item in reply.pipelines if item.name == name]
        return cast(pipelines_pb2.PipelineInfo, found)

    def lag(self, name: str) -> list[pipelines_pb2.PartitionLag]:
        return list(self.stub.Lag(pipelines_pb2.LagRequest(name=name), timeout=30).partitions)

    def total_lag(self, name: str) -> int:
        return sum(item.lag for item in self.lag(name))

    def caught_up(self, name: str, produced: int) -> bool:
        """Every produced record is committed, and no dead letter waits to be published."""
        try:
            lags = self.lag(name)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                return False
            raise
        return (
            sum(item.end_offset for item in lags) >= produced
            and all(item.lag == 0 for item in lags)
            and self.info(name).dead_letters_pending == 0
        )


def grid_outcome(target: str) -> tuple[set[str], dict[str, dict[str, int]]]:
    with Client(target, timeout_s=60) as client:
        orders = {key for key, _ in client.scan("orders")}
        revenue = dict(client.scan("revenue"))
    return orders, revenue


def check_grid(target: str, expected: Expected) -> None:
    orders, revenue = grid_outcome(target)
    assert len(orders) == len(expected.orders)
    assert orders == expected.orders
    assert revenue == expected.revenue


def shoal_cli(target: str, *arguments: str) -> Any:
    completed = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "--target", target, "--json", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)
