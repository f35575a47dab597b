//! Plain Rust types and rules of Octo's domain: sessions, messages, turns, their
//! validation, errors and pagination. No proto, no SQL, no HTTP.

pub mod cluster;
pub mod error;
pub mod file;
pub mod mcp;
pub mod message;
pub mod model;
pub mod outbox;
pub mod page;
pub mod profile;
pub mod prompt_template;
pub mod reason;
pub mod schedule;
pub mod secret;
pub mod session;
pub mod session_list;
pub mod summary;
pub mod time;
pub mod tool;
pub mod trigger;

pub use error::{Error, FieldViolation, Resource, Result};
pub use message::{
    Message, Part, Role, ToolCallRecord, ToolCallStatus, Turn, TurnError, TurnStatus,
};
pub use model::{Model, ModelCapabilities, ProviderKind};
pub use session::{PermissionMode, ReasoningEffort, Session, SessionSource, SessionStatus, Usage};
pub use time::Timestamp;

/// A field an Update may change, named as in the API (the proto field name).
pub trait UpdatableField: Copy + 'static {
    const ALL: &'static [Self];

    fn api_name(self) -> &'static str;

    /// Accepts proto names and their JSON (lowerCamelCase) spelling.
    fn from_api_name(path: &str) -> Option<Self> {
        let snake = session::snake_case(path);
        Self::ALL.iter().copied().find(|f| f.api_name() == snake)
    }
}

/// A new server-generated id: a UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `id` has the shape of an id Octo generates (a UUID).
pub fn is_valid_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok()
}

/// Whether `id` is a well-formed model id: a UUID, or an AIP-122 style slug (models
/// defined in the configuration are named by their key, e.g. `models/gpt`).
pub fn is_valid_model_id(id: &str) -> bool {
    is_valid_id(id)
        || (!id.is_empty()
            && id.len() <= 63
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && !id.ends_with('-')
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_ids_are_uuids_or_slugs() {
        for ok in ["mock", "gpt-4", "a", "0190b5b4-0000-7000-8000-000000000000"] {
            assert!(super::is_valid_model_id(ok), "{ok}");
        }
        for bad in ["", "Mock", "-a", "a-", "a_b", "a/b", &"x".repeat(64)] {
            assert!(!super::is_valid_model_id(bad), "{bad}");
        }
    }
}
