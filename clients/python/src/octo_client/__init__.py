"""Typed Python client for Octo.

    from octo_client import Client, NotFoundError

    with Client("127.0.0.1:50051", token=None) as octo:
        session = octo.create_session("hello")
        for event in octo.chat(session, "hi"):
            if event.HasField("text_delta"):
                print(event.text_delta.text, end="", flush=True)

The generated messages and stubs are in ``octo.v1`` (``*_pb2``, ``*_pb2_grpc``, with
``.pyi`` stubs); :mod:`octo_client.aio` has the asyncio client.
"""

from ._common import is_terminal, text_of
from .aio import AsyncClient
from .client import Client
from .errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OctoError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    decode_details,
)

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AsyncClient",
    "CancelledError",
    "Client",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "OctoError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "decode_details",
    "is_terminal",
    "text_of",
]
