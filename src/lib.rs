//! Octo: a server that hosts AI-agent sessions over gRPC, gRPC-Web and JSON/HTTP.
//!
//! The arrow of dependence points inward: `api` and `http` translate between the wire
//! and the `runtime`, which works on `domain` types with the `store` behind a trait.

pub mod admission;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod files;
pub mod guard;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod providers;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tools;
pub mod webhooks;

/// The generated protobuf types, gRPC servers and clients of `octo.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("octo.v1");

    /// The google.api messages Octo's RPCs use (`HttpBody`).
    pub mod google_api {
        tonic::include_proto!("google.api");
    }

    /// Descriptors of every Octo proto and its imports (google.api, google.rpc,
    /// google.protobuf), with source comments: for reflection and the JSON mapping.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("octo_descriptor");
}
