//! gRPC services: thin adapters that validate a request, call the runtime and convert
//! the answer. Proto types stop here; `error` is the one mapping of domain errors to
//! statuses.

pub mod chat;
pub mod convert;
pub mod error;
pub mod planned;
pub mod sessions;

pub use chat::ChatApi;
pub use planned::{PlannedModelApi, PlannedScheduleApi};
pub use sessions::SessionApi;
