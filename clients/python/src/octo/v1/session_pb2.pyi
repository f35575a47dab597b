import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReasoningEffort(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASONING_EFFORT_UNSPECIFIED: _ClassVar[ReasoningEffort]
    REASONING_EFFORT_OFF: _ClassVar[ReasoningEffort]
    REASONING_EFFORT_LOW: _ClassVar[ReasoningEffort]
    REASONING_EFFORT_MEDIUM: _ClassVar[ReasoningEffort]
    REASONING_EFFORT_HIGH: _ClassVar[ReasoningEffort]

class PermissionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERMISSION_MODE_UNSPECIFIED: _ClassVar[PermissionMode]
    PERMISSION_MODE_ASK: _ClassVar[PermissionMode]
    PERMISSION_MODE_AUTO_APPROVE: _ClassVar[PermissionMode]
    PERMISSION_MODE_READ_ONLY: _ClassVar[PermissionMode]

class SessionSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_SOURCE_UNSPECIFIED: _ClassVar[SessionSource]
    SESSION_SOURCE_MANUAL: _ClassVar[SessionSource]
    SESSION_SOURCE_SCHEDULE: _ClassVar[SessionSource]
    SESSION_SOURCE_API: _ClassVar[SessionSource]
    SESSION_SOURCE_WEBHOOK: _ClassVar[SessionSource]

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_IDLE: _ClassVar[SessionStatus]
    SESSION_STATUS_RUNNING: _ClassVar[SessionStatus]
    SESSION_STATUS_AWAITING_CONFIRMATION: _ClassVar[SessionStatus]
    SESSION_STATUS_AWAITING_INPUT: _ClassVar[SessionStatus]
REASONING_EFFORT_UNSPECIFIED: ReasoningEffort
REASONING_EFFORT_OFF: ReasoningEffort
REASONING_EFFORT_LOW: ReasoningEffort
REASONING_EFFORT_MEDIUM: ReasoningEffort
REASONING_EFFORT_HIGH: ReasoningEffort
PERMISSION_MODE_UNSPECIFIED: PermissionMode
PERMISSION_MODE_ASK: PermissionMode
PERMISSION_MODE_AUTO_APPROVE: PermissionMode
PERMISSION_MODE_READ_ONLY: PermissionMode
SESSION_SOURCE_UNSPECIFIED: SessionSource
SESSION_SOURCE_MANUAL: SessionSource
SESSION_SOURCE_SCHEDULE: SessionSource
SESSION_SOURCE_API: SessionSource
SESSION_SOURCE_WEBHOOK: SessionSource
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_IDLE: SessionStatus
SESSION_STATUS_RUNNING: SessionStatus
SESSION_STATUS_AWAITING_CONFIRMATION: SessionStatus
SESSION_STATUS_AWAITING_INPUT: SessionStatus

class Session(_message.Message):
    __slots__ = ("name", "display_name", "model", "reasoning_effort", "working_dir", "permission_mode", "system_prompt", "labels", "pinned", "source", "status", "queue_depth", "message_count", "last_message_preview", "usage", "create_time", "update_time", "last_active_time", "etag", "forked_from", "active_turn", "mcp_servers", "delete_time", "expire_time", "profile")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REASONING_EFFORT_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_MODE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TURN_FIELD_NUMBER: _ClassVar[int]
    MCP_SERVERS_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    model: str
    reasoning_effort: ReasoningEffort
    working_dir: str
    permission_mode: PermissionMode
    system_prompt: str
    labels: _containers.ScalarMap[str, str]
    pinned: bool
    source: SessionSource
    status: SessionStatus
    queue_depth: int
    message_count: int
    last_message_preview: str
    usage: Usage
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    last_active_time: _timestamp_pb2.Timestamp
    etag: str
    forked_from: str
    active_turn: str
    mcp_servers: McpServerSelection
    delete_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    profile: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., model: _Optional[str] = ..., reasoning_effort: _Optional[_Union[ReasoningEffort, str]] = ..., working_dir: _Optional[str] = ..., permission_mode: _Optional[_Union[PermissionMode, str]] = ..., system_prompt: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., pinned: _Optional[bool] = ..., source: _Optional[_Union[SessionSource, str]] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., queue_depth: _Optional[int] = ..., message_count: _Optional[int] = ..., last_message_preview: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_active_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., forked_from: _Optional[str] = ..., active_turn: _Optional[str] = ..., mcp_servers: _Optional[_Union[McpServerSelection, _Mapping]] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., profile: _Optional[str] = ...) -> None: ...

class McpServerSelection(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_input_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ...) -> None: ...
