from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Condition(_message.Message):
    __slots__ = ("if_version", "if_absent", "if_exists")
    IF_VERSION_FIELD_NUMBER: _ClassVar[int]
    IF_ABSENT_FIELD_NUMBER: _ClassVar[int]
    IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    if_version: int
    if_absent: bool
    if_exists: bool
    def __init__(self, if_version: _Optional[int] = ..., if_absent: _Optional[bool] = ..., if_exists: _Optional[bool] = ...) -> None: ...
