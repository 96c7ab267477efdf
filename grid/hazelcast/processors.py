"""The client halves of Shoal's member-side classes (deploy/local/hazelcast/src): what the
Python client sends to run a participant step, a read or a commit-sequence operation on the
member that owns the entry. Their factory and class ids must match the Java classes'."""

from __future__ import annotations

from typing import Any

from hazelcast.serialization.api import IdentifiedDataSerializable

# dev.shoal.hazelcast.ShoalFactory, registered in the member's hazelcast.xml.
FACTORY_ID = 7001
PARTITION_PROCESSOR = 2
PARTITION_READER = 3
SEQUENCE_PROCESSOR = 5


def _bytes(argument: Any) -> bytes:
    if isinstance(argument, bytes):
        return argument
    if isinstance(argument, bytearray | memoryview):
        return bytes(argument)
    return str(argument).encode()


class _Step(IdentifiedDataSerializable):
    """A step or read by name with its arguments, each sent as bytes (numbers as their text),
    the arguments grid/redis/steps.lua takes after the step's name."""

    class_id = 0

    def __init__(self, name: str, arguments: tuple[Any, ...]) -> None:
        self.name = name
        self.arguments = [_bytes(argument) for argument in arguments]

    def write_data(self, object_data_output: Any) -> None:
        object_data_output.write_string(self.name)
        object_data_output.write_int(len(self.arguments))
        for argument in self.arguments:
            object_data_output.write_byte_array(argument)

    def read_data(self, object_data_input: Any) -> None:
        raise NotImplementedError("sent to the member only")

    def get_factory_id(self) -> int:
        return FACTORY_ID

    def get_class_id(self) -> int:
        return self.class_id


class PartitionStep(_Step):
    """dev.shoal.hazelcast.PartitionProcessor: one participant step, atomic on the member."""

    class_id = PARTITION_PROCESSOR

    def write_data(self, object_data_output: Any) -> None:
        super().write_data(object_data_output)
        # The member reads its own clock when this is 0, and sends its reading to backups.
        object_data_output.write_long(0)


class PartitionRead(_Step):
    """dev.shoal.hazelcast.PartitionReader: a read of the partition that changes nothing."""

    class_id = PARTITION_READER


class SequenceOperation(IdentifiedDataSerializable):
    """dev.shoal.hazelcast.SequenceProcessor: one operation on a commit sequence."""

    def __init__(self, operation: str, number: int = 0, owner: str = "") -> None:
        self.operation = operation
        self.number = number
        self.owner = owner

    def write_data(self, object_data_output: Any) -> None:
        object_data_output.write_string(self.operation)
        object_data_output.write_long(self.number)
        object_data_output.write_string(self.owner)
        # The member reads its own clock when this is 0.
        object_data_output.write_long(0)

    def read_data(self, object_data_input: Any) -> None:
        raise NotImplementedError("sent to the member only")

    def get_factory_id(self) -> int:
        return FACTORY_ID

    def get_class_id(self) -> int:
        return SEQUENCE_PROCESSOR
