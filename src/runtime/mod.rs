//! The runtime: session logic and live state. It works on domain types, keeps the store
//! behind its trait, and knows nothing of proto or HTTP.

pub mod sessions;
pub mod workspace;

pub use sessions::{SessionChange, Sessions};
pub use workspace::Workspace;
