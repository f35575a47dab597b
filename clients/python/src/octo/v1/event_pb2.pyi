import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from octo.v1 import message_pb2 as _message_pb2
from octo.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTENT_KIND_UNSPECIFIED: _ClassVar[ContentKind]
    CONTENT_KIND_TEXT: _ClassVar[ContentKind]
    CONTENT_KIND_REASONING: _ClassVar[ContentKind]

class OutputStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_STREAM_UNSPECIFIED: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDOUT: _ClassVar[OutputStream]
    OUTPUT_STREAM_STDERR: _ClassVar[OutputStream]

class FileChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_CHANGE_KIND_UNSPECIFIED: _ClassVar[FileChangeKind]
    FILE_CHANGE_KIND_CREATED: _ClassVar[FileChangeKind]
    FILE_CHANGE_KIND_MODIFIED: _ClassVar[FileChangeKind]
    FILE_CHANGE_KIND_DELETED: _ClassVar[FileChangeKind]
CONTENT_KIND_UNSPECIFIED: ContentKind
CONTENT_KIND_TEXT: ContentKind
CONTENT_KIND_REASONING: ContentKind
OUTPUT_STREAM_UNSPECIFIED: OutputStream
OUTPUT_STREAM_STDOUT: OutputStream
OUTPUT_STREAM_STDERR: OutputStream
FILE_CHANGE_KIND_UNSPECIFIED: FileChangeKind
FILE_CHANGE_KIND_CREATED: FileChangeKind
FILE_CHANGE_KIND_MODIFIED: FileChangeKind
FILE_CHANGE_KIND_DELETED: FileChangeKind

class SessionEvent(_message.Message):
    __slots__ = ("sequence", "session", "turn", "time", "snapshot", "turn_queued", "turn_started", "message_started", "content_started", "text_delta", "reasoning_delta", "content_finished", "tool_call_started", "tool_call_output", "tool_call_finished", "confirmation_requested", "confirmation_resolved", "message_completed", "turn_finished", "session_updated", "session_deleted", "error", "stream_reset", "input_requested", "input_resolved", "file_changed", "context_compacted")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    TURN_QUEUED_FIELD_NUMBER: _ClassVar[int]
    TURN_STARTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STARTED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    REASONING_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_STARTED_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FINISHED_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TURN_FINISHED_FIELD_NUMBER: _ClassVar[int]
    SESSION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    SESSION_DELETED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STREAM_RESET_FIELD_NUMBER: _ClassVar[int]
    INPUT_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    INPUT_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    FILE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_COMPACTED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    session: str
    turn: str
    time: _timestamp_pb2.Timestamp
    snapshot: SessionSnapshot
    turn_queued: TurnQueued
    turn_started: TurnStarted
    message_started: MessageStarted
    content_started: ContentStarted
    text_delta: TextDelta
    reasoning_delta: ReasoningDelta
    content_finished: ContentFinished
    tool_call_started: ToolCallStarted
    tool_call_output: ToolCallOutput
    tool_call_finished: ToolCallFinished
    confirmation_requested: ConfirmationRequested
    confirmation_resolved: ConfirmationResolved
    message_completed: MessageCompleted
    turn_finished: TurnFinished
    session_updated: SessionUpdated
    session_deleted: SessionDeleted
    error: ErrorEvent
    stream_reset: StreamReset
    input_requested: InputRequested
    input_resolved: InputResolved
    file_changed: FileChanged
    context_compacted: ContextCompacted
    def __init__(self, sequence: _Optional[int] = ..., session: _Optional[str] = ..., turn: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., snapshot: _Optional[_Union[SessionSnapshot, _Mapping]] = ..., turn_queued: _Optional[_Union[TurnQueued, _Mapping]] = ..., turn_started: _Optional[_Union[TurnStarted, _Mapping]] = ..., message_started: _Optional[_Union[MessageStarted, _Mapping]] = ..., content_started: _Optional[_Union[ContentStarted, _Mapping]] = ..., text_delta: _Optional[_Union[TextDelta, _Mapping]] = ..., reasoning_delta: _Optional[_Union[ReasoningDelta, _Mapping]] = ..., content_finished: _Optional[_Union[ContentFinished, _Mapping]] = ..., tool_call_started: _Optional[_Union[ToolCallStarted, _Mapping]] = ..., tool_call_output: _Optional[_Union[ToolCallOutput, _Mapping]] = ..., tool_call_finished: _Optional[_Union[ToolCallFinished, _Mapping]] = ..., confirmation_requested: _Optional[_Union[ConfirmationRequested, _Mapping]] = ..., confirmation_resolved: _Optional[_Union[ConfirmationResolved, _Mapping]] = ..., message_completed: _Optional[_Union[MessageCompleted, _Mapping]] = ..., turn_finished: _Optional[_Union[TurnFinished, _Mapping]] = ..., session_updated: _Optional[_Union[SessionUpdated, _Mapping]] = ..., session_deleted: _Optional[_Union[SessionDeleted, _Mapping]] = ..., error: _Optional[_Union[ErrorEvent, _Mapping]] = ..., stream_reset: _Optional[_Union[StreamReset, _Mapping]] = ..., input_requested: _Optional[_Union[InputRequested, _Mapping]] = ..., input_resolved: _Optional[_Union[InputResolved, _Mapping]] = ..., file_changed: _Optional[_Union[FileChanged, _Mapping]] = ..., context_compacted: _Optional[_Union[ContextCompacted, _Mapping]] = ...) -> None: ...

class SessionSnapshot(_message.Message):
    __slots__ = ("session", "active_turn", "queued_turns", "pending_confirmations", "partial_message", "last_sequence", "pending_input_requests")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TURN_FIELD_NUMBER: _ClassVar[int]
    QUEUED_TURNS_FIELD_NUMBER: _ClassVar[int]
    PENDING_CONFIRMATIONS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PENDING_INPUT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.Session
    active_turn: _message_pb2.Turn
    queued_turns: _containers.RepeatedCompositeFieldContainer[_message_pb2.Turn]
    pending_confirmations: _containers.RepeatedCompositeFieldContainer[_message_pb2.Confirmation]
    partial_message: _message_pb2.Message
    last_sequence: int
    pending_input_requests: _containers.RepeatedCompositeFieldContainer[_message_pb2.InputRequest]
    def __init__(self, session: _Optional[_Union[_session_pb2.Session, _Mapping]] = ..., active_turn: _Optional[_Union[_message_pb2.Turn, _Mapping]] = ..., queued_turns: _Optional[_Iterable[_Union[_message_pb2.Turn, _Mapping]]] = ..., pending_confirmations: _Optional[_Iterable[_Union[_message_pb2.Confirmation, _Mapping]]] = ..., partial_message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., last_sequence: _Optional[int] = ..., pending_input_requests: _Optional[_Iterable[_Union[_message_pb2.InputRequest, _Mapping]]] = ...) -> None: ...

class TurnQueued(_message.Message):
    __slots__ = ("turn", "position")
    TURN_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    turn: _message_pb2.Turn
    position: int
    def __init__(self, turn: _Optional[_Union[_message_pb2.Turn, _Mapping]] = ..., position: _Optional[int] = ...) -> None: ...

class TurnStarted(_message.Message):
    __slots__ = ("turn",)
    TURN_FIELD_NUMBER: _ClassVar[int]
    turn: _message_pb2.Turn
    def __init__(self, turn: _Optional[_Union[_message_pb2.Turn, _Mapping]] = ...) -> None: ...

class MessageStarted(_message.Message):
    __slots__ = ("message", "role")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    message: str
    role: _message_pb2.Role
    def __init__(self, message: _Optional[str] = ..., role: _Optional[_Union[_message_pb2.Role, str]] = ...) -> None: ...

class ContentStarted(_message.Message):
    __slots__ = ("message", "index", "kind")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    message: str
    index: int
    kind: ContentKind
    def __init__(self, message: _Optional[str] = ..., index: _Optional[int] = ..., kind: _Optional[_Union[ContentKind, str]] = ...) -> None: ...

class TextDelta(_message.Message):
    __slots__ = ("message", "index", "text")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    message: str
    index: int
    text: str
    def __init__(self, message: _Optional[str] = ..., index: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class ReasoningDelta(_message.Message):
    __slots__ = ("message", "index", "text")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    message: str
    index: int
    text: str
    def __init__(self, message: _Optional[str] = ..., index: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class ContentFinished(_message.Message):
    __slots__ = ("message", "index")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    message: str
    index: int
    def __init__(self, message: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class ToolCallStarted(_message.Message):
    __slots__ = ("tool_call",)
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    tool_call: _message_pb2.ToolCall
    def __init__(self, tool_call: _Optional[_Union[_message_pb2.ToolCall, _Mapping]] = ...) -> None: ...

class ToolCallOutput(_message.Message):
    __slots__ = ("tool_call_id", "stream", "text")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    stream: OutputStream
    text: str
    def __init__(self, tool_call_id: _Optional[str] = ..., stream: _Optional[_Union[OutputStream, str]] = ..., text: _Optional[str] = ...) -> None: ...

class ToolCallFinished(_message.Message):
    __slots__ = ("record", "duration")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    record: _message_pb2.ToolCallRecord
    duration: _duration_pb2.Duration
    def __init__(self, record: _Optional[_Union[_message_pb2.ToolCallRecord, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ConfirmationRequested(_message.Message):
    __slots__ = ("confirmation",)
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    confirmation: _message_pb2.Confirmation
    def __init__(self, confirmation: _Optional[_Union[_message_pb2.Confirmation, _Mapping]] = ...) -> None: ...

class ConfirmationResolved(_message.Message):
    __slots__ = ("confirmation", "decision")
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    confirmation: str
    decision: _message_pb2.ConfirmationDecision
    def __init__(self, confirmation: _Optional[str] = ..., decision: _Optional[_Union[_message_pb2.ConfirmationDecision, str]] = ...) -> None: ...

class InputRequested(_message.Message):
    __slots__ = ("input_request",)
    INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    input_request: _message_pb2.InputRequest
    def __init__(self, input_request: _Optional[_Union[_message_pb2.InputRequest, _Mapping]] = ...) -> None: ...

class InputResolved(_message.Message):
    __slots__ = ("input_request", "answer")
    INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    input_request: str
    answer: str
    def __init__(self, input_request: _Optional[str] = ..., answer: _Optional[str] = ...) -> None: ...

class MessageCompleted(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ...) -> None: ...

class TurnFinished(_message.Message):
    __slots__ = ("turn",)
    TURN_FIELD_NUMBER: _ClassVar[int]
    turn: _message_pb2.Turn
    def __init__(self, turn: _Optional[_Union[_message_pb2.Turn, _Mapping]] = ...) -> None: ...

class SessionUpdated(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: _session_pb2.Session
    def __init__(self, session: _Optional[_Union[_session_pb2.Session, _Mapping]] = ...) -> None: ...

class SessionDeleted(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class ErrorEvent(_message.Message):
    __slots__ = ("reason", "message", "retry_delay")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    retry_delay: _duration_pb2.Duration
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ..., retry_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ContextCompacted(_message.Message):
    __slots__ = ("replaced_messages", "tokens_before", "tokens_after", "summary", "model")
    REPLACED_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_AFTER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    replaced_messages: int
    tokens_before: int
    tokens_after: int
    summary: str
    model: str
    def __init__(self, replaced_messages: _Optional[int] = ..., tokens_before: _Optional[int] = ..., tokens_after: _Optional[int] = ..., summary: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class StreamReset(_message.Message):
    __slots__ = ("reason", "oldest_retained_sequence")
    REASON_FIELD_NUMBER: _ClassVar[int]
    OLDEST_RETAINED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    oldest_retained_sequence: int
    def __init__(self, reason: _Optional[str] = ..., oldest_retained_sequence: _Optional[int] = ...) -> None: ...

class FileChanged(_message.Message):
    __slots__ = ("tool_call_id", "path", "kind", "size", "diff", "diff_truncated")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    DIFF_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    path: str
    kind: FileChangeKind
    size: int
    diff: str
    diff_truncated: bool
    def __init__(self, tool_call_id: _Optional[str] = ..., path: _Optional[str] = ..., kind: _Optional[_Union[FileChangeKind, str]] = ..., size: _Optional[int] = ..., diff: _Optional[str] = ..., diff_truncated: _Optional[bool] = ...) -> None: ...
