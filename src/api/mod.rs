//! gRPC services: thin adapters that validate a request, call the runtime and convert
//! the answer. Proto types stop here; `error` is the one mapping of domain errors to
//! statuses.

pub mod chat;
pub mod convert;
pub mod error;
pub mod files;
pub mod mcp;
pub mod models;
pub mod peer;
pub mod profiles;
pub mod schedules;
pub mod sessions;
pub mod triggers;
pub mod webhooks;
pub mod wire;

pub use chat::ChatApi;
pub use files::FileApi;
pub use mcp::McpServerApi;
pub use models::ModelApi;
pub use profiles::ProfileApi;
pub use schedules::ScheduleApi;
pub use sessions::SessionApi;
pub use triggers::TriggerApi;
pub use webhooks::WebhookApi;
pub use wire::ChatRoutes;
