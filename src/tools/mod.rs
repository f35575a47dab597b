//! Built-in tools (shell, files) and the permission gate that decides which calls run,
//! which wait for a person, and which are refused.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::{PermissionMode, tool::ToolSpec};

/// What a tool does to the world, for the permission gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Execute,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// A piece of a running tool's output, streamed to clients.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutput {
    pub stream: OutputStream,
    pub text: String,
}

/// What a tool run may use.
#[derive(Clone, Debug)]
pub struct ToolContext {
    /// Canonical working dir; every path a tool touches resolves inside it.
    pub working_dir: PathBuf,
    /// Cancelled when the turn is cancelled: stop at once (kill processes).
    pub cancel: CancellationToken,
    /// Streamed output; a full channel must not block the tool (drop or batch).
    pub output: mpsc::Sender<ToolOutput>,
    pub timeout: Duration,
    /// The result fed back to the model is cut to this many bytes.
    pub max_output_bytes: usize,
}

/// How a tool run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutcome {
    /// Fed back to the model (bounded).
    pub output: String,
    pub is_error: bool,
    pub exit_code: Option<i32>,
    /// Stopped by cancel or timeout.
    pub cancelled: bool,
}

#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    fn access(&self) -> Access;
    /// Runs with already-parsed arguments. Bad arguments are an error outcome, not a panic.
    async fn run(&self, arguments: serde_json::Value, context: ToolContext) -> ToolOutcome;
}

/// The permission gate's verdict on one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Run,
    Confirm,
    Deny,
}

/// ASK: reads run, writes and commands need confirmation; AUTO_APPROVE: everything
/// runs; READ_ONLY: reads run, anything else is refused (and not even offered).
pub fn gate(access: Access, mode: PermissionMode) -> Gate {
    match (mode, access) {
        (_, Access::Read) | (PermissionMode::AutoApprove, _) => Gate::Run,
        (PermissionMode::Ask, _) => Gate::Confirm,
        (PermissionMode::ReadOnly, _) => Gate::Deny,
    }
}

/// The tools a session can use.
#[derive(Clone, Default)]
pub struct Toolbox {
    tools: Vec<Arc<dyn Tool>>,
}

impl Toolbox {
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        Self { tools }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// The specs offered to the model under `mode` (READ_ONLY offers only read tools).
    pub fn specs(&self, mode: PermissionMode) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .filter(|t| gate(t.access(), mode) != Gate::Deny)
            .map(|t| t.spec())
            .collect()
    }
}
