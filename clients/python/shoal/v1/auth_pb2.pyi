from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateTokenRequest(_message.Message):
    __slots__ = ("principal", "roles", "teams", "description", "ttl_s")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    principal: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    teams: _containers.RepeatedScalarFieldContainer[str]
    description: str
    ttl_s: int
    def __init__(self, principal: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., teams: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "token_id", "principal")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_id: str
    principal: str
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("token_id", "principal", "description", "created_ms", "expires_ms", "created_by")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    principal: str
    description: str
    created_ms: int
    expires_ms: int
    created_by: str
    def __init__(self, token_id: _Optional[str] = ..., principal: _Optional[str] = ..., description: _Optional[str] = ..., created_ms: _Optional[int] = ..., expires_ms: _Optional[int] = ..., created_by: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: str
    def __init__(self, principal: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id", "principal")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    principal: str
    def __init__(self, token_id: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("revoked",)
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    revoked: int
    def __init__(self, revoked: _Optional[int] = ...) -> None: ...

class GrantRequest(_message.Message):
    __slots__ = ("principal", "team", "roles")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    principal: str
    team: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, principal: _Optional[str] = ..., team: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class SubjectInfo(_message.Message):
    __slots__ = ("name", "team", "grants", "teams")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    team: bool
    grants: _containers.RepeatedScalarFieldContainer[str]
    teams: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., team: _Optional[bool] = ..., grants: _Optional[_Iterable[str]] = ..., teams: _Optional[_Iterable[str]] = ...) -> None: ...

class MembershipRequest(_message.Message):
    __slots__ = ("principal", "team", "remove")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    principal: str
    team: str
    remove: bool
    def __init__(self, principal: _Optional[str] = ..., team: _Optional[str] = ..., remove: _Optional[bool] = ...) -> None: ...

class MapCertificateRequest(_message.Message):
    __slots__ = ("common_name", "principal")
    COMMON_NAME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    common_name: str
    principal: str
    def __init__(self, common_name: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class MapCertificateResponse(_message.Message):
    __slots__ = ("common_name", "principal")
    COMMON_NAME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    common_name: str
    principal: str
    def __init__(self, common_name: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CertificateMapping(_message.Message):
    __slots__ = ("common_name", "principal")
    COMMON_NAME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    common_name: str
    principal: str
    def __init__(self, common_name: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("principals", "teams", "certificates")
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    principals: _containers.RepeatedCompositeFieldContainer[SubjectInfo]
    teams: _containers.RepeatedCompositeFieldContainer[SubjectInfo]
    certificates: _containers.RepeatedCompositeFieldContainer[CertificateMapping]
    def __init__(self, principals: _Optional[_Iterable[_Union[SubjectInfo, _Mapping]]] = ..., teams: _Optional[_Iterable[_Union[SubjectInfo, _Mapping]]] = ..., certificates: _Optional[_Iterable[_Union[CertificateMapping, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("principal", "teams", "grants", "auth_enabled")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    AUTH_ENABLED_FIELD_NUMBER: _ClassVar[int]
    principal: str
    teams: _containers.RepeatedScalarFieldContainer[str]
    grants: _containers.RepeatedScalarFieldContainer[str]
    auth_enabled: bool
    def __init__(self, principal: _Optional[str] = ..., teams: _Optional[_Iterable[str]] = ..., grants: _Optional[_Iterable[str]] = ..., auth_enabled: _Optional[bool] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("limit", "principal", "auth_only")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    AUTH_ONLY_FIELD_NUMBER: _ClassVar[int]
    limit: int
    principal: str
    auth_only: bool
    def __init__(self, limit: _Optional[int] = ..., principal: _Optional[str] = ..., auth_only: _Optional[bool] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("lines_json",)
    LINES_JSON_FIELD_NUMBER: _ClassVar[int]
    lines_json: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lines_json: _Optional[_Iterable[str]] = ...) -> None: ...
