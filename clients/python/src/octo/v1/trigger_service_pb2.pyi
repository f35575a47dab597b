import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignatureScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_SCHEME_UNSPECIFIED: _ClassVar[SignatureScheme]
    SIGNATURE_SCHEME_STANDARD_WEBHOOKS: _ClassVar[SignatureScheme]
    SIGNATURE_SCHEME_GITHUB: _ClassVar[SignatureScheme]

class TriggerDeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_DELIVERY_STATUS_UNSPECIFIED: _ClassVar[TriggerDeliveryStatus]
    TRIGGER_DELIVERY_STATUS_RECEIVED: _ClassVar[TriggerDeliveryStatus]
    TRIGGER_DELIVERY_STATUS_STARTED: _ClassVar[TriggerDeliveryStatus]
    TRIGGER_DELIVERY_STATUS_FAILED: _ClassVar[TriggerDeliveryStatus]
SIGNATURE_SCHEME_UNSPECIFIED: SignatureScheme
SIGNATURE_SCHEME_STANDARD_WEBHOOKS: SignatureScheme
SIGNATURE_SCHEME_GITHUB: SignatureScheme
TRIGGER_DELIVERY_STATUS_UNSPECIFIED: TriggerDeliveryStatus
TRIGGER_DELIVERY_STATUS_RECEIVED: TriggerDeliveryStatus
TRIGGER_DELIVERY_STATUS_STARTED: TriggerDeliveryStatus
TRIGGER_DELIVERY_STATUS_FAILED: TriggerDeliveryStatus

class Trigger(_message.Message):
    __slots__ = ("name", "display_name", "disabled", "signature_scheme", "secret", "profile", "session", "prompt_template", "url_path", "create_time", "update_time", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SCHEME_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    URL_PATH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    disabled: bool
    signature_scheme: SignatureScheme
    secret: str
    profile: str
    session: str
    prompt_template: str
    url_path: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., disabled: _Optional[bool] = ..., signature_scheme: _Optional[_Union[SignatureScheme, str]] = ..., secret: _Optional[str] = ..., profile: _Optional[str] = ..., session: _Optional[str] = ..., prompt_template: _Optional[str] = ..., url_path: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class TriggerDelivery(_message.Message):
    __slots__ = ("name", "message_id", "event", "status", "session", "turn", "error", "receive_time", "payload_bytes", "attempts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    message_id: str
    event: str
    status: TriggerDeliveryStatus
    session: str
    turn: str
    error: str
    receive_time: _timestamp_pb2.Timestamp
    payload_bytes: int
    attempts: int
    def __init__(self, name: _Optional[str] = ..., message_id: _Optional[str] = ..., event: _Optional[str] = ..., status: _Optional[_Union[TriggerDeliveryStatus, str]] = ..., session: _Optional[str] = ..., turn: _Optional[str] = ..., error: _Optional[str] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload_bytes: _Optional[int] = ..., attempts: _Optional[int] = ...) -> None: ...

class ListTriggersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTriggersResponse(_message.Message):
    __slots__ = ("triggers", "next_page_token")
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    next_page_token: str
    def __init__(self, triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTriggerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateTriggerRequest(_message.Message):
    __slots__ = ("trigger", "trigger_id")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    trigger: Trigger
    trigger_id: str
    def __init__(self, trigger: _Optional[_Union[Trigger, _Mapping]] = ..., trigger_id: _Optional[str] = ...) -> None: ...

class UpdateTriggerRequest(_message.Message):
    __slots__ = ("trigger", "update_mask")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    trigger: Trigger
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, trigger: _Optional[_Union[Trigger, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteTriggerRequest(_message.Message):
    __slots__ = ("name", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ListTriggerDeliveriesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTriggerDeliveriesResponse(_message.Message):
    __slots__ = ("trigger_deliveries", "next_page_token")
    TRIGGER_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    trigger_deliveries: _containers.RepeatedCompositeFieldContainer[TriggerDelivery]
    next_page_token: str
    def __init__(self, trigger_deliveries: _Optional[_Iterable[_Union[TriggerDelivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
