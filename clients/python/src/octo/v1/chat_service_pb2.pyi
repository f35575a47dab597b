import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from octo.v1 import event_pb2 as _event_pb2
from octo.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BusyPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUSY_POLICY_UNSPECIFIED: _ClassVar[BusyPolicy]
    BUSY_POLICY_ENQUEUE: _ClassVar[BusyPolicy]
    BUSY_POLICY_STEER: _ClassVar[BusyPolicy]
    BUSY_POLICY_INTERRUPT: _ClassVar[BusyPolicy]
    BUSY_POLICY_REJECT: _ClassVar[BusyPolicy]
BUSY_POLICY_UNSPECIFIED: BusyPolicy
BUSY_POLICY_ENQUEUE: BusyPolicy
BUSY_POLICY_STEER: BusyPolicy
BUSY_POLICY_INTERRUPT: BusyPolicy
BUSY_POLICY_REJECT: BusyPolicy

class SendMessageRequest(_message.Message):
    __slots__ = ("session", "parts", "on_busy", "model")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ON_BUSY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    session: str
    parts: _containers.RepeatedCompositeFieldContainer[_message_pb2.Part]
    on_busy: BusyPolicy
    model: str
    def __init__(self, session: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[_message_pb2.Part, _Mapping]]] = ..., on_busy: _Optional[_Union[BusyPolicy, str]] = ..., model: _Optional[str] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("message", "turn")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    turn: _message_pb2.Turn
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., turn: _Optional[_Union[_message_pb2.Turn, _Mapping]] = ...) -> None: ...

class SendMessageAndWaitRequest(_message.Message):
    __slots__ = ("session", "parts", "on_busy", "model", "timeout")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ON_BUSY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    session: str
    parts: _containers.RepeatedCompositeFieldContainer[_message_pb2.Part]
    on_busy: BusyPolicy
    model: str
    timeout: _duration_pb2.Duration
    def __init__(self, session: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[_message_pb2.Part, _Mapping]]] = ..., on_busy: _Optional[_Union[BusyPolicy, str]] = ..., model: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SendMessageAndWaitResponse(_message.Message):
    __slots__ = ("message", "turn", "replies")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.Message
    turn: _message_pb2.Turn
    replies: _containers.RepeatedCompositeFieldContainer[_message_pb2.Message]
    def __init__(self, message: _Optional[_Union[_message_pb2.Message, _Mapping]] = ..., turn: _Optional[_Union[_message_pb2.Turn, _Mapping]] = ..., replies: _Optional[_Iterable[_Union[_message_pb2.Message, _Mapping]]] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("session", "parts", "on_busy", "model")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ON_BUSY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    session: str
    parts: _containers.RepeatedCompositeFieldContainer[_message_pb2.Part]
    on_busy: BusyPolicy
    model: str
    def __init__(self, session: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[_message_pb2.Part, _Mapping]]] = ..., on_busy: _Optional[_Union[BusyPolicy, str]] = ..., model: _Optional[str] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("session", "after_sequence")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    session: str
    after_sequence: int
    def __init__(self, session: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "before", "after")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    before: str
    after: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., before: _Optional[str] = ..., after: _Optional[str] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_message_pb2.Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[_message_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMessageRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetTurnRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTurnsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTurnsResponse(_message.Message):
    __slots__ = ("turns", "next_page_token")
    TURNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    turns: _containers.RepeatedCompositeFieldContainer[_message_pb2.Turn]
    next_page_token: str
    def __init__(self, turns: _Optional[_Iterable[_Union[_message_pb2.Turn, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTurnRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClearQueueRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class ClearQueueResponse(_message.Message):
    __slots__ = ("cancelled_turns",)
    CANCELLED_TURNS_FIELD_NUMBER: _ClassVar[int]
    cancelled_turns: _containers.RepeatedCompositeFieldContainer[_message_pb2.Turn]
    def __init__(self, cancelled_turns: _Optional[_Iterable[_Union[_message_pb2.Turn, _Mapping]]] = ...) -> None: ...

class CompactSessionRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class CompactSessionResponse(_message.Message):
    __slots__ = ("compacted", "summary")
    COMPACTED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    compacted: bool
    summary: _event_pb2.ContextCompacted
    def __init__(self, compacted: _Optional[bool] = ..., summary: _Optional[_Union[_event_pb2.ContextCompacted, _Mapping]] = ...) -> None: ...

class RespondToConfirmationRequest(_message.Message):
    __slots__ = ("name", "decision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    decision: _message_pb2.ConfirmationDecision
    def __init__(self, name: _Optional[str] = ..., decision: _Optional[_Union[_message_pb2.ConfirmationDecision, str]] = ...) -> None: ...

class RespondToConfirmationResponse(_message.Message):
    __slots__ = ("confirmation",)
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    confirmation: _message_pb2.Confirmation
    def __init__(self, confirmation: _Optional[_Union[_message_pb2.Confirmation, _Mapping]] = ...) -> None: ...

class RespondToInputRequest(_message.Message):
    __slots__ = ("name", "answer")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    name: str
    answer: str
    def __init__(self, name: _Optional[str] = ..., answer: _Optional[str] = ...) -> None: ...

class RespondToInputResponse(_message.Message):
    __slots__ = ("input_request",)
    INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    input_request: _message_pb2.InputRequest
    def __init__(self, input_request: _Optional[_Union[_message_pb2.InputRequest, _Mapping]] = ...) -> None: ...
