//! MCP tool servers end to end: a real Octo server runs the reference MCP server
//! (`@modelcontextprotocol/server-everything`, pinned in .ci/package.json and installed
//! by .ci/setup) as a child process over stdio, or as a separate process over
//! Streamable HTTP; the mock model calls its tools as `everything__<tool>`. Covers
//! results, progress as tool_call_output, the tool environment allow-list, ASK
//! confirmation of a write tool, READ_ONLY refusal, a server killed mid-call (a tool
//! error, then a restart), and CancelTurn mid-call (notifications/cancelled reaches the
//! server).

use crate::common;

use std::{path::PathBuf, time::Duration};

use common::{
    ChatClient, TIMEOUT, TestServer, collect_until, create_in_mode, finished, finishes, is_kind,
    send_text, sent_turn, streamed_text, subscribe,
};
use octo::{config::McpConfig, pb};
use pb::session_event::Kind;

/// The reference server's entry point, as .ci/setup installs it.
fn everything() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        path.is_file(),
        "{} is missing: run `bash .ci/setup`",
        path.display()
    );
    path
}

fn stdio_server() -> McpConfig {
    let mut server = McpConfig::stdio("node", &[&everything().display().to_string(), "stdio"]);
    server
        .env
        .insert("OCTO_MCP_TEST".into(), "from-config".into());
    server
}

async fn start(server: McpConfig) -> TestServer {
    TestServer::start_with(move |config| {
        config.mcp.insert("everything".into(), server);
    })
    .await
}

fn call(tool: &str, arguments: serde_json::Value) -> String {
    format!("/tool everything__{tool} {arguments}")
}

/// Sends `message` and collects its turn's events until it finishes (or asks, when
/// `until_confirmation`).
async fn run_turn(
    chat: &mut ChatClient,
    session: &str,
    message: &str,
    until_confirmation: bool,
) -> (pb::Turn, Vec<pb::SessionEvent>) {
    let mut watcher = subscribe(chat, session, 0).await;
    let turn = sent_turn(
        &send_text(chat, session, message, pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let name = turn.name.clone();
    let events = collect_until(&mut watcher, move |e| {
        finishes(&name)(e) || (until_confirmation && is_kind("confirmation_requested")(e))
    })
    .await;
    (turn, events)
}

fn record(events: &[pb::SessionEvent]) -> pb::ToolCallRecord {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished")
}

fn outputs(events: &[pb::SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::ToolCallOutput(o)) => Some(o.text.clone()),
            _ => None,
        })
        .collect()
}

fn output(record: &pb::ToolCallRecord) -> String {
    record.result.as_ref().expect("result").output.clone()
}

fn status_of(events: &[pb::SessionEvent]) -> pb::TurnStatus {
    finished(events.last().expect("events"))
        .expect("turn_finished")
        .status()
}

#[tokio::test]
async fn a_stdio_server_tool_runs_end_to_end_with_progress_and_the_tool_env() {
    let server = start(stdio_server()).await;
    let session =
        create_in_mode(&mut server.sessions().await, "mcp", pb::PermissionMode::Ask).await;
    let mut chat = server.chat().await;

    // echo is annotated read-only: it runs in ASK mode without asking.
    let (_, events) = run_turn(
        &mut chat,
        &session.name,
        &call("echo", serde_json::json!({"message": "hi there"})),
        false,
    )
    .await;
    let echoed = record(&events);
    assert_eq!(echoed.call.as_ref().expect("call").tool, "everything__echo");
    assert_eq!(echoed.status(), pb::ToolCallStatus::Succeeded);
    assert_eq!(output(&echoed), "Echo: hi there");
    assert_eq!(status_of(&events), pb::TurnStatus::Succeeded);
    assert_eq!(
        streamed_text(&events).trim_end(),
        "Tool everything__echo returned: Echo: hi there"
    );
    assert!(
        !events.iter().any(|e| is_kind("confirmation_requested")(e)),
        "a read-only MCP tool runs without asking"
    );

    // Progress notifications stream as tool_call_output.
    let (_, events) = run_turn(
        &mut chat,
        &session.name,
        &call(
            "trigger-long-running-operation",
            serde_json::json!({"duration": 0.2, "steps": 2}),
        ),
        false,
    )
    .await;
    assert_eq!(record(&events).status(), pb::ToolCallStatus::Succeeded);
    assert_eq!(outputs(&events), ["progress 1/2\n", "progress 2/2\n"]);

    // The server's process got the allow-list plus its own env, nothing else of ours.
    let (_, events) = run_turn(
        &mut chat,
        &session.name,
        &call("get-env", serde_json::json!({})),
        false,
    )
    .await;
    let env = output(&record(&events));
    let env: serde_json::Value = serde_json::from_str(&env).expect("get-env answers JSON");
    assert_eq!(env["OCTO_MCP_TEST"], "from-config");
    assert!(env["PATH"].is_string(), "{env}");
    assert!(
        env.get("CARGO_MANIFEST_DIR").is_none(),
        "the test process's own environment leaked: {env}"
    );
}

#[tokio::test]
async fn ask_confirms_a_write_tool_and_read_only_refuses_it() {
    let server = start(stdio_server()).await;
    let mut sessions = server.sessions().await;
    let mut chat = server.chat().await;
    let toggle = call("toggle-simulated-logging", serde_json::json!({}));

    let ask = create_in_mode(&mut sessions, "ask", pb::PermissionMode::Ask).await;
    let (turn, events) = run_turn(&mut chat, &ask.name, &toggle, true).await;
    let confirmation = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ConfirmationRequested(r)) => r.confirmation.clone(),
            _ => None,
        })
        .expect("a write MCP tool asks in ASK mode");
    assert_eq!(
        confirmation.tool_call.expect("call").tool,
        "everything__toggle-simulated-logging"
    );
    let mut watcher = subscribe(&mut chat, &ask.name, 0).await;
    chat.respond_to_confirmation(pb::RespondToConfirmationRequest {
        name: confirmation.name.clone(),
        decision: pb::ConfirmationDecision::Allow.into(),
    })
    .await
    .expect("respond");
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let toggled = record(&events);
    assert_eq!(toggled.status(), pb::ToolCallStatus::Succeeded);
    assert!(output(&toggled).contains("logging"), "{}", output(&toggled));

    let read_only = create_in_mode(&mut sessions, "ro", pb::PermissionMode::ReadOnly).await;
    let (_, events) = run_turn(&mut chat, &read_only.name, &toggle, false).await;
    let refused = record(&events);
    assert_eq!(refused.status(), pb::ToolCallStatus::Denied);
    assert!(
        output(&refused).contains("READ_ONLY"),
        "{}",
        output(&refused)
    );
    // A read-only tool still runs there.
    let (_, events) = run_turn(
        &mut chat,
        &read_only.name,
        &call("get-sum", serde_json::json!({"a": 2, "b": 3})),
        false,
    )
    .await;
    let sum = record(&events);
    assert_eq!(sum.status(), pb::ToolCallStatus::Succeeded);
    assert!(output(&sum).contains('5'), "{}", output(&sum));
}

/// The pid a wrapper shell wrote before exec'ing the server, once it is `not` (a restart
/// writes a new one).
async fn server_pid(pid_file: &std::path::Path, not: Option<i32>) -> i32 {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Ok(text) = tokio::fs::read_to_string(pid_file).await
                && let Ok(pid) = text.trim().parse::<i32>()
                && Some(pid) != not
            {
                return pid;
            }
            // Polls a file another process writes: nothing to wait on but the file.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the MCP server wrote its pid")
}

#[tokio::test]
async fn a_server_killed_mid_call_fails_the_call_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let script = format!(
        "echo $$ > '{}.tmp' && mv '{}.tmp' '{}' && exec node '{}' stdio",
        pid_file.display(),
        pid_file.display(),
        pid_file.display(),
        everything().display()
    );
    let server = start(McpConfig::stdio("sh", &["-c", &script])).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "crash",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            &call(
                "trigger-long-running-operation",
                serde_json::json!({"duration": 60, "steps": 60}),
            ),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    // The call is under way once its first progress arrives.
    collect_until(&mut watcher, is_kind("tool_call_output")).await;
    let pid = server_pid(&pid_file, None).await;
    // SAFETY: kill(2) on a pid this test's server started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let failed = record(&events);
    assert_eq!(failed.status(), pb::ToolCallStatus::Failed);
    assert!(output(&failed).contains("went away"), "{}", output(&failed));
    assert_eq!(status_of(&events), pb::TurnStatus::Succeeded);

    // Restarted with backoff: a new process, and its tools work again.
    server_pid(&pid_file, Some(pid)).await;
    let (_, events) = run_turn(
        &mut chat,
        &session.name,
        &call("echo", serde_json::json!({"message": "back"})),
        false,
    )
    .await;
    let echoed = record(&events);
    assert_eq!(
        echoed.status(),
        pb::ToolCallStatus::Succeeded,
        "{}",
        output(&echoed)
    );
    assert_eq!(output(&echoed), "Echo: back");
}

#[tokio::test]
async fn cancel_turn_stops_an_mcp_call_at_once_and_tells_the_server() {
    // The real server behind `tee`: what Octo sends it is logged on the way.
    let dir = tempfile::tempdir().expect("tempdir");
    let sent = dir.path().join("sent.jsonl");
    let script = format!(
        "tee -a '{}' | node '{}' stdio",
        sent.display(),
        everything().display()
    );
    let server = start(McpConfig::stdio("sh", &["-c", &script])).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "cancel",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            &call(
                "trigger-long-running-operation",
                serde_json::json!({"duration": 60, "steps": 60}),
            ),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    collect_until(&mut watcher, is_kind("tool_call_output")).await;
    let started = std::time::Instant::now();
    chat.cancel_turn(pb::CancelTurnRequest {
        name: turn.name.clone(),
    })
    .await
    .expect("CancelTurn");
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    assert_eq!(record(&events).status(), pb::ToolCallStatus::Cancelled);
    assert_eq!(status_of(&events), pb::TurnStatus::Cancelled);
    // Well before the 60 s operation would have ended.
    assert!(started.elapsed() < Duration::from_secs(20));
    // The server was told: notifications/cancelled for the tools/call's request id.
    let cancelled = tokio::time::timeout(TIMEOUT, async {
        loop {
            let log = tokio::fs::read_to_string(&sent).await.unwrap_or_default();
            let messages: Vec<serde_json::Value> = log
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect();
            let call_id = messages
                .iter()
                .find(|m| m["method"] == "tools/call")
                .map(|m| m["id"].clone());
            if let Some(note) = messages
                .iter()
                .find(|m| m["method"] == "notifications/cancelled")
            {
                return (note.clone(), call_id);
            }
            // Polls a file another process writes: nothing to wait on but the file.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("notifications/cancelled reached the server");
    let (note, call_id) = cancelled;
    assert_eq!(Some(note["params"]["requestId"].clone()), call_id, "{note}");

    // The connection survives the cancellation: the next call works.
    let (_, events) = run_turn(
        &mut chat,
        &session.name,
        &call("echo", serde_json::json!({"message": "still here"})),
        false,
    )
    .await;
    assert_eq!(output(&record(&events)), "Echo: still here");
}

/// `server-everything streamableHttp` as a process of this test, on a free loopback port
/// (`PORT`; it cannot pick one itself and report it), once it listens.
struct HttpEverything {
    child: tokio::process::Child,
    port: u16,
}

impl HttpEverything {
    async fn start(port: Option<u16>) -> HttpEverything {
        use tokio::io::{AsyncBufReadExt, BufReader};
        for _ in 0..5 {
            let port = port.unwrap_or_else(|| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port()
            });
            let mut child = tokio::process::Command::new("node")
                .arg(everything())
                .arg("streamableHttp")
                .env("PORT", port.to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("node runs");
            let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
            let listening = tokio::time::timeout(TIMEOUT, async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("listening on port") {
                        return true;
                    }
                    if line.contains("already in use") {
                        return false;
                    }
                }
                false
            })
            .await
            .expect("the HTTP server starts in time");
            if listening {
                // Keep draining its stderr so it never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return HttpEverything { child, port };
            }
            // Another process took the port between the probe and node's bind.
            let _ = child.kill().await;
        }
        panic!("no free port for the HTTP MCP server after 5 tries");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

fn http_server(url: &str) -> McpConfig {
    McpConfig {
        url: Some(url.to_owned()),
        headers: [("X-Octo-Test".to_owned(), "yes".to_owned())].into(),
        enabled: true,
        ..McpConfig::default()
    }
}

#[tokio::test]
async fn a_streamable_http_server_runs_tools_and_comes_back_after_a_crash() {
    let mut remote = HttpEverything::start(None).await;
    let server = start(http_server(&remote.url())).await;
    let mut sessions = server.sessions().await;
    let mut chat = server.chat().await;

    let ask = create_in_mode(&mut sessions, "http", pb::PermissionMode::Ask).await;
    let (_, events) = run_turn(
        &mut chat,
        &ask.name,
        &call("echo", serde_json::json!({"message": "over http"})),
        false,
    )
    .await;
    let echoed = record(&events);
    assert_eq!(
        echoed.status(),
        pb::ToolCallStatus::Succeeded,
        "{}",
        output(&echoed)
    );
    assert_eq!(output(&echoed), "Echo: over http");
    let (_, events) = run_turn(
        &mut chat,
        &ask.name,
        &call(
            "trigger-long-running-operation",
            serde_json::json!({"duration": 0.2, "steps": 2}),
        ),
        false,
    )
    .await;
    assert_eq!(outputs(&events), ["progress 1/2\n", "progress 2/2\n"]);
    // The write tool asks here too.
    let (asking, events) = run_turn(
        &mut chat,
        &ask.name,
        &call("toggle-simulated-logging", serde_json::json!({})),
        true,
    )
    .await;
    assert!(events.iter().any(|e| is_kind("confirmation_requested")(e)));
    chat.cancel_turn(pb::CancelTurnRequest { name: asking.name })
        .await
        .expect("cancel");

    // Killed mid-call: the call fails at once (not at the tool timeout).
    let auto = create_in_mode(&mut sessions, "auto", pb::PermissionMode::AutoApprove).await;
    let mut watcher = subscribe(&mut chat, &auto.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &auto.name,
            &call(
                "trigger-long-running-operation",
                serde_json::json!({"duration": 60, "steps": 60}),
            ),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    collect_until(&mut watcher, is_kind("tool_call_output")).await;
    remote.child.kill().await.expect("kill");
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let failed = record(&events);
    assert_eq!(
        failed.status(),
        pb::ToolCallStatus::Failed,
        "{}",
        output(&failed)
    );
    assert!(output(&failed).contains("went away"), "{}", output(&failed));

    // Back on the same port: the connection is restarted and the tools work again.
    let _remote = HttpEverything::start(Some(remote.port)).await;
    let mut mcp =
        octo::pb::mcp_server_service_client::McpServerServiceClient::new(server.channel().await);
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let got = mcp
                .get_mcp_server(pb::GetMcpServerRequest {
                    name: "mcpServers/everything".into(),
                })
                .await
                .expect("get")
                .into_inner();
            let status = got.status.expect("status");
            if status.state() == pb::McpServerState::Connected && status.restarts > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("reconnected");
    let (_, events) = run_turn(
        &mut chat,
        &auto.name,
        &call("echo", serde_json::json!({"message": "again"})),
        false,
    )
    .await;
    assert_eq!(output(&record(&events)), "Echo: again");
}
