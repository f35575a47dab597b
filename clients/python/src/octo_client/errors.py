"""Octo errors as exceptions carrying the google.rpc details of the status."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import grpc
from google.protobuf import any_pb2, message
from google.rpc import error_details_pb2, status_pb2

_DETAIL_TYPES = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.QuotaFailure,
    error_details_pb2.DebugInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


class OctoError(Exception):
    """A failed Octo call: the gRPC status code and message, and its typed details.

    ``details`` holds the decoded google.rpc detail messages (ErrorInfo, BadRequest,
    ResourceInfo, RetryInfo, ...); the properties pick the common ones out.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: Sequence[message.Message] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details = list(details)

    def detail(self, kind: type) -> Optional[message.Message]:
        """The first detail of type ``kind`` (e.g. ``error_details_pb2.BadRequest``)."""
        return next((d for d in self.details if isinstance(d, kind)), None)

    @property
    def error_info(self) -> Optional[error_details_pb2.ErrorInfo]:
        return self.detail(error_details_pb2.ErrorInfo)  # type: ignore[return-value]

    @property
    def reason(self) -> str:
        """ErrorInfo.reason, e.g. ``SESSION_NOT_FOUND``; empty without an ErrorInfo."""
        info = self.error_info
        return info.reason if info else ""

    @property
    def domain(self) -> str:
        info = self.error_info
        return info.domain if info else ""

    @property
    def field_violations(self) -> Sequence[error_details_pb2.BadRequest.FieldViolation]:
        bad = self.detail(error_details_pb2.BadRequest)
        return list(bad.field_violations) if bad else []  # type: ignore[attr-defined]

    @property
    def resource_info(self) -> Optional[error_details_pb2.ResourceInfo]:
        return self.detail(error_details_pb2.ResourceInfo)  # type: ignore[return-value]

    @property
    def retry_info(self) -> Optional[error_details_pb2.RetryInfo]:
        return self.detail(error_details_pb2.RetryInfo)  # type: ignore[return-value]


class InvalidArgumentError(OctoError):
    """INVALID_ARGUMENT: see ``field_violations``."""


class NotFoundError(OctoError):
    """NOT_FOUND: see ``resource_info``."""


class AlreadyExistsError(OctoError):
    """ALREADY_EXISTS."""


class FailedPreconditionError(OctoError):
    """FAILED_PRECONDITION (e.g. SESSION_BUSY)."""


class AbortedError(OctoError):
    """ABORTED (e.g. an etag mismatch)."""


class ResourceExhaustedError(OctoError):
    """RESOURCE_EXHAUSTED (e.g. QUEUE_FULL); see ``retry_info``."""


class UnauthenticatedError(OctoError):
    """UNAUTHENTICATED: a missing or wrong token."""


class PermissionDeniedError(OctoError):
    """PERMISSION_DENIED."""


class UnavailableError(OctoError):
    """UNAVAILABLE: the server cannot be reached or is shutting down; retry later."""


class UnimplementedError(OctoError):
    """UNIMPLEMENTED."""


class CancelledError(OctoError):
    """CANCELLED: the call was cancelled."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def decode_details(status_details_bin: bytes) -> list:
    """Decodes a ``grpc-status-details-bin`` value into google.rpc detail messages.

    Details of a type this module does not know stay ``google.protobuf.Any``.
    """
    status = status_pb2.Status.FromString(status_details_bin)
    out: list = []
    for detail in status.details:
        out.append(_unpack(detail))
    return out


def _unpack(detail: any_pb2.Any) -> message.Message:
    for kind in _DETAIL_TYPES:
        if detail.Is(kind.DESCRIPTOR):
            value = kind()
            detail.Unpack(value)
            return value
    return detail


def _error(
    code: grpc.StatusCode, message: str, trailers: Optional[Sequence[Tuple[str, object]]]
) -> OctoError:
    details: list = []
    for key, value in trailers or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            details = decode_details(value)
    return _BY_CODE.get(code, OctoError)(code, message, details)


def from_rpc_error(err: grpc.RpcError) -> OctoError:
    """The OctoError of a failed grpcio call (``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    message = err.details() if hasattr(err, "details") else str(err)  # type: ignore[attr-defined]
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None  # type: ignore[attr-defined]
    exc = _error(code, message or "", trailers)
    exc.__cause__ = err
    return exc

