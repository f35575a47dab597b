//! One MCP server's connection: a supervisor task that connects (spawning a stdio
//! server as a child process in its own process group, or opening a Streamable HTTP
//! session), lists its tools, waits for the
//! connection to break, and reconnects with backoff; and the live state tools and the
//! API read (status, peer, tool descriptions).
//!
//! Concurrency: the state sits behind std mutexes and a watch channel, never held
//! across an await. The supervisor is the only writer; tools read the peer (a cheap
//! clone) and call through it concurrently. The supervisor stops on its cancellation
//! token: the rmcp service shares it (via `serve_with_ct`), closes the transport, and a
//! stdio server is then asked to exit (stdin closed), sent SIGTERM after 3 s and killed
//! after 3 more (rmcp's shutdown sequence, applied to the whole process group).

use std::{
    collections::VecDeque,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http::{HeaderName, HeaderValue};
use process_wrap::tokio::{CommandWrap, ProcessGroup};
use rmcp::{
    ClientHandler, Peer, RoleClient, ServiceExt,
    handler::client::progress::ProgressDispatcher,
    model::{ClientConfig, Implementation, ProgressNotificationParam},
    service::NotificationContext,
    transport::{
        StreamableHttpClientTransport, TokioChildProcess, common::client_side_sse::SseRetryPolicy,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    sync::watch,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::domain::mcp::{
    McpServer, McpServerState, McpServerStatus, McpTransport, is_offerable_tool_name,
    qualified_tool_name,
};

/// First retry after a failure; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// A server that keeps crashing is retried twice a minute, not more.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lived this long resets the backoff: the next crash is a new story.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Spawning, `initialize` and `tools/list` together: `npx` fetching a package on a cold
/// cache takes ~10 s; more is a server that will not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Tools taken from one server; more would swamp the model's context.
const MAX_TOOLS: usize = 256;
/// Resumptions of a broken Streamable HTTP event stream before the call fails: a
/// restarting server (a deploy) is back within 2 s; a dead one fails the call then.
const SSE_RESUME_TRIES: usize = 4;
const SSE_RESUME_INTERVAL: Duration = Duration::from_millis(500);
/// [`SSE_RESUME_TRIES`] resumptions, [`SSE_RESUME_INTERVAL`] apart.
#[derive(Debug)]
struct ResumeBriefly;

impl SseRetryPolicy for ResumeBriefly {
    fn retry(&self, tries: usize) -> Option<Duration> {
        (tries < SSE_RESUME_TRIES).then_some(SSE_RESUME_INTERVAL)
    }
}

/// Lines of a stdio server's stderr kept for the error text.
const STDERR_LINES: usize = 5;
/// A longer stderr line is cut into pieces of this size.
const STDERR_LINE_BYTES: u64 = 1024;

/// A tool as the server described it.
#[derive(Clone, Debug, PartialEq)]
pub struct McpToolInfo {
    pub server: String,
    /// The server's own name for it.
    pub name: String,
    /// `<server>__<name>`: what the model sees.
    pub qualified_name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
    /// The server's `readOnlyHint`: runs without asking in ASK mode, offered in READ_ONLY.
    pub read_only: bool,
}

/// What the environment of a server's process and its default working dir are.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub env: crate::tools::env::ToolEnv,
    pub default_dir: std::path::PathBuf,
}

/// The live state of one configured server.
pub(crate) struct Connection {
    pub server: McpServer,
    status: watch::Sender<McpServerStatus>,
    live: Mutex<Live>,
    pub(crate) progress: ProgressDispatcher,
}

#[derive(Default)]
struct Live {
    peer: Option<Peer<RoleClient>>,
    /// Cancels the current connection (its service), to force a restart.
    attempt: Option<CancellationToken>,
    /// Why the connection was forced to restart, for the error text.
    broken: Option<String>,
    tools: Arc<[McpToolInfo]>,
    stderr: VecDeque<String>,
}

impl Connection {
    pub(crate) fn new(server: McpServer) -> Arc<Self> {
        let status = if server.enabled {
            McpServerStatus {
                state: McpServerState::Connecting,
                ..McpServerStatus::disabled()
            }
        } else {
            McpServerStatus::disabled()
        };
        Arc::new(Connection {
            server,
            status: watch::Sender::new(status),
            live: Mutex::new(Live::default()),
            progress: ProgressDispatcher::new(),
        })
    }

    pub(crate) fn status(&self) -> McpServerStatus {
        self.status.borrow().clone()
    }

    /// Waits while a connection attempt is under way (until connected or failed).
    pub(crate) async fn settled(&self) {
        let mut status = self.status.subscribe();
        let _ = status
            .wait_for(|s| s.state != McpServerState::Connecting)
            .await;
    }

    /// The tools as last listed (kept while reconnecting, so a turn that calls one
    /// gets "not connected" rather than "no such tool").
    pub(crate) fn tools(&self) -> Arc<[McpToolInfo]> {
        self.lock().tools.clone()
    }

    pub(crate) fn peer(&self) -> Option<Peer<RoleClient>> {
        self.lock().peer.clone()
    }

    /// Why the server is not usable right now, for a tool error.
    pub(crate) fn unavailable(&self) -> String {
        let status = self.status();
        match status.state {
            McpServerState::Disabled => format!("the MCP server {} is disabled", self.server.id),
            McpServerState::Connecting => {
                format!("the MCP server {} is (re)starting", self.server.id)
            }
            _ if status.error.is_empty() => {
                format!("the MCP server {} is not connected", self.server.id)
            }
            _ => format!(
                "the MCP server {} is not connected: {}",
                self.server.id, status.error
            ),
        }
    }

    /// Ends the current connection so the supervisor restarts it: a call failed in a way
    /// that says the transport is broken, though it may not have noticed (rmcp's HTTP
    /// client keeps a session whose server died and restarted).
    pub(crate) fn reconnect(&self, why: &str) {
        let mut live = self.lock();
        if let Some(attempt) = live.attempt.take() {
            tracing::info!(server = %self.server.id, why, "restarting the MCP connection");
            live.broken = Some(why.to_owned());
            live.peer = None;
            attempt.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_connecting(&self) {
        self.status
            .send_modify(|s| s.state = McpServerState::Connecting);
    }

    fn set_connected(&self, peer: Peer<RoleClient>, tools: Vec<McpToolInfo>) {
        let count = tools.len() as u32;
        {
            let mut live = self.lock();
            live.peer = Some(peer);
            live.tools = tools.into();
        }
        self.status.send_modify(|s| {
            s.state = McpServerState::Connected;
            s.error.clear();
            s.tool_count = count;
        });
    }

    fn set_failed(&self, error: String) {
        let stderr = {
            let mut live = self.lock();
            live.peer = None;
            live.stderr.iter().cloned().collect::<Vec<_>>().join("\n")
        };
        let error = if stderr.is_empty() {
            error
        } else {
            format!("{error}; its stderr ended with:\n{stderr}")
        };
        tracing::warn!(server = %self.server.id, %error, "MCP server not connected");
        self.status.send_modify(|s| {
            s.state = McpServerState::Failed;
            s.error = error;
            s.restarts += 1;
        });
    }

    fn note_stderr(&self, line: String) {
        tracing::debug!(server = %self.server.id, "stderr: {line}");
        let mut live = self.lock();
        if live.stderr.len() == STDERR_LINES {
            live.stderr.pop_front();
        }
        live.stderr.push_back(line);
    }
}

/// What Octo tells servers about itself, and where progress notifications go.
#[derive(Clone)]
struct Handler {
    progress: ProgressDispatcher,
}

impl ClientHandler for Handler {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.handle_notification(params).await;
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("octo", env!("CARGO_PKG_VERSION"));
        info
    }
}

/// Keeps `connection` connected until `stop` is cancelled.
pub(crate) async fn supervise(
    connection: Arc<Connection>,
    launch: Launch,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let id = connection.server.id.clone();
    let mut backoff = INITIAL_BACKOFF;
    loop {
        connection.set_connecting();
        let attempt_token = stop.child_token();
        {
            let mut live = connection.lock();
            live.stderr.clear();
            live.broken = None;
            live.attempt = Some(attempt_token.clone());
        }
        let handler = Handler {
            progress: connection.progress.clone(),
        };
        let attempt = tokio::select! {
            attempt = tokio::time::timeout(
                CONNECT_TIMEOUT,
                connect(&connection, &launch, &tracker, handler, attempt_token),
            ) => attempt,
            () = stop.cancelled() => return,
        };
        match attempt {
            Ok(Ok((running, tools))) => {
                tracing::info!(server = %id, tools = tools.len(), "MCP server connected");
                let connected = Instant::now();
                connection.set_connected(running.peer().clone(), tools);
                // Ends when the transport closes (the process exited, the HTTP session
                // broke) or `stop` cancels the service (it then closes the transport).
                let quit = running.waiting().await;
                if stop.is_cancelled() {
                    connection.lock().peer = None;
                    return;
                }
                tracing::debug!(server = %id, ?quit, "MCP connection ended");
                let why = connection.lock().broken.take();
                connection
                    .set_failed(why.unwrap_or_else(|| "the server closed the connection".into()));
                if connected.elapsed() >= STABLE_AFTER {
                    backoff = INITIAL_BACKOFF;
                }
            }
            Ok(Err(error)) => connection.set_failed(error),
            Err(_) => connection.set_failed(format!(
                "no answer to initialize and tools/list within {}s",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type Running = rmcp::service::RunningService<RoleClient, Handler>;

/// One attempt: start the transport, initialize, list the tools.
async fn connect(
    connection: &Arc<Connection>,
    launch: &Launch,
    tracker: &TaskTracker,
    handler: Handler,
    stop: CancellationToken,
) -> Result<(Running, Vec<McpToolInfo>), String> {
    let server = &connection.server;
    let running = match &server.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            working_dir,
        } => {
            let dir = if working_dir.is_empty() {
                launch.default_dir.as_path()
            } else {
                Path::new(working_dir)
            };
            let mut process = tokio::process::Command::new(command);
            process
                .args(args)
                .env_clear()
                .envs(launch.env.vars())
                .envs(env)
                .current_dir(dir);
            let mut wrapped = CommandWrap::from(process);
            wrapped.wrap(ProcessGroup::leader());
            let (transport, stderr) = TokioChildProcess::builder(wrapped)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|err| format!("cannot start {command:?}: {err}"))?;
            if let Some(stderr) = stderr {
                tracker.spawn(read_stderr(connection.clone(), stderr));
            }
            handler
                .serve_with_ct(transport, stop)
                .await
                .map_err(|err| format!("initialize failed: {err}"))?
        }
        McpTransport::Http { url, headers } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            // rmcp resumes a broken event stream forever by default, so a call whose
            // server died would wait for ever; after these tries the transport gives up,
            // the call fails and the supervisor restarts the connection with its backoff.
            config.retry_config = Arc::new(ResumeBriefly);
            for (name, value) in headers {
                // Validated when the server was stored; a failure here is a bug, said as such.
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|err| format!("header {name:?}: {err}"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|err| format!("header {name}'s value: {err}"))?;
                config.custom_headers.insert(name, value);
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            handler
                .serve_with_ct(transport, stop)
                .await
                .map_err(|err| format!("initialize failed: {err}"))?
        }
    };
    let listed = running
        .peer()
        .list_all_tools()
        .await
        .map_err(|err| format!("tools/list failed: {err}"))?;
    let mut tools = Vec::with_capacity(listed.len().min(MAX_TOOLS));
    for tool in listed {
        let qualified_name = qualified_tool_name(&server.id, &tool.name);
        if !is_offerable_tool_name(&qualified_name) {
            tracing::warn!(server = %server.id, tool = %tool.name, "MCP tool skipped: its name is not one models accept ([A-Za-z0-9_-], at most 64 with the server's prefix)");
            continue;
        }
        if tools.len() == MAX_TOOLS {
            tracing::warn!(server = %server.id, "MCP server offers more than {MAX_TOOLS} tools; the rest are skipped");
            break;
        }
        tools.push(McpToolInfo {
            server: server.id.clone(),
            qualified_name,
            description: tool.description.as_deref().unwrap_or_default().to_owned(),
            input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
            read_only: tool
                .annotations
                .as_ref()
                .and_then(|a| a.read_only_hint)
                .unwrap_or(false),
            name: tool.name.into_owned(),
        });
    }
    Ok((running, tools))
}

/// Logs a stdio server's stderr and keeps its last lines for the error text. Ends at
/// EOF (the process exited).
async fn read_stderr(connection: Arc<Connection>, stderr: tokio::process::ChildStderr) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(STDERR_LINE_BYTES)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                if !text.is_empty() {
                    connection.note_stderr(text);
                }
            }
        }
    }
}
