"""The synchronous client (grpcio's blocking API)."""

from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Union

import grpc

from octo.v1 import (
    chat_service_pb2,
    chat_service_pb2_grpc,
    event_pb2,
    file_service_pb2_grpc,
    message_pb2,
    model_pb2_grpc,
    schedule_pb2_grpc,
    session_pb2,
    session_service_pb2,
    session_service_pb2_grpc,
    webhook_service_pb2_grpc,
)

from . import _common
from .errors import OctoError, from_rpc_error

SessionRef = Union[str, session_pb2.Session]
Content = Union[str, message_pb2.Part, Iterable[message_pb2.Part]]


class Client:
    """An Octo client over one gRPC channel.

    ``target`` is ``host:port``. ``token`` is sent as ``authorization: Bearer <token>`` on
    every call (plaintext is fine on loopback; use ``tls=True`` elsewhere). The raw
    generated stubs are ``sessions``, ``chat_service``, ``models``, ``schedules``,
    ``webhooks`` and ``files``; the methods below wrap the common calls and raise
    :class:`OctoError` subclasses.
    """

    def __init__(
        self,
        target: str,
        token: Optional[str] = None,
        *,
        tls: Union[bool, grpc.ChannelCredentials] = False,
        timeout: Optional[float] = 30.0,
        options: tuple = (),
    ) -> None:
        creds = _common.credentials(tls)
        opts = _common.CHANNEL_OPTIONS + tuple(options)
        self.channel = (
            grpc.secure_channel(target, creds, options=opts)
            if creds
            else grpc.insecure_channel(target, options=opts)
        )
        self.metadata = _common.auth_metadata(token)
        self.timeout = timeout
        self.sessions = session_service_pb2_grpc.SessionServiceStub(self.channel)
        self.chat_service = chat_service_pb2_grpc.ChatServiceStub(self.channel)
        self.models = model_pb2_grpc.ModelServiceStub(self.channel)
        self.schedules = schedule_pb2_grpc.ScheduleServiceStub(self.channel)
        self.webhooks = webhook_service_pb2_grpc.WebhookServiceStub(self.channel)
        self.files = file_service_pb2_grpc.FileServiceStub(self.channel)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _unary(self, method, request):
        try:
            return method(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def _stream(self, call) -> Iterator[event_pb2.SessionEvent]:
        try:
            for event in call:
                yield event
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED and call.cancelled():  # type: ignore[attr-defined]
                return
            raise from_rpc_error(err) from None
        finally:
            call.cancel()

    # ---- sessions

    def create_session(self, display_name: str = "", **fields) -> session_pb2.Session:
        """Creates a session; ``fields`` are other Session fields (working_dir, model, ...)."""
        return self._unary(
            self.sessions.CreateSession, _common.create_request(display_name, **fields)
        )

    def get_session(self, session: SessionRef) -> session_pb2.Session:
        return self._unary(
            self.sessions.GetSession,
            session_service_pb2.GetSessionRequest(name=_common.session_name(session)),
        )

    def list_sessions(self, page_size: int = 50, **filters) -> List[session_pb2.Session]:
        """One page of sessions (pinned first, then most recently active)."""
        return list(
            self._unary(
                self.sessions.ListSessions,
                session_service_pb2.ListSessionsRequest(page_size=page_size, **filters),
            ).sessions
        )

    def delete_session(self, session: SessionRef) -> session_pb2.Session:
        """Moves the session to the trash; returns it with ``delete_time`` and ``expire_time``."""
        return self._unary(
            self.sessions.DeleteSession,
            session_service_pb2.DeleteSessionRequest(name=_common.session_name(session)),
        )

    def undelete_session(self, session: SessionRef) -> session_pb2.Session:
        """Restores a session from the trash."""
        return self._unary(
            self.sessions.UndeleteSession,
            session_service_pb2.UndeleteSessionRequest(name=_common.session_name(session)),
        )

    def purge_session(self, session: SessionRef) -> None:
        """Deletes a session in the trash for good."""
        self._unary(
            self.sessions.PurgeSession,
            session_service_pb2.PurgeSessionRequest(name=_common.session_name(session)),
        )

    # ---- chat

    def chat(
        self,
        session: SessionRef,
        content: Content,
        *,
        on_busy: int = chat_service_pb2.BUSY_POLICY_UNSPECIFIED,
        model: str = "",
        timeout: Optional[float] = None,
    ) -> Iterator[event_pb2.SessionEvent]:
        """Sends a message and yields the turn's events up to its terminal ``turn_finished``.

        Closing the generator early (``break``) cancels the stream (not the turn: use
        :meth:`cancel_turn` for that).
        """
        call = self.chat_service.Chat(
            _common.chat_request(session, content, on_busy, model),
            metadata=self.metadata,
            timeout=timeout,
        )
        return self._stream(call)

    def stream_events(
        self, session: SessionRef, after_sequence: int = 0, *, timeout: Optional[float] = None
    ) -> Iterator[event_pb2.SessionEvent]:
        """Yields a snapshot, then every event after ``after_sequence``, then live events.

        The stream does not end by itself: stop iterating (``break``) when done.
        """
        call = self.chat_service.StreamEvents(
            chat_service_pb2.StreamEventsRequest(
                session=_common.session_name(session), after_sequence=after_sequence
            ),
            metadata=self.metadata,
            timeout=timeout,
        )
        return self._stream(call)

    def send_message(
        self,
        session: SessionRef,
        content: Content,
        *,
        on_busy: int = chat_service_pb2.BUSY_POLICY_UNSPECIFIED,
        model: str = "",
    ) -> chat_service_pb2.SendMessageResponse:
        """Stores a message and starts or queues its turn, without streaming."""
        request = chat_service_pb2.SendMessageRequest(
            session=_common.session_name(session),
            parts=_common.parts(content),
            on_busy=on_busy,
            model=model,
        )
        return self._unary(self.chat_service.SendMessage, request)

    def list_messages(self, session: SessionRef, page_size: int = 50) -> List[message_pb2.Message]:
        """One page of a session's messages, newest first."""
        return list(
            self._unary(
                self.chat_service.ListMessages,
                chat_service_pb2.ListMessagesRequest(
                    parent=_common.session_name(session), page_size=page_size
                ),
            ).messages
        )

    def cancel_turn(self, turn: str) -> message_pb2.Turn:
        return self._unary(
            self.chat_service.CancelTurn, chat_service_pb2.CancelTurnRequest(name=turn)
        )


__all__ = ["Client", "OctoError"]
