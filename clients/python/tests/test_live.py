"""The Python client against a live `octo serve --demo`."""

import asyncio

import grpc
import pytest

from octo.v1 import event_pb2, message_pb2
from octo_client import (
    AsyncClient,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OctoError,
    UnauthenticatedError,
    is_terminal,
    text_of,
)

from conftest import TOKEN

MISSING = "sessions/019a0000-0000-7000-8000-000000000000"


def test_chat_streams_to_the_terminal_event(octo):
    session = octo.create_session("python chat")
    assert session.name.startswith("sessions/")

    events = list(octo.chat(session, "hello from python"))

    assert is_terminal(events[-1])
    assert events[-1].WhichOneof("kind") == "turn_finished"
    assert events[-1].turn_finished.turn.status == message_pb2.TURN_STATUS_SUCCEEDED
    # The mock echoes the prompt, one word per delta.
    assert text_of(events) == "Echo: hello from python"
    assert len([e for e in events if e.HasField("text_delta")]) == 4
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)


def test_lists_messages_newest_first(octo):
    session = octo.create_session("python history")
    list(octo.chat(session, "first"))
    list(octo.chat(session, "second"))

    messages = octo.list_messages(session)

    texts = ["".join(p.text for p in m.parts) for m in messages]
    roles = [m.role for m in messages]
    assert texts == ["Echo: second", "second", "Echo: first", "first"]
    assert roles == [message_pb2.ROLE_ASSISTANT, message_pb2.ROLE_USER] * 2


def test_resumes_a_stream_from_a_sequence(octo):
    session = octo.create_session("python resume")
    events = list(octo.chat(session, "resume me please"))
    deltas = [e for e in events if e.HasField("text_delta")]
    after = deltas[0].sequence

    resumed = []
    for event in octo.stream_events(session, after_sequence=after, timeout=60):
        resumed.append(event)
        if is_terminal(event):
            break

    assert resumed[0].HasField("snapshot")
    assert all(e.sequence > after for e in resumed[1:])
    assert text_of(resumed) == text_of(events)[len(deltas[0].text_delta.text):]
    assert resumed[-1].turn == events[-1].turn


def test_the_trash_keeps_a_deleted_session_until_it_is_purged(octo):
    session = octo.create_session("python trash")
    trashed = octo.delete_session(session)
    assert trashed.HasField("delete_time") and trashed.HasField("expire_time")
    with pytest.raises(FailedPreconditionError) as caught:
        list(octo.chat(session, "still there?"))
    assert caught.value.reason == "SESSION_DELETED"
    restored = octo.undelete_session(session)
    assert not restored.HasField("delete_time")
    octo.delete_session(session)
    octo.purge_session(session)
    with pytest.raises(NotFoundError):
        octo.get_session(session)


def test_not_found_carries_resource_info(octo):
    with pytest.raises(NotFoundError) as caught:
        octo.get_session(MISSING)
    err = caught.value
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert err.reason == "SESSION_NOT_FOUND"
    assert err.domain == "octo.v1"
    assert err.resource_info.resource_name == MISSING
    assert err.resource_info.resource_type == "octo.v1.Session"


def test_invalid_argument_carries_field_violations(octo):
    with pytest.raises(InvalidArgumentError) as caught:
        octo.create_session("bad", working_dir="../outside")
    err = caught.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "INVALID_ARGUMENT"
    assert [v.field for v in err.field_violations] == ["session.working_dir"]
    assert "'..'" in err.field_violations[0].description


def test_stream_errors_raise_while_iterating(octo):
    with pytest.raises(NotFoundError) as caught:
        list(octo.chat(MISSING, "anyone there?"))
    assert caught.value.resource_info.resource_name == MISSING


def test_a_missing_token_is_unauthenticated(server):
    with Client(server.address) as anonymous:
        with pytest.raises(UnauthenticatedError) as caught:
            anonymous.list_sessions()
    assert isinstance(caught.value, OctoError)


def test_async_client(server):
    async def run():
        async with AsyncClient(server.address, token=TOKEN) as octo:
            session = await octo.create_session("python async")
            events = [e async for e in octo.chat(session, "hello async")]
            assert text_of(events) == "Echo: hello async"
            assert events[-1].HasField("turn_finished")

            after = next(e.sequence for e in events if e.HasField("text_delta"))
            resumed = []
            async for event in octo.stream_events(session, after_sequence=after, timeout=60):
                resumed.append(event)
                if is_terminal(event):
                    break
            assert text_of(resumed) == "hello async"

            messages = await octo.list_messages(session)
            assert [m.role for m in messages] == [
                message_pb2.ROLE_ASSISTANT,
                message_pb2.ROLE_USER,
            ]
            with pytest.raises(NotFoundError) as caught:
                await octo.get_session(MISSING)
            assert caught.value.reason == "SESSION_NOT_FOUND"
            with pytest.raises(InvalidArgumentError) as caught:
                _ = [e async for e in octo.chat(session, "")]
            assert caught.value.field_violations

    asyncio.run(run())


def test_generated_types_are_exposed():
    event = event_pb2.SessionEvent(sequence=3)
    event.text_delta.text = "x"
    assert text_of([event]) == "x"
