"""Standard gRPC health checking and server reflection, probed with stock gRPC stubs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

pytestmark = pytest.mark.integration

SHOAL_SERVICES = ("shoal.v1.Data", "shoal.v1.Admin", "shoal.v1.Transactions")
TIMEOUT_S = 10


@pytest.fixture
def channel(shoal_server: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(shoal_server) as opened:
        yield opened


@pytest.mark.parametrize("service", ["", *SHOAL_SERVICES])
def test_health_check_serving(channel: grpc.Channel, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_an_unknown_service(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT_S)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT_S
        )
    )
    assert len(replies) == 1
    names = {service.name for service in replies[0].list_services_response.service}
    assert {*SHOAL_SERVICES, "grpc.health.v1.Health"} <= names
    assert "grpc.reflection.v1alpha.ServerReflection" in names


def test_reflection_describes_the_methods(channel: grpc.Channel) -> None:
    """A generic client can learn the Data service's methods without our .proto files."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    data = pool.FindServiceByName("shoal.v1.Data")
    methods = {method.name: method for method in data.methods}
    assert {"Get", "GetMany", "Put", "PutMany", "Delete", "Scan"} <= set(methods)
    assert methods["Scan"].server_streaming
    assert methods["Get"].input_type.full_name == "shoal.v1.GetRequest"
    admin = pool.FindServiceByName("shoal.v1.Admin")
    assert {"CreateMap", "DropMap", "ListMaps", "DescribeMap", "ClusterInfo"} <= {
        method.name for method in admin.methods
    }
