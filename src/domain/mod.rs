//! Plain Rust types and rules of Octo's domain: sessions, messages, turns, their
//! validation, errors and pagination. No proto, no SQL, no HTTP.

pub mod error;
pub mod message;
pub mod page;
pub mod secret;
pub mod session;
pub mod time;
pub mod tool;

pub use error::{Error, FieldViolation, Resource, Result};
pub use message::{
    Message, Part, Role, ToolCallRecord, ToolCallStatus, Turn, TurnError, TurnStatus,
};
pub use session::{PermissionMode, ReasoningEffort, Session, SessionSource, SessionStatus, Usage};
pub use time::Timestamp;

/// A new server-generated id: a UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `id` has the shape of an id Octo generates (a UUID).
pub fn is_valid_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}
