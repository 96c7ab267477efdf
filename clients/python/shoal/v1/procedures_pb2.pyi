from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallRequest(_message.Message):
    __slots__ = ("name", "args_json", "kwargs_json", "call_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    args_json: bytes
    kwargs_json: bytes
    call_id: bytes
    def __init__(self, name: _Optional[str] = ..., args_json: _Optional[bytes] = ..., kwargs_json: _Optional[bytes] = ..., call_id: _Optional[bytes] = ...) -> None: ...

class CallResponse(_message.Message):
    __slots__ = ("result_json", "attempts", "version")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    result_json: bytes
    attempts: int
    version: int
    def __init__(self, result_json: _Optional[bytes] = ..., attempts: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class ListProceduresRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProcedureInfo(_message.Message):
    __slots__ = ("name", "module", "parameters", "description", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    module: str
    parameters: str
    description: str
    counters: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., module: _Optional[str] = ..., parameters: _Optional[str] = ..., description: _Optional[str] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListProceduresResponse(_message.Message):
    __slots__ = ("procedures",)
    PROCEDURES_FIELD_NUMBER: _ClassVar[int]
    procedures: _containers.RepeatedCompositeFieldContainer[ProcedureInfo]
    def __init__(self, procedures: _Optional[_Iterable[_Union[ProcedureInfo, _Mapping]]] = ...) -> None: ...
