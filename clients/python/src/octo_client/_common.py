"""What the sync and asyncio clients share: channel credentials, request building."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple, Union

import grpc

from octo.v1 import chat_service_pb2, event_pb2, message_pb2, session_pb2, session_service_pb2

Metadata = Sequence[Tuple[str, str]]

#: The grpcio channel options every Octo client uses: Octo allows 16 MiB messages by default.
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
)


def auth_metadata(token: Optional[str]) -> Metadata:
    return (("authorization", f"Bearer {token}"),) if token else ()


def credentials(
    tls: Union[bool, grpc.ChannelCredentials],
) -> Optional[grpc.ChannelCredentials]:
    """None for plaintext (h2c), else TLS credentials (default roots when ``tls`` is True)."""
    if tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    return tls


def session_name(session: Union[str, session_pb2.Session]) -> str:
    """Accepts a Session, ``sessions/{id}`` or a bare id."""
    if isinstance(session, session_pb2.Session):
        return session.name
    return session if session.startswith("sessions/") else f"sessions/{session}"


def parts(content: Union[str, message_pb2.Part, Iterable[message_pb2.Part]]) -> list:
    if isinstance(content, str):
        return [message_pb2.Part(text=content)]
    if isinstance(content, message_pb2.Part):
        return [content]
    return list(content)


def chat_request(
    session: Union[str, session_pb2.Session],
    content: Union[str, message_pb2.Part, Iterable[message_pb2.Part]],
    on_busy: int = chat_service_pb2.BUSY_POLICY_UNSPECIFIED,
    model: str = "",
) -> chat_service_pb2.ChatRequest:
    return chat_service_pb2.ChatRequest(
        session=session_name(session), parts=parts(content), on_busy=on_busy, model=model
    )


def create_request(display_name: str = "", **fields) -> session_service_pb2.CreateSessionRequest:
    return session_service_pb2.CreateSessionRequest(
        session=session_pb2.Session(display_name=display_name, **fields)
    )


def is_terminal(event: event_pb2.SessionEvent) -> bool:
    """Whether ``event`` ends a turn (``turn_finished``) or the session (``session_deleted``)."""
    return event.WhichOneof("kind") in ("turn_finished", "session_deleted")


def text_of(events: Iterable[event_pb2.SessionEvent]) -> str:
    """The concatenated ``text_delta`` texts of some events."""
    return "".join(e.text_delta.text for e in events if e.WhichOneof("kind") == "text_delta")
