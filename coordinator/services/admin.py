"""The Admin service: maps, schemas and cluster information."""

from __future__ import annotations

import grpc
import orjson

import coordinator
from coordinator.backends import redacted
from coordinator.node import Node
from coordinator.security.setup import Security
from coordinator.services.errors import unary
from grid.catalog import MapDefinition
from grid.errors import InvalidArgument
from shoal.v1 import admin_pb2, admin_pb2_grpc


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(self, node: Node, security: Security | None = None) -> None:
        self.node = node
        self.security = security

    def _info(self, definition: MapDefinition, *, with_stats: bool = True) -> admin_pb2.MapInfo:
        info = admin_pb2.MapInfo(name=definition.name)
        if definition.schema is not None:
            info.schema_json = orjson.dumps(definition.schema.to_json())
            info.schema_version = definition.schema.version
        if definition.sketch is not None:
            info.sketch_json = orjson.dumps(definition.sketch)
        if with_stats:
            stats = self.node.map_stats(definition.name)
            info.entries = stats.entries
            info.memory_bytes = stats.memory_bytes
        return info

    @unary
    def CreateMap(
        self, request: admin_pb2.CreateMapRequest, context: grpc.ServicerContext
    ) -> admin_pb2.MapInfo:
        if request.sketch_json:
            raise InvalidArgument(
                "create sketch maps through the Sketches service", field="sketch_json"
            )
        definition = self.node.create_map(
            request.name, request.schema_json, if_not_exists=request.if_not_exists
        )
        return self._info(definition)

    @unary
    def DropMap(
        self, request: admin_pb2.DropMapRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DropMapResponse:
        return admin_pb2.DropMapResponse(
            dropped=self.node.drop_map(request.name, if_exists=request.if_exists)
        )

    @unary
    def ListMaps(
        self, request: admin_pb2.ListMapsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListMapsResponse:
        shown = (
            None
            if self.security is None
            else self.security.visible(getattr(context, "identity", None))
        )
        # As of every catalog change acknowledged so far, through any coordinator.
        self.node.catalog.confirm()
        return admin_pb2.ListMapsResponse(
            maps=[
                self._info(definition)
                for definition in self.node.catalog.definitions()
                if shown is None or shown(definition.name)
            ]
        )

    @unary
    def DescribeMap(
        self, request: admin_pb2.DescribeMapRequest, context: grpc.ServicerContext
    ) -> admin_pb2.MapInfo:
        self.node.catalog.confirm()
        return self._info(self.node.catalog.get(request.name))

    @unary
    def AlterMapSchema(
        self, request: admin_pb2.AlterMapSchemaRequest, context: grpc.ServicerContext
    ) -> admin_pb2.MapInfo:
        return self._info(self.node.alter_schema(request.name, request.schema_json))

    @unary
    def ClusterInfo(
        self, request: admin_pb2.ClusterInfoRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ClusterInfoResponse:
        config = self.node.config
        return admin_pb2.ClusterInfoResponse(
            version=coordinator.__version__,
            node_id=self.node.node_id,
            backend=redacted(config.backend),
            partitions=config.partitions,
            data_dir=str(config.data_dir),
            fsync=config.fsync,
            uptime_ms=self.node.uptime_ms(),
            maps=len(self.node.catalog.names()),
            entries=self.node.entry_count(),
            limits_json=orjson.dumps(self.node.limits.to_json()),
        )
