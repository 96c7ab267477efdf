"""The practical ceiling of a Python gRPC front: a dict behind Shoal's own proto shape.

It serves Data.Get, GetMany and Put with the same messages and the same threaded
server as Shoal, and does nothing else, so Shoal's figures divided by its figures
show what the grid itself costs.
"""

from __future__ import annotations

import argparse
import sys
from concurrent import futures

import grpc

from shoal.v1 import data_pb2, data_pb2_grpc


class BareData(data_pb2_grpc.DataServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], bytes] = {}
        self.version = 0

    def Get(
        self, request: data_pb2.GetRequest, context: grpc.ServicerContext
    ) -> data_pb2.GetResponse:
        value = self.values.get((request.map, request.key))
        if value is None:
            return data_pb2.GetResponse(found=False)
        return data_pb2.GetResponse(found=True, value=value, version=1)

    def GetMany(
        self, request: data_pb2.GetManyRequest, context: grpc.ServicerContext
    ) -> data_pb2.GetManyResponse:
        keys = request.packed_keys.decode().split("\x00") if request.packed_keys else request.keys
        found = []
        values = []
        get = self.values.get
        map_name = request.map
        for position, key in enumerate(keys):
            value = get((map_name, key))
            if value is not None:
                found.append(position)
                values.append(value)
        response = data_pb2.GetManyResponse(
            found_indexes=found, values_json=b"[" + b",".join(values) + b"]"
        )
        if request.with_versions:
            response.versions.extend([1] * len(values))
        return response

    def Put(
        self, request: data_pb2.PutRequest, context: grpc.ServicerContext
    ) -> data_pb2.PutResponse:
        self.values[(request.map, request.key)] = request.value
        self.version += 1
        return data_pb2.PutResponse(version=self.version)

    def PutMany(
        self, request: data_pb2.PutManyRequest, context: grpc.ServicerContext
    ) -> data_pb2.PutManyResponse:
        for key, value in zip(request.keys, request.values, strict=True):
            self.values[(request.map, key)] = value
        return data_pb2.PutManyResponse(versions=[1] * len(request.keys))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=16)
    arguments = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=arguments.workers))
    data_pb2_grpc.add_DataServicer_to_server(BareData(), server)
    port = server.add_insecure_port(f"127.0.0.1:{arguments.port}")
    server.start()
    print(f"SHOAL_READY 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
