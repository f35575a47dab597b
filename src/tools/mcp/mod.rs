//! MCP tool servers: the connections to the configured servers and their tools, offered
//! to the model as `<server>__<tool>` next to the built-ins under the same permission
//! gate (a tool the server annotates `readOnlyHint: true` is a read; every other MCP tool
//! is a write: confirmed in ASK, not offered in READ_ONLY).
//!
//! Owns one supervisor task per enabled server (see [`connection`]), all tracked by one
//! TaskTracker and stopped by one CancellationToken ([`McpConnections::shutdown`]). A call
//! to a server that is down is a tool error at once, never a wait; a call whose server
//! dies mid-call ends with a tool error when the transport closes; a cancelled turn sends
//! `notifications/cancelled` for its call.

mod connection;
mod result;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use rmcp::{
    ServiceError,
    model::{
        CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientRequest,
        ServerResult,
    },
    service::PeerRequestOptions,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use connection::McpToolInfo;
use connection::{Connection, Launch};

use super::{Access, OutputStream, Tool, ToolContext, ToolOutcome, ToolOutput, support};
use crate::domain::{
    mcp::{McpServer, McpServerStatus},
    tool::ToolSpec,
};

/// How long a turn waits for servers in the middle of a connection attempt (a turn right
/// after the server or an MCP server (re)starts should see their tools): node-based
/// servers take ~1 s to start on an idle machine, several on a loaded one. A server
/// waiting out its backoff is not waited for.
const STARTUP_WAIT: Duration = Duration::from_secs(20);

/// The configured MCP servers and their live connections.
pub struct McpConnections {
    running: Mutex<BTreeMap<String, Running>>,
    launch: Launch,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

struct Running {
    connection: Arc<Connection>,
    stop: CancellationToken,
}

impl McpConnections {
    /// Stdio servers run with `env` (the tool environment allow-list) plus their own
    /// `env`, in their `working_dir` or else `default_dir` (the workspace root).
    pub fn new(env: super::env::ToolEnv, default_dir: PathBuf) -> Self {
        // rmcp's Streamable HTTP client (reqwest 0.13, built without a TLS provider of its
        // own) uses the process's default rustls provider: ring, as everywhere in Octo.
        // Failing means one is installed already, which serves as well.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        McpConnections {
            running: Mutex::new(BTreeMap::new()),
            launch: Launch { env, default_dir },
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `server` (when enabled), or restarts it when its transport or enabled flag
    /// changed; a change of display name alone keeps the connection.
    pub fn set(&self, server: McpServer) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut running = self.lock();
        if let Some(current) = running.get(&server.id) {
            let same = current.connection.server.transport == server.transport
                && current.connection.server.enabled == server.enabled;
            if same {
                return;
            }
        }
        if let Some(old) = running.remove(&server.id) {
            old.stop.cancel();
        }
        let connection = Connection::new(server);
        let stop = self.shutdown.child_token();
        if connection.server.enabled {
            self.tracker.spawn(connection::supervise(
                connection.clone(),
                self.launch.clone(),
                self.tracker.clone(),
                stop.clone(),
            ));
        }
        running.insert(connection.server.id.clone(), Running { connection, stop });
    }

    /// Makes the running set `servers`: starts new ones, restarts changed ones, stops
    /// those no longer there.
    pub fn sync(&self, servers: &[McpServer]) {
        let gone: Vec<String> = self
            .lock()
            .keys()
            .filter(|id| !servers.iter().any(|s| &&s.id == id))
            .cloned()
            .collect();
        for id in gone {
            self.remove(&id);
        }
        for server in servers {
            self.set(server.clone());
        }
    }

    /// Stops and forgets a server.
    pub fn remove(&self, id: &str) {
        if let Some(old) = self.lock().remove(id) {
            old.stop.cancel();
        }
    }

    /// The live state of a server; `None` when it is not configured.
    pub fn status(&self, id: &str) -> Option<McpServerStatus> {
        self.lock().get(id).map(|r| r.connection.status())
    }

    /// The tools of every enabled server, or of those of `only` (waiting, up to
    /// [`STARTUP_WAIT`], for servers in the middle of a connection attempt), for one turn.
    pub async fn tools(&self, only: Option<&[String]>) -> Vec<Arc<dyn Tool>> {
        let connections: Vec<Arc<Connection>> = self
            .lock()
            .values()
            .filter(|r| r.connection.server.enabled)
            .filter(|r| only.is_none_or(|ids| ids.contains(&r.connection.server.id)))
            .map(|r| r.connection.clone())
            .collect();
        let waits = connections.iter().map(|c| c.settled());
        let _ = tokio::time::timeout(STARTUP_WAIT, futures::future::join_all(waits)).await;
        connections
            .iter()
            .flat_map(|connection| {
                connection
                    .tools()
                    .iter()
                    .map(|info| {
                        Arc::new(McpTool {
                            info: info.clone(),
                            connection: connection.clone(),
                        }) as Arc<dyn Tool>
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The tools a server offers (as last listed).
    pub fn server_tools(&self, id: &str) -> Vec<McpToolInfo> {
        self.lock()
            .get(id)
            .map(|r| r.connection.tools().to_vec())
            .unwrap_or_default()
    }

    /// Stops every server and waits until their processes are gone.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// One tool of one MCP server.
struct McpTool {
    info: McpToolInfo,
    connection: Arc<Connection>,
}

#[async_trait::async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.info.qualified_name.clone(),
            description: self.info.description.clone(),
            parameters: self.info.input_schema.clone(),
        }
    }

    fn access(&self) -> Access {
        if self.info.read_only {
            Access::Read
        } else {
            Access::Write
        }
    }

    async fn run(&self, arguments: serde_json::Value, context: ToolContext) -> ToolOutcome {
        if context.cancel.is_cancelled() {
            return ToolOutcome::cancelled("cancelled");
        }
        let Some(peer) = self.connection.peer() else {
            return ToolOutcome::error(self.connection.unavailable());
        };
        let mut params = CallToolRequestParams::new(self.info.name.clone());
        if let serde_json::Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = match peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
        {
            Ok(handle) => handle,
            Err(err) => return ToolOutcome::error(self.failure(&err)),
        };
        let request_id = handle.id.clone();
        let mut progress = self
            .connection
            .progress
            .subscribe(handle.progress_token.clone())
            .await;
        let response = handle.await_response();
        tokio::pin!(response);
        let deadline = tokio::time::sleep(context.timeout);
        tokio::pin!(deadline);
        let stopped = loop {
            tokio::select! {
                biased;
                () = context.cancel.cancelled() => break "cancelled".to_owned(),
                () = &mut deadline => {
                    break format!("timed out after {}", support::seconds(context.timeout));
                }
                Some(note) = progress.next() => {
                    // A full channel drops the note: progress is advisory.
                    let _ = context.output.try_send(ToolOutput {
                        stream: OutputStream::Stdout,
                        text: describe_progress(&note),
                    });
                }
                result = &mut response => return self.outcome(result, &context),
            }
        };
        // Tell the server to stop; its answer, if any, is ignored (the spec's rule).
        let note = CancelledNotificationParam::new(Some(request_id), Some(stopped.clone()));
        if let Err(err) = peer.notify_cancelled(note).await {
            tracing::debug!(server = %self.info.server, error = %err, "cannot send the MCP cancellation");
        }
        ToolOutcome::cancelled(stopped)
    }
}

impl McpTool {
    fn outcome(
        &self,
        result: Result<ServerResult, ServiceError>,
        context: &ToolContext,
    ) -> ToolOutcome {
        match result {
            Ok(ServerResult::CallToolResult(result)) => match serde_json::to_value(&result) {
                Ok(json) => result::outcome(&json, context.max_output_bytes),
                Err(err) => ToolOutcome::error(format!("unreadable MCP result: {err}")),
            },
            Ok(_) => ToolOutcome::error(format!(
                "the MCP server {} answered tools/call with something else than a result",
                self.info.server
            )),
            Err(err) => ToolOutcome::error(self.failure(&err)),
        }
    }

    /// The model's view of a failed call: what went wrong, not internals.
    fn failure(&self, err: &ServiceError) -> String {
        let server = &self.info.server;
        match err {
            ServiceError::McpError(error) => {
                format!(
                    "the MCP server {server} refused the call: {}",
                    error.message
                )
            }
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                self.connection
                    .reconnect("the connection broke during a call");
                format!(
                    "the MCP server {server} went away during the call (it is restarted \
                     automatically; try again later)"
                )
            }
            other => format!("the call to the MCP server {server} failed: {other}"),
        }
    }
}

/// `progress 2/5: message` (the numbers as the server sent them).
fn describe_progress(note: &rmcp::model::ProgressNotificationParam) -> String {
    let number = |n: f64| {
        if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", n as i64)
        } else {
            format!("{n}")
        }
    };
    let mut text = format!("progress {}", number(note.progress));
    if let Some(total) = note.total {
        text.push('/');
        text.push_str(&number(total));
    }
    if let Some(message) = note.message.as_deref().filter(|m| !m.is_empty()) {
        text.push_str(": ");
        text.push_str(message);
    }
    text.push('\n');
    text
}
