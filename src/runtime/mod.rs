//! The runtime: session logic and live state. It works on domain types, keeps the store,
//! providers and tools behind their traits, and knows nothing of proto or HTTP.

mod calls;
mod changes;
pub mod chat;
pub mod cluster;
mod compact;
mod context;
pub mod events;
mod feed;
pub mod files;
mod history;
mod input;
pub(crate) mod live;
pub mod mcp;
mod memory;
pub mod models;
pub(crate) mod outbox;
pub mod profiles;
pub mod retention;
mod send;
pub mod sessions;
mod spans;
mod takeover;
pub mod triggers;
mod turn;
pub mod workspace;

use std::{sync::Arc, time::Duration};

pub use chat::{BusyPolicy, Caller, Chat, SendRequest};
pub use cluster::{ClusterSettings, Ownership, Peers};
pub use feed::EventFeed;
pub use files::{FileLimits, Files};
pub use live::{LiveIndex, LiveSummary};
pub use mcp::McpServers;
pub use models::Models;
pub use outbox::{Deliveries, DeliveryPage, Outbox};
pub use profiles::Profiles;
pub use retention::RetentionPolicy;
pub use send::{Answered, TURN_STILL_RUNNING};
pub use sessions::{NewSession, SessionChange, Sessions};
pub use triggers::Triggers;
pub use workspace::Workspace;

use crate::{providers::ProviderPolicy, store::Store, tools::Toolbox};

/// Bounds on what a session and a turn may do.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_queue_depth: usize,
    pub max_steps: u32,
    pub tool_timeout: Duration,
    pub max_tool_output_bytes: usize,
    pub max_attachment_bytes: usize,
    pub event_log_capacity: usize,
    /// Bytes of events a session with no subscriber keeps for resumes.
    pub event_log_bytes: usize,
    /// A live session with nothing to do and nobody watching retires after this long.
    pub idle: Duration,
    pub system_prompt: String,
    /// The environment tool processes run with.
    pub tool_env: crate::tools::env::ToolEnv,
    /// The confinement of tool processes (probed once, at start).
    pub sandbox: crate::tools::sandbox::Sandbox,
    pub compaction: crate::config::CompactionConfig,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_queue_depth: config.max_queue_depth,
            max_steps: config.max_steps,
            tool_timeout: Duration::from_secs(config.tool_timeout_seconds),
            max_tool_output_bytes: config.max_tool_output_bytes,
            max_attachment_bytes: config.max_attachment_bytes,
            event_log_capacity: config.event_log_capacity,
            event_log_bytes: config.event_log_bytes,
            idle: Duration::from_secs(config.session_idle_seconds),
            system_prompt: config.system_prompt.clone(),
            tool_env: crate::tools::env::ToolEnv::from_process(
                &config.tool_env,
                &config
                    .models
                    .values()
                    .filter_map(|model| model.api_key_env.clone())
                    .collect::<Vec<_>>(),
            ),
            sandbox: crate::tools::sandbox::Sandbox::new(config.sandbox_settings()),
            compaction: config.compaction.clone(),
        }
    }
}

/// What the runtime's parts share.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub sessions: Arc<Sessions>,
    pub models: Arc<Models>,
    pub toolbox: Toolbox,
    /// The MCP servers whose tools turns offer next to the built-ins.
    pub mcp: Arc<McpServers>,
    pub http: reqwest::Client,
    pub provider_policy: ProviderPolicy,
    pub limits: Limits,
    pub live: Arc<LiveIndex>,
    /// Cancelled when the server shuts down: running turns end INTERRUPTED.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Where `turn.finished` webhooks go; they are stored with the turn's terminal state.
    pub outbox: Outbox,
}
