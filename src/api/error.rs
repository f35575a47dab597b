//! The one mapping from domain errors to gRPC statuses (AIP-193): each variant has one
//! code, an ErrorInfo with a stable reason, and the detail that helps the caller
//! (BadRequest field violations, ResourceInfo, RetryInfo). The JSON gateway derives the
//! HTTP status from the code, so both surfaces agree.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::domain::Error;

/// The ErrorInfo domain of every Octo error.
pub const ERROR_DOMAIN: &str = "octo.v1";

pub fn to_status(err: Error) -> Status {
    if let Error::Relayed(relayed) = err {
        // The owner built this status already; pass it on unchanged.
        return Status::with_details(
            Code::from_i32(relayed.code),
            relayed.message,
            relayed.details,
        );
    }
    let reason = err.reason();
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    let (code, message) = match err {
        Error::InvalidArgument(violations) => {
            let message = err_message(&violations);
            details.set_bad_request(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect::<Vec<_>>(),
            );
            (Code::InvalidArgument, message)
        }
        ref e @ Error::NotFound { resource, ref name } => {
            details.set_resource_info(resource.type_name(), name.clone(), "", "not found");
            (Code::NotFound, e.to_string())
        }
        ref e @ Error::AlreadyExists { resource, ref name } => {
            details.set_resource_info(resource.type_name(), name.clone(), "", "already exists");
            (Code::AlreadyExists, e.to_string())
        }
        ref e @ Error::EtagMismatch { resource, ref name } => {
            details.set_resource_info(resource.type_name(), name.clone(), "", "etag mismatch");
            (Code::Aborted, e.to_string())
        }
        Error::FailedPrecondition { message, .. } => (Code::FailedPrecondition, message),
        Error::ResourceExhausted {
            message,
            retry_after,
            ..
        } => {
            if retry_after.is_some() {
                details.set_retry_info(retry_after);
            }
            (Code::ResourceExhausted, message)
        }
        Error::Unavailable {
            message,
            retry_after,
            ..
        } => {
            if retry_after.is_some() {
                details.set_retry_info(retry_after);
            }
            (Code::Unavailable, message)
        }
        Error::Unauthenticated(message) => (Code::Unauthenticated, message),
        Error::PermissionDenied { message, .. } => (Code::PermissionDenied, message),
        Error::Unimplemented(message) => (Code::Unimplemented, message),
        Error::DeadlineExceeded { message, .. } => (Code::DeadlineExceeded, message),
        Error::Relayed(_) => unreachable!("answered above"),
        Error::Internal(message) => {
            // The cause stays in the log; clients get no internals. Throttled: a broken
            // disk fails every request, and must not fill the log (or itself) with it.
            if let Some(suppressed) = INTERNAL_ERRORS.allow() {
                tracing::error!(error = %message, suppressed_since_last = suppressed, "internal error");
            }
            (
                Code::Internal,
                "internal error; the server log has the cause".to_owned(),
            )
        }
    };
    Status::with_error_details(code, message, details)
}

/// One internal-error line per second at most.
static INTERNAL_ERRORS: crate::logging::Throttle =
    crate::logging::Throttle::new(std::time::Duration::from_secs(1));

fn err_message(violations: &[crate::domain::FieldViolation]) -> String {
    let fields: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    format!("invalid argument: {}", fields.join("; "))
}

/// The domain error a peer's status stands for: the moves the runtime acts on (the
/// session changed owner) by reason, anything else passed through unchanged.
pub fn from_peer_status(status: &Status) -> Error {
    let reason = status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default();
    match (status.code(), reason.as_str()) {
        (Code::Unavailable, crate::domain::reason::NOT_OWNER) => Error::Unavailable {
            reason: crate::domain::reason::NOT_OWNER,
            message: status.message().to_owned(),
            retry_after: None,
        },
        (Code::Unavailable, crate::domain::reason::LEASE_LOST) => Error::Unavailable {
            reason: crate::domain::reason::LEASE_LOST,
            message: status.message().to_owned(),
            retry_after: None,
        },
        _ => Error::Relayed(Box::new(crate::domain::error::RelayedError {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: status.details().to_vec().into(),
            reason,
        })),
    }
}

/// The canonical name of a gRPC status code, e.g. `NOT_FOUND`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        to_status(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Resource;

    #[test]
    fn not_found_carries_reason_and_resource() {
        let status = to_status(Error::not_found(Resource::Session, "sessions/x"));
        assert_eq!(status.code(), Code::NotFound);
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("SESSION_NOT_FOUND")
        );
        assert_eq!(
            details.resource_info().map(|r| r.resource_name.as_str()),
            Some("sessions/x")
        );
    }

    #[test]
    fn invalid_argument_names_every_field() {
        let status = to_status(Error::InvalidArgument(vec![
            crate::domain::FieldViolation::new("session.display_name", "too long"),
            crate::domain::FieldViolation::new("session.labels", "too many"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = status
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["session.display_name", "session.labels"]);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = to_status(Error::Internal("disk on fire at /secret/path".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/secret/path"));
    }
}
