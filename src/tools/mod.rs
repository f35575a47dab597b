//! Built-in tools (shell, files, the `ask_user` question) and the permission gate that
//! decides which calls run, which wait for a person, and which are refused.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::{PermissionMode, file::FileChange, tool::ToolSpec};

mod args;
pub mod ask_user;
mod change;
mod confine;
mod edit_file;
pub mod env;
mod glob;
mod grep;
mod list_dir;
pub mod mcp;
mod output;
mod read_file;
pub mod sandbox;
mod shell;
mod support;
#[cfg(test)]
mod test_support;
mod text;
mod walk;
pub mod workdir;
mod write_file;

pub use ask_user::AskUser;
pub use edit_file::EditFile;
pub use glob::Glob;
pub use grep::Grep;
pub use list_dir::ListDir;
pub use read_file::ReadFile;
pub use shell::Shell;
pub use write_file::WriteFile;

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
    /// The environment of processes a tool starts (never the server's own).
    pub env: env::ToolEnv,
    /// The confinement of processes a tool starts.
    pub sandbox: sandbox::Sandbox,
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
    /// The files the run created or changed (built-in file tools only: what a shell
    /// command does to files is not tracked), in order; each becomes a `file_changed`
    /// event of the call.
    pub changes: Vec<FileChange>,
}

impl ToolOutcome {
    /// A successful run.
    pub fn ok(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            is_error: false,
            exit_code: None,
            cancelled: false,
            changes: Vec::new(),
        }
    }

    /// A failed run (bad arguments, refused path, missing file, ...); `output` says why.
    pub fn error(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            is_error: true,
            exit_code: None,
            cancelled: false,
            changes: Vec::new(),
        }
    }

    /// A run stopped by cancel or timeout; `output` says which.
    pub fn cancelled(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            is_error: true,
            exit_code: None,
            cancelled: true,
            changes: Vec::new(),
        }
    }

    /// This outcome, reporting `change` too.
    pub fn with_change(mut self, change: FileChange) -> Self {
        self.changes.push(change);
        self
    }
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

/// Whether the tool `name` is offered to the model: the permission gate does not refuse
/// it under `mode`, and `ask_user` only where someone may answer (`attended`).
pub fn offered(name: &str, access: Access, mode: PermissionMode, attended: bool) -> bool {
    gate(access, mode) != Gate::Deny && (attended || name != ask_user::NAME)
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

    /// The eight built-in tools: read_file, list_dir, glob, grep (Read), write_file,
    /// edit_file (Write), shell (Execute) and ask_user (Read; answered by the turn).
    pub fn builtin() -> Self {
        Self::new(vec![
            Arc::new(ReadFile),
            Arc::new(ListDir),
            Arc::new(Glob),
            Arc::new(Grep),
            Arc::new(WriteFile),
            Arc::new(EditFile),
            Arc::new(Shell),
            Arc::new(AskUser),
        ])
    }

    /// These tools and `more` (a turn's MCP tools).
    pub fn with(&self, more: Vec<Arc<dyn Tool>>) -> Self {
        let mut tools = self.tools.clone();
        tools.extend(more);
        Self { tools }
    }

    /// Every tool, in the order offered.
    pub fn list(&self) -> &[Arc<dyn Tool>] {
        &self.tools
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// The specs offered to the model under `mode` (READ_ONLY offers only read tools),
    /// `attended` or not (see [`offered`]).
    pub fn specs(&self, mode: PermissionMode, attended: bool) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|t| t.spec())
            .zip(self.tools.iter().map(|t| t.access()))
            .filter(|(spec, access)| offered(&spec.name, *access, mode, attended))
            .map(|(spec, _)| spec)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_eight_tools_with_closed_schemas() {
        let toolbox = Toolbox::builtin();
        let names: Vec<String> = toolbox
            .specs(PermissionMode::AutoApprove, true)
            .into_iter()
            .map(|spec| spec.name)
            .collect();
        assert_eq!(
            names,
            [
                "read_file",
                "list_dir",
                "glob",
                "grep",
                "write_file",
                "edit_file",
                "shell",
                "ask_user"
            ]
        );
        for spec in toolbox.specs(PermissionMode::AutoApprove, true) {
            let schema = &spec.parameters;
            assert!(spec.description.len() > 40, "{}", spec.name);
            assert_eq!(schema["type"], "object", "{}", spec.name);
            assert_eq!(schema["additionalProperties"], false, "{}", spec.name);
            let properties = schema["properties"].as_object().expect("properties");
            for required in schema["required"].as_array().expect("required") {
                let required = required.as_str().expect("name");
                assert!(
                    properties.contains_key(required),
                    "{}: {required}",
                    spec.name
                );
            }
            for (name, property) in properties {
                assert!(property["type"].is_string(), "{}.{name}", spec.name);
                assert!(property["description"].is_string(), "{}.{name}", spec.name);
            }
        }
        let names = |mode, attended| -> Vec<String> {
            toolbox
                .specs(mode, attended)
                .into_iter()
                .map(|spec| spec.name)
                .collect()
        };
        assert_eq!(
            names(PermissionMode::ReadOnly, true),
            ["read_file", "list_dir", "glob", "grep", "ask_user"]
        );
        assert_eq!(
            names(PermissionMode::ReadOnly, false),
            ["read_file", "list_dir", "glob", "grep"],
            "nobody to ask: no ask_user"
        );
        assert!(!names(PermissionMode::Ask, false).contains(&"ask_user".to_owned()));
        assert_eq!(gate(Access::Read, PermissionMode::Ask), Gate::Run);
        let access = |name: &str| toolbox.get(name).map(|tool| tool.access());
        assert_eq!(access("write_file"), Some(Access::Write));
        assert_eq!(access("edit_file"), Some(Access::Write));
        assert_eq!(access("shell"), Some(Access::Execute));
        assert_eq!(access("grep"), Some(Access::Read));
        assert!(toolbox.get("nope").is_none());
    }
}
