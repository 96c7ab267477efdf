"""The Data service: key lookups and plain writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import grpc

from coordinator.keyvalue import KeyValue
from coordinator.services.errors import streaming, unary
from coordinator.sketches.items import sketch_document
from grid.entry import VERSION_BYTES
from grid.errors import InvalidArgument
from grid.participant import Condition
from shoal.v1 import common_pb2, data_pb2, data_pb2_grpc


def condition_from(message: common_pb2.Condition, present: bool) -> Condition | None:
    if not present:
        return None
    kind = message.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "if_version":
        if message.if_version == 0:
            raise InvalidArgument(
                "if_version must be a version (> 0); use if_absent for a missing key",
                field="condition",
            )
        return Condition("if_version", message.if_version)
    return Condition(kind)


class DataService(data_pb2_grpc.DataServicer):
    def __init__(self, keyvalue: KeyValue) -> None:
        self.keyvalue = keyvalue

    def _documents(self, map_name: str, entries: list[bytes]) -> list[bytes]:
        """The JSON documents of stored entries; a sketch map's raw sketches as tagged bytes."""
        definition = self.keyvalue.catalog.find(map_name)
        if definition is not None and definition.sketch is not None:
            return [sketch_document(entry[:-VERSION_BYTES]) for entry in entries]
        return [entry[:-VERSION_BYTES] for entry in entries]

    @unary
    def Get(
        self, request: data_pb2.GetRequest, context: grpc.ServicerContext
    ) -> data_pb2.GetResponse:
        read_version = 0
        if request.read_version or request.snapshot:
            read_version = self.keyvalue.read_version(request.read_version)
        entry = self.keyvalue.get(request.map, request.key, read_version=read_version)
        # Read at a version: say whether the key changed since, for transactions to fail fast.
        changed = bool(read_version) and self.keyvalue.get(request.map, request.key) != entry
        if entry is None:
            return data_pb2.GetResponse(found=False, read_version=read_version, changed=changed)
        return data_pb2.GetResponse(
            found=True,
            value=self._documents(request.map, [entry])[0],
            version=int.from_bytes(entry[-VERSION_BYTES:], "little"),
            read_version=read_version,
            changed=changed,
        )

    @unary
    def GetMany(
        self, request: data_pb2.GetManyRequest, context: grpc.ServicerContext
    ) -> data_pb2.GetManyResponse:
        packed = request.packed_keys or None
        if packed is not None:
            try:
                keys: Sequence[str] = packed.decode("utf-8").split("\x00")
            except UnicodeDecodeError as error:
                raise InvalidArgument(
                    f"packed_keys must be UTF-8 keys separated by NUL bytes: {error}",
                    field="packed_keys",
                ) from None
        else:
            keys = request.keys
        read_version = 0
        if request.consistent or request.read_version:
            read_version = self.keyvalue.read_version(request.read_version)
        entries = self.keyvalue.get_many(
            request.map, keys, read_version=read_version, packed=packed
        )
        if None in entries:
            found_indexes = [index for index, entry in enumerate(entries) if entry is not None]
            found: list[bytes] = [entry for entry in entries if entry is not None]
        else:
            found_indexes = list(range(len(entries)))
            # No None among them, checked just above.
            found = cast(list[bytes], entries)
        response = data_pb2.GetManyResponse(
            found_indexes=found_indexes,
            values_json=b"[" + b",".join(self._documents(request.map, found)) + b"]",
            read_version=read_version,
        )
        if request.with_versions:
            response.versions.extend(
                [int.from_bytes(entry[-VERSION_BYTES:], "little") for entry in found]
            )
            if read_version:
                # As for Get: did any key change after the read version?
                latest = self.keyvalue.get_many(request.map, keys, packed=packed)
                response.changed = latest != entries
        return response

    @unary
    def Put(
        self, request: data_pb2.PutRequest, context: grpc.ServicerContext
    ) -> data_pb2.PutResponse:
        version = self.keyvalue.put(
            request.map,
            request.key,
            request.value,
            request_id=request.request_id,
            condition=condition_from(request.condition, request.HasField("condition")),
        )
        return data_pb2.PutResponse(version=version)

    @unary
    def PutMany(
        self, request: data_pb2.PutManyRequest, context: grpc.ServicerContext
    ) -> data_pb2.PutManyResponse:
        versions = self.keyvalue.put_many(
            request.map, request.keys, request.values, request_id=request.request_id
        )
        return data_pb2.PutManyResponse(versions=versions)

    @unary
    def Delete(
        self, request: data_pb2.DeleteRequest, context: grpc.ServicerContext
    ) -> data_pb2.DeleteResponse:
        existed = self.keyvalue.delete(
            request.map,
            request.key,
            request_id=request.request_id,
            condition=condition_from(request.condition, request.HasField("condition")),
        )
        return data_pb2.DeleteResponse(existed=existed)

    @unary
    def ReadVersion(
        self, request: data_pb2.ReadVersionRequest, context: grpc.ServicerContext
    ) -> data_pb2.ReadVersionResponse:
        return data_pb2.ReadVersionResponse(
            read_version=self.keyvalue.read_version(),
            window_ms=self.keyvalue.manager.config.mvcc_window_ms,
        )

    @streaming
    def Scan(
        self, request: data_pb2.ScanRequest, context: grpc.ServicerContext
    ) -> Iterator[data_pb2.ScanChunk]:
        if not request.read_version:
            yield from self._scan(request, context, 0)
            return
        # Held while the stream runs (released however it ends, a client gone included):
        # a long scan at a read version keeps the states it needs past the window.
        with self.keyvalue.manager.reading(request.read_version) as read_version:
            yield from self._scan(request, context, read_version)

    def _scan(
        self, request: data_pb2.ScanRequest, context: grpc.ServicerContext, read_version: int
    ) -> Iterator[data_pb2.ScanChunk]:
        for chunk in self.keyvalue.scan(
            request.map,
            prefix=request.prefix,
            limit=request.limit,
            chunk_entries=request.chunk_entries,
            read_version=read_version,
        ):
            if not context.is_active():
                return
            yield data_pb2.ScanChunk(
                keys=[key for key, _ in chunk],
                values=self._documents(request.map, [entry for _, entry in chunk]),
                versions=[int.from_bytes(entry[-VERSION_BYTES:], "little") for _, entry in chunk],
                read_version=read_version,
            )
