//! The one error type of the domain. The API layer maps each variant to exactly one gRPC
//! code (and through it one HTTP status); `reason()` is the stable machine-readable
//! reason clients switch on.

use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds of resource Octo names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Session,
    Message,
    Turn,
    Confirmation,
    InputRequest,
    Model,
    McpServer,
    Profile,
    Trigger,
    TriggerDelivery,
    Schedule,
    ScheduleRun,
    WebhookDelivery,
    /// A file or directory in a session's working dir.
    File,
}

impl Resource {
    /// Every kind, for the reason registry's test.
    pub const ALL: [Resource; 14] = [
        Resource::Session,
        Resource::Message,
        Resource::Turn,
        Resource::Confirmation,
        Resource::InputRequest,
        Resource::Model,
        Resource::McpServer,
        Resource::Profile,
        Resource::Trigger,
        Resource::TriggerDelivery,
        Resource::Schedule,
        Resource::ScheduleRun,
        Resource::WebhookDelivery,
        Resource::File,
    ];

    /// The proto type name, for ResourceInfo.
    pub fn type_name(self) -> &'static str {
        match self {
            Resource::Session => "octo.v1.Session",
            Resource::Message => "octo.v1.Message",
            Resource::Turn => "octo.v1.Turn",
            Resource::Confirmation => "octo.v1.Confirmation",
            Resource::InputRequest => "octo.v1.InputRequest",
            Resource::Model => "octo.v1.Model",
            Resource::McpServer => "octo.v1.McpServer",
            Resource::Profile => "octo.v1.Profile",
            Resource::Trigger => "octo.v1.Trigger",
            Resource::TriggerDelivery => "octo.v1.TriggerDelivery",
            Resource::Schedule => "octo.v1.Schedule",
            Resource::ScheduleRun => "octo.v1.ScheduleRun",
            Resource::WebhookDelivery => "octo.v1.WebhookDelivery",
            Resource::File => "octo.v1.FileEntry",
        }
    }

    fn upper(self) -> &'static str {
        match self {
            Resource::Session => "SESSION",
            Resource::Message => "MESSAGE",
            Resource::Turn => "TURN",
            Resource::Confirmation => "CONFIRMATION",
            Resource::InputRequest => "INPUT_REQUEST",
            Resource::Model => "MODEL",
            Resource::McpServer => "MCP_SERVER",
            Resource::Profile => "PROFILE",
            Resource::Trigger => "TRIGGER",
            Resource::TriggerDelivery => "TRIGGER_DELIVERY",
            Resource::Schedule => "SCHEDULE",
            Resource::ScheduleRun => "SCHEDULE_RUN",
            Resource::WebhookDelivery => "WEBHOOK_DELIVERY",
            Resource::File => "FILE",
        }
    }
}

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `session.display_name`.
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{} {name} not found", resource_label(*.resource))]
    NotFound { resource: Resource, name: String },
    #[error("{} {name} already exists", resource_label(*.resource))]
    AlreadyExists { resource: Resource, name: String },
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    /// An etag did not match: the resource changed since the client read it.
    #[error("{} {name} was changed concurrently (etag mismatch); read it again and retry", resource_label(*.resource))]
    EtagMismatch { resource: Resource, name: String },
    #[error("{message}")]
    ResourceExhausted {
        reason: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{message}")]
    PermissionDenied {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Unimplemented(String),
    /// A wait ran out of time; what was waited for goes on (the message says how to
    /// follow it).
    #[error("{message}")]
    DeadlineExceeded {
        reason: &'static str,
        message: String,
    },
    /// A fault of the server (storage, I/O). The message is logged, not trusted to clients.
    #[error("internal error: {0}")]
    Internal(String),
    /// The answer of the server owning the session (another server of the cluster),
    /// passed on to the client exactly as that server gave it.
    #[error("{}", .0.message)]
    Relayed(Box<RelayedError>),
}

/// An error answered by another server, kept opaque: only the API layer reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayedError {
    /// The wire status code.
    pub code: i32,
    pub message: String,
    /// The encoded status details (ErrorInfo, field violations...).
    pub details: bytes::Bytes,
    /// ErrorInfo's reason, for the log and metrics.
    pub reason: String,
}

fn resource_label(resource: Resource) -> &'static str {
    match resource {
        Resource::Session => "session",
        Resource::Message => "message",
        Resource::Turn => "turn",
        Resource::Confirmation => "confirmation",
        Resource::InputRequest => "input request",
        Resource::Model => "model",
        Resource::McpServer => "MCP server",
        Resource::Profile => "profile",
        Resource::Trigger => "trigger",
        Resource::TriggerDelivery => "trigger delivery",
        Resource::Schedule => "schedule",
        Resource::ScheduleRun => "schedule run",
        Resource::WebhookDelivery => "webhook delivery",
        Resource::File => "file",
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(resource: Resource, name: impl Into<String>) -> Self {
        Error::NotFound {
            resource,
            name: name.into(),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Error::Internal(err.to_string())
    }

    /// The stable reason for ErrorInfo, e.g. `SESSION_NOT_FOUND`.
    pub fn reason(&self) -> String {
        match self {
            Error::InvalidArgument(_) => crate::domain::reason::INVALID_ARGUMENT.into(),
            Error::NotFound { resource, .. } => format!("{}_NOT_FOUND", resource.upper()),
            Error::AlreadyExists { resource, .. } => format!("{}_ALREADY_EXISTS", resource.upper()),
            Error::EtagMismatch { .. } => crate::domain::reason::ETAG_MISMATCH.into(),
            Error::FailedPrecondition { reason, .. }
            | Error::ResourceExhausted { reason, .. }
            | Error::Unavailable { reason, .. }
            | Error::DeadlineExceeded { reason, .. }
            | Error::PermissionDenied { reason, .. } => (*reason).into(),
            Error::Unauthenticated(_) => crate::domain::reason::UNAUTHENTICATED.into(),
            Error::Unimplemented(_) => crate::domain::reason::NOT_IMPLEMENTED.into(),
            Error::Internal(_) => crate::domain::reason::INTERNAL.into(),
            Error::Relayed(relayed) => relayed.reason.clone(),
        }
    }

    /// Prefixes every field violation's path, e.g. with `session.` when the validated
    /// value sits inside a request.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Error::InvalidArgument(violations) => Error::InvalidArgument(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(format!("{prefix}{}", v.field), v.description))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Collects field violations so a request reports all its bad fields at once.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Keeps the violations of a nested check.
    pub fn check(&mut self, result: Result<()>) {
        match result {
            Ok(()) => {}
            Err(Error::InvalidArgument(violations)) => self.0.extend(violations),
            Err(other) => self.0.push(FieldViolation::new("", other.to_string())),
        }
    }

    /// The value of a nested check that gives one; its violations are kept (`None`).
    pub fn take<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.check(Err(err));
                None
            }
        }
    }

    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}
