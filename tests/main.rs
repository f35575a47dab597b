//! The whole test suite as one binary: every `tests/<area>.rs` is a module here, and
//! `tests/common` is their shared support.
//!
//! One binary, not one per file: with 44 files, cargo linked 44 test executables, each
//! carrying the server, its dependencies and their debug info. That was ~45 link steps
//! per change and tens of GB of `target/` (a CI machine ran out of disk linking them).
//! One process also shares one throwaway Postgres cluster across every test.
//!
//! Run one area with `cargo test --test suite <area>::`, e.g. `cargo test --test suite
//! sandbox::`.

mod common;

mod admission;
mod architecture;
mod ask_user;
mod auth;
mod chat_basic;
mod chat_busy;
mod chat_cancel;
mod chat_crash;
mod chat_errors;
mod chat_fanout;
mod chat_permissions;
mod chat_protocols;
mod chat_provider_faults;
mod chat_providers;
mod chat_resume;
mod chat_slow_consumer;
mod chat_tools;
mod cli;
mod cli_chat;
mod cli_files;
mod cli_mcp;
mod cli_models;
mod cli_schedules;
mod cluster;
mod cluster_takeover;
mod compaction;
mod files;
mod grpc_web;
mod grpcurl;
mod mcp;
mod mcp_servers;
mod models;
mod openapi;
mod outbox;
mod probes;
mod profiles;
mod reasons;
mod sandbox;
mod schedules;
mod security;
mod send_and_wait;
mod server_postgres;
mod sessions_grpc;
mod sessions_json;
mod signals;
mod store;
mod store_cluster;
mod store_outbox;
mod store_postgres;
mod store_profiles;
mod store_summaries;
mod store_trash;
mod store_triggers;
mod telemetry;
mod titles;
mod tool_env;
mod trash;
mod triggers;
mod ui;
mod webhooks;
