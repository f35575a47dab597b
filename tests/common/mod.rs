//! Test support: a real Octo server on an ephemeral loopback port, in this process,
//! with its own data dir; and helpers to reach it with real clients.
#![allow(dead_code)]

pub mod cli;
pub mod postgres;
pub mod store;
pub mod webhook;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use octo::{
    config::Config,
    pb::{self, session_service_client::SessionServiceClient},
    server::Server,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// Safety net for anything awaited in a test: generous, never a synchronisation device.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    /// Holds the data dir for the test's lifetime.
    pub dir: std::sync::Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A config for tests: loopback ephemeral port, its own dirs, and the mock model as
/// the default (no network, deterministic).
pub fn test_config(dir: &tempfile::TempDir) -> Config {
    let mut models = std::collections::BTreeMap::new();
    models.insert("mock".to_owned(), octo::config::ModelConfig::mock());
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("data"),
        workspace_root: Some(dir.path().join("workspace")),
        shutdown_grace_seconds: 5,
        // Webhook retries in milliseconds, so tests wait on them briefly.
        webhooks: octo::config::WebhookConfig {
            initial_backoff_ms: 50,
            max_backoff_ms: 500,
            ..octo::config::WebhookConfig::default()
        },
        models,
        default_model: Some("mock".to_owned()),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut config = test_config(&dir);
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    /// Starts a server on an existing data dir (restarts).
    pub async fn start_in(dir: std::sync::Arc<tempfile::TempDir>, config: Config) -> TestServer {
        Self::start_with_clock(
            dir,
            config,
            std::sync::Arc::new(octo::scheduler::SystemClock),
        )
        .await
    }

    /// Starts a server whose schedules fire by `clock`.
    pub async fn start_with_clock(
        dir: std::sync::Arc<tempfile::TempDir>,
        config: Config,
        clock: std::sync::Arc<dyn octo::scheduler::Clock>,
    ) -> TestServer {
        let server = Server::bind_with_clock(config.clone(), clock)
            .await
            .expect("server binds");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            config,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn workspace(&self) -> PathBuf {
        self.config.workspace_root()
    }

    pub async fn channel(&self) -> Channel {
        connect(&self.addr.to_string()).await
    }

    pub async fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel().await)
    }

    pub async fn chat(&self) -> pb::chat_service_client::ChatServiceClient<Channel> {
        pb::chat_service_client::ChatServiceClient::new(self.channel().await)
    }

    pub async fn models(&self) -> pb::model_service_client::ModelServiceClient<Channel> {
        pb::model_service_client::ModelServiceClient::new(self.channel().await)
    }

    pub async fn schedules(&self) -> pb::schedule_service_client::ScheduleServiceClient<Channel> {
        pb::schedule_service_client::ScheduleServiceClient::new(self.channel().await)
    }

    /// Stops gracefully and waits until the server has flushed and returned.
    pub async fn stop(mut self) -> (std::sync::Arc<tempfile::TempDir>, Config) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server run ok");
        }
        (self.dir.clone(), self.config.clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request carrying a bearer token.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("metadata"),
    );
    request
}

pub fn session(title: &str) -> pb::Session {
    pb::Session {
        display_name: title.to_owned(),
        ..Default::default()
    }
}

pub async fn create(client: &mut SessionServiceClient<Channel>, title: &str) -> pb::Session {
    client
        .create_session(pb::CreateSessionRequest {
            session: Some(session(title)),
        })
        .await
        .expect("create session")
        .into_inner()
}

/// The field paths of a status's BadRequest violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Where a third-party tool was installed: `.ci/setup`'s folder, PATH, or Go's bin dir.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin")];
    dirs.extend(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("go/bin"));
    }
    if let Some(gopath) = std::env::var_os("GOPATH") {
        dirs.push(PathBuf::from(gopath).join("bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A text part.
pub fn text(text: &str) -> pb::Part {
    pb::Part {
        kind: Some(pb::part::Kind::Text(text.to_owned())),
    }
}

/// Polls `probe` every 20 ms until it gives `Some`, and returns that: for state only
/// a query shows (a run's status, a process in /proc). The wait ends on the condition;
/// [`TIMEOUT`] is a safety net, after which it panics naming `what`.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads events until `stop` holds for one (included), with the safety-net timeout.
pub async fn collect_until(
    stream: &mut tonic::Streaming<pb::SessionEvent>,
    stop: impl Fn(&pb::SessionEvent) -> bool,
) -> Vec<pb::SessionEvent> {
    let mut events = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = stream.message().await.expect("stream ok") {
            let done = stop(&event);
            events.push(event);
            if done {
                return;
            }
        }
        panic!("stream ended early after {} events", events.len());
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for an event"));
    events
}

pub fn is_turn_finished(event: &pb::SessionEvent) -> bool {
    matches!(event.kind, Some(pb::session_event::Kind::TurnFinished(_)))
}

/// The concatenated text deltas of some events.
pub fn streamed_text(events: &[pb::SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::session_event::Kind::TextDelta(d)) => Some(d.text.as_str()),
            _ => None,
        })
        .collect()
}

/// A short name for each event's kind, for asserting orders.
pub fn kinds(events: &[pb::SessionEvent]) -> Vec<&'static str> {
    use pb::session_event::Kind;
    events
        .iter()
        .map(|e| match &e.kind {
            Some(Kind::Snapshot(_)) => "snapshot",
            Some(Kind::TurnQueued(_)) => "turn_queued",
            Some(Kind::TurnStarted(_)) => "turn_started",
            Some(Kind::MessageStarted(_)) => "message_started",
            Some(Kind::ContentStarted(_)) => "content_started",
            Some(Kind::TextDelta(_)) => "text_delta",
            Some(Kind::ReasoningDelta(_)) => "reasoning_delta",
            Some(Kind::ContentFinished(_)) => "content_finished",
            Some(Kind::ToolCallStarted(_)) => "tool_call_started",
            Some(Kind::ToolCallOutput(_)) => "tool_call_output",
            Some(Kind::ToolCallFinished(_)) => "tool_call_finished",
            Some(Kind::ConfirmationRequested(_)) => "confirmation_requested",
            Some(Kind::ConfirmationResolved(_)) => "confirmation_resolved",
            Some(Kind::MessageCompleted(_)) => "message_completed",
            Some(Kind::TurnFinished(_)) => "turn_finished",
            Some(Kind::SessionUpdated(_)) => "session_updated",
            Some(Kind::SessionDeleted(_)) => "session_deleted",
            Some(Kind::Error(_)) => "error",
            Some(Kind::StreamReset(_)) => "stream_reset",
            Some(Kind::InputRequested(_)) => "input_requested",
            Some(Kind::InputResolved(_)) => "input_resolved",
            Some(Kind::ContextCompacted(_)) => "context_compacted",
            Some(Kind::FileChanged(_)) => "file_changed",
            None => "none",
        })
        .collect()
}

// ---- Helpers of the chat_* tests (agent runtime over ChatService) ----

pub type ChatClient = pb::chat_service_client::ChatServiceClient<Channel>;

/// A session with a permission mode (and the server's default model).
pub fn session_in_mode(title: &str, mode: pb::PermissionMode) -> pb::Session {
    pb::Session {
        display_name: title.to_owned(),
        permission_mode: mode.into(),
        ..Default::default()
    }
}

pub async fn create_in_mode(
    client: &mut SessionServiceClient<Channel>,
    title: &str,
    mode: pb::PermissionMode,
) -> pb::Session {
    client
        .create_session(pb::CreateSessionRequest {
            session: Some(session_in_mode(title, mode)),
        })
        .await
        .expect("create session")
        .into_inner()
}

/// SendMessage with one text part.
pub async fn send_text(
    chat: &mut ChatClient,
    session: &str,
    message: &str,
    on_busy: pb::BusyPolicy,
) -> Result<pb::SendMessageResponse, tonic::Status> {
    tokio::time::timeout(
        TIMEOUT,
        chat.send_message(pb::SendMessageRequest {
            session: session.to_owned(),
            parts: vec![text(message)],
            on_busy: on_busy.into(),
            model: String::new(),
        }),
    )
    .await
    .expect("SendMessage answers in time")
    .map(tonic::Response::into_inner)
}

/// The turn a SendMessage created (or joined).
pub fn sent_turn(response: &pb::SendMessageResponse) -> pb::Turn {
    response.turn.clone().expect("response has a turn")
}

/// StreamEvents from `after_sequence`.
pub async fn subscribe(
    chat: &mut ChatClient,
    session: &str,
    after_sequence: i64,
) -> tonic::Streaming<pb::SessionEvent> {
    tokio::time::timeout(
        TIMEOUT,
        chat.stream_events(pb::StreamEventsRequest {
            session: session.to_owned(),
            after_sequence,
        }),
    )
    .await
    .expect("StreamEvents answers in time")
    .expect("StreamEvents")
    .into_inner()
}

/// The turn of a turn_finished event.
pub fn finished(event: &pb::SessionEvent) -> Option<&pb::Turn> {
    match &event.kind {
        Some(pb::session_event::Kind::TurnFinished(f)) => f.turn.as_ref(),
        _ => None,
    }
}

/// Whether `event` is the turn_finished of the turn named `turn`.
pub fn finishes(turn: &str) -> impl Fn(&pb::SessionEvent) -> bool + '_ {
    move |event| finished(event).is_some_and(|t| t.name == turn)
}

/// Whether `event` is of the kind `kind` (as named by [`kinds`]).
pub fn is_kind(kind: &'static str) -> impl Fn(&pb::SessionEvent) -> bool {
    move |event| kinds(std::slice::from_ref(event))[0] == kind
}

/// The concatenated text parts of a message.
pub fn message_text(message: &pb::Message) -> String {
    message
        .parts
        .iter()
        .filter_map(|p| match &p.kind {
            Some(pb::part::Kind::Text(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Every message of a session, newest first (one page of up to 500).
pub async fn history(chat: &mut ChatClient, session: &str) -> Vec<pb::Message> {
    chat.list_messages(pb::ListMessagesRequest {
        parent: session.to_owned(),
        page_size: 500,
        ..Default::default()
    })
    .await
    .expect("ListMessages")
    .into_inner()
    .messages
}

pub async fn get_turn(chat: &mut ChatClient, turn: &str) -> pb::Turn {
    chat.get_turn(pb::GetTurnRequest {
        name: turn.to_owned(),
    })
    .await
    .expect("GetTurn")
    .into_inner()
}

/// `tok0 tok1 ... tok{n-1}`: the mock's reply with the option `tokens` n.
pub fn numbered_tokens(n: usize) -> String {
    (0..n)
        .map(|i| format!("tok{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One server-sent event.
#[derive(Clone, Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|err| panic!("SSE data is JSON ({err}): {}", self.data))
    }
}

/// Reads a `text/event-stream` body event by event (comments skipped).
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        use futures::StreamExt;
        Self {
            body: response.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` when the body ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("SSE is UTF-8");
                let mut event = SseEvent::default();
                let mut has_data = false;
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => event.id = Some(value.to_owned()),
                        "event" => event.event = Some(value.to_owned()),
                        "data" => {
                            if has_data {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                            has_data = true;
                        }
                        _ => {}
                    }
                }
                if has_data || event.event.is_some() {
                    return Some(event);
                }
                continue;
            }
            match tokio::time::timeout(TIMEOUT, self.body.next())
                .await
                .expect("SSE event in time")
            {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(err)) => panic!("SSE body: {err}"),
                None => return None,
            }
        }
    }
}

/// A connected channel to the server at `address` (`host:port`, plain HTTP/2), as
/// `spawn_serve` logs it; the timeout is a safety net.
pub async fn connect(address: &str) -> Channel {
    tokio::time::timeout(
        TIMEOUT,
        Channel::from_shared(format!("http://{address}"))
            .expect("url")
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects")
}

/// The real `octo` binary, with nothing from the developer's environment leaking in.
pub fn octo_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_octo"));
    for var in [
        "OCTO_TOKEN",
        "OCTO_SERVER",
        "OCTO_CONFIG",
        "OCTO_LISTEN",
        "RUST_LOG",
        "NO_COLOR",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
    ] {
        command.env_remove(var);
    }
    command.kill_on_drop(true);
    command
}

/// [`octo_command`] with HOME and the XDG config and data dirs under `home`.
pub fn octo_command_in(home: &std::path::Path) -> tokio::process::Command {
    let mut command = octo_command();
    with_home(&mut command, home);
    command
}

fn with_home(command: &mut tokio::process::Command, home: &std::path::Path) {
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"));
}

/// Starts `octo serve --listen 127.0.0.1:0 --log info <extra>` as a process with its
/// HOME and XDG dirs under `home`; returns it with the address it logged. Its log keeps
/// being drained so it never blocks on a full pipe.
pub async fn spawn_serve<S: AsRef<std::ffi::OsStr>>(
    home: &std::path::Path,
    extra: &[S],
) -> (tokio::process::Child, String) {
    spawn_serve_with(octo_command(), home, extra).await
}

/// [`spawn_serve`] from a prepared command (extra environment).
pub async fn spawn_serve_with<S: AsRef<std::ffi::OsStr>>(
    mut command: tokio::process::Command,
    home: &std::path::Path,
    extra: &[S],
) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    with_home(&mut command, home);
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "info"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn octo serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let address = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            if line.contains("octo listening")
                && let Some(rest) = line.split("address=").nth(1)
            {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("server logs its address in time")
    .expect("address in the log");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}
