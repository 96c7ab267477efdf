"""Production's socket into a sandbox: served and reached through a directory descriptor,
so a data directory's path longer than a socket address may hold still works."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from coordinator.operators.sandbox_channel import SOCKET_ENV, listening_target, open_channel
from coordinator.operators.sandbox_process import answers


def test_a_socket_under_a_long_path_is_served_and_answers(tmp_path: Path) -> None:
    directory = tmp_path / ("d" * 120)
    directory.mkdir()
    socket_path = directory / "control.sock"
    assert len(str(socket_path)) > 108  # too long for a sockaddr_un as it is
    assert listening_target({}) is None
    assert not answers(socket_path)
    target = listening_target({SOCKET_ENV: str(socket_path)})
    assert target is not None and len(target) < 108
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    assert server.add_insecure_port(target) != 0
    server.start()
    try:
        assert socket_path.is_socket()
        assert answers(socket_path)
        with open_channel(socket_path) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(None)
