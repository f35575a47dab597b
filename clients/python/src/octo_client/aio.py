"""The asyncio client (grpcio's ``grpc.aio`` API)::

    async with AsyncClient("127.0.0.1:50051") as octo:
        session = await octo.create_session("hello")
        async for event in octo.chat(session, "hi"):
            ...
"""

from __future__ import annotations

from typing import AsyncIterator, List, Optional, Union

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
from .client import Content, SessionRef
from .errors import from_rpc_error


class AsyncClient:
    """Like :class:`octo_client.Client`, on ``grpc.aio``: await unary calls, ``async for``
    streams. Create it inside a running event loop."""

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
            grpc.aio.secure_channel(target, creds, options=opts)
            if creds
            else grpc.aio.insecure_channel(target, options=opts)
        )
        self.metadata = _common.auth_metadata(token)
        self.timeout = timeout
        self.sessions = session_service_pb2_grpc.SessionServiceStub(self.channel)
        self.chat_service = chat_service_pb2_grpc.ChatServiceStub(self.channel)
        self.models = model_pb2_grpc.ModelServiceStub(self.channel)
        self.schedules = schedule_pb2_grpc.ScheduleServiceStub(self.channel)
        self.webhooks = webhook_service_pb2_grpc.WebhookServiceStub(self.channel)
        self.files = file_service_pb2_grpc.FileServiceStub(self.channel)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def _unary(self, method, request):
        try:
            return await method(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def _stream(self, call) -> AsyncIterator[event_pb2.SessionEvent]:
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        finally:
            call.cancel()

    async def create_session(self, display_name: str = "", **fields) -> session_pb2.Session:
        return await self._unary(
            self.sessions.CreateSession, _common.create_request(display_name, **fields)
        )

    async def get_session(self, session: SessionRef) -> session_pb2.Session:
        return await self._unary(
            self.sessions.GetSession,
            session_service_pb2.GetSessionRequest(name=_common.session_name(session)),
        )

    async def list_sessions(self, page_size: int = 50, **filters) -> List[session_pb2.Session]:
        response = await self._unary(
            self.sessions.ListSessions,
            session_service_pb2.ListSessionsRequest(page_size=page_size, **filters),
        )
        return list(response.sessions)

    async def delete_session(self, session: SessionRef) -> session_pb2.Session:
        """Moves the session to the trash; returns it with ``delete_time`` and ``expire_time``."""
        return await self._unary(
            self.sessions.DeleteSession,
            session_service_pb2.DeleteSessionRequest(name=_common.session_name(session)),
        )

    async def undelete_session(self, session: SessionRef) -> session_pb2.Session:
        """Restores a session from the trash."""
        return await self._unary(
            self.sessions.UndeleteSession,
            session_service_pb2.UndeleteSessionRequest(name=_common.session_name(session)),
        )

    async def purge_session(self, session: SessionRef) -> None:
        """Deletes a session in the trash for good."""
        await self._unary(
            self.sessions.PurgeSession,
            session_service_pb2.PurgeSessionRequest(name=_common.session_name(session)),
        )

    def chat(
        self,
        session: SessionRef,
        content: Content,
        *,
        on_busy: int = chat_service_pb2.BUSY_POLICY_UNSPECIFIED,
        model: str = "",
        timeout: Optional[float] = None,
    ) -> AsyncIterator[event_pb2.SessionEvent]:
        """Sends a message and yields the turn's events up to its terminal ``turn_finished``."""
        call = self.chat_service.Chat(
            _common.chat_request(session, content, on_busy, model),
            metadata=self.metadata,
            timeout=timeout,
        )
        return self._stream(call)

    def stream_events(
        self, session: SessionRef, after_sequence: int = 0, *, timeout: Optional[float] = None
    ) -> AsyncIterator[event_pb2.SessionEvent]:
        """A snapshot, every event after ``after_sequence``, then live events (endless)."""
        call = self.chat_service.StreamEvents(
            chat_service_pb2.StreamEventsRequest(
                session=_common.session_name(session), after_sequence=after_sequence
            ),
            metadata=self.metadata,
            timeout=timeout,
        )
        return self._stream(call)

    async def list_messages(
        self, session: SessionRef, page_size: int = 50
    ) -> List[message_pb2.Message]:
        response = await self._unary(
            self.chat_service.ListMessages,
            chat_service_pb2.ListMessagesRequest(
                parent=_common.session_name(session), page_size=page_size
            ),
        )
        return list(response.messages)

    async def cancel_turn(self, turn: str) -> message_pb2.Turn:
        return await self._unary(
            self.chat_service.CancelTurn, chat_service_pb2.CancelTurnRequest(name=turn)
        )


__all__ = ["AsyncClient"]
