//! Permission modes and confirmations: ASK asks for shell and writes (and shows pending
//! confirmations to late subscribers), ALLOW runs, DENY refuses to the model,
//! ALLOW_ALWAYS stops asking for that tool; READ_ONLY refuses anything but reads.

use crate::common;

use common::{
    ChatClient, SseReader, TestServer, collect_until, create_in_mode, finished, finishes, is_kind,
    send_text, sent_turn, streamed_text, subscribe,
};
use octo::pb;
use pb::session_event::Kind;

fn tool(name: &str, arguments: serde_json::Value) -> String {
    format!("/tool {name} {arguments}")
}

fn shell(command: &str) -> String {
    tool("shell", serde_json::json!({ "command": command }))
}

async fn respond(
    chat: &mut ChatClient,
    confirmation: &str,
    decision: pb::ConfirmationDecision,
) -> pb::Confirmation {
    chat.respond_to_confirmation(pb::RespondToConfirmationRequest {
        name: confirmation.to_owned(),
        decision: decision.into(),
    })
    .await
    .expect("respond")
    .into_inner()
    .confirmation
    .expect("confirmation")
}

fn requested(events: &[pb::SessionEvent]) -> pb::Confirmation {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ConfirmationRequested(r)) => r.confirmation.clone(),
            _ => None,
        })
        .expect("confirmation_requested")
}

fn tool_record(events: &[pb::SessionEvent]) -> pb::ToolCallRecord {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished")
}

async fn session(server: &TestServer, mode: pb::PermissionMode) -> (pb::Session, ChatClient) {
    let session = create_in_mode(&mut server.sessions().await, "perms", mode).await;
    (session, server.chat().await)
}

/// Sends `message` and collects the turn's events until it finishes or asks.
async fn start(
    chat: &mut ChatClient,
    watcher: &mut tonic::Streaming<pb::SessionEvent>,
    session: &str,
    message: &str,
) -> (pb::Turn, Vec<pb::SessionEvent>) {
    let turn = sent_turn(
        &send_text(chat, session, message, pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let name = turn.name.clone();
    let events = collect_until(watcher, move |e| {
        finishes(&name)(e) || is_kind("confirmation_requested")(e)
    })
    .await;
    (turn, events)
}

#[tokio::test]
async fn ask_shows_the_confirmation_to_a_new_subscriber_and_allow_runs_the_call() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(
        &mut chat,
        &mut watcher,
        &session.name,
        &shell("echo allowed"),
    )
    .await;
    let confirmation = requested(&events);
    assert_eq!(confirmation.turn, turn.name);
    assert!(
        confirmation
            .name
            .starts_with(&format!("{}/confirmations/", session.name)),
        "{}",
        confirmation.name
    );
    let call = confirmation.tool_call.clone().expect("call");
    assert_eq!(call.tool, "shell");
    assert!(!confirmation.reason.is_empty());

    // A client that connects now (a reconnect) sees it in its snapshot.
    drop(watcher);
    let mut late = subscribe(&mut chat, &session.name, 0).await;
    let first = late.message().await.expect("stream").expect("snapshot");
    let Some(Kind::Snapshot(snapshot)) = first.kind else {
        panic!("snapshot first");
    };
    assert_eq!(
        snapshot.pending_confirmations,
        std::slice::from_ref(&confirmation)
    );
    assert_eq!(
        snapshot.active_turn.as_ref().map(|t| t.name.as_str()),
        Some(turn.name.as_str())
    );
    let live = snapshot.session.expect("session");
    assert_eq!(live.status(), pb::SessionStatus::AwaitingConfirmation);

    let answered = respond(
        &mut chat,
        &confirmation.name,
        pb::ConfirmationDecision::Allow,
    )
    .await;
    assert_eq!(answered.name, confirmation.name);
    let events = collect_until(&mut late, finishes(&turn.name)).await;
    assert!(matches!(
        &events[0].kind,
        Some(Kind::ConfirmationResolved(r)) if r.confirmation == confirmation.name
            && r.decision() == pb::ConfirmationDecision::Allow
    ));
    let record = tool_record(&events);
    assert_eq!(record.status(), pb::ToolCallStatus::Succeeded);
    assert_eq!(record.result.expect("result").output, "allowed\n");
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );
    assert_eq!(
        streamed_text(&events).trim_end(),
        "Tool shell returned: allowed"
    );

    // Answered: a second answer finds nothing.
    let again = chat
        .respond_to_confirmation(pb::RespondToConfirmationRequest {
            name: confirmation.name.clone(),
            decision: pb::ConfirmationDecision::Deny.into(),
        })
        .await
        .expect_err("already answered");
    assert_eq!(again.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn confirmations_over_json_and_sse() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, _) = start(&mut chat, &mut watcher, &session.name, &shell("echo json")).await;

    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/v1/{}/events", server.url(), session.name))
        .send()
        .await
        .expect("events");
    let mut sse = SseReader::new(response);
    let snapshot = sse.next().await.expect("snapshot").json();
    let pending = &snapshot["snapshot"]["pendingConfirmations"][0];
    let name = pending["name"]
        .as_str()
        .expect("a pending confirmation")
        .to_owned();
    assert_eq!(pending["toolCall"]["tool"], "shell");

    let response = http
        .post(format!("{}/v1/{name}:respond", server.url()))
        .json(&serde_json::json!({"decision": "CONFIRMATION_DECISION_ALLOW"}))
        .send()
        .await
        .expect("respond");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["confirmation"]["name"], name.as_str());
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    assert_eq!(tool_record(&events).status(), pb::ToolCallStatus::Succeeded);
}

#[tokio::test]
async fn deny_refuses_the_call_and_tells_the_model() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let marker = server.dir.path().join("denied-marker");
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let command = format!("touch '{}'", marker.display());
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell(&command)).await;
    let confirmation = requested(&events);
    respond(
        &mut chat,
        &confirmation.name,
        pb::ConfirmationDecision::Deny,
    )
    .await;
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let record = tool_record(&events);
    assert_eq!(record.status(), pb::ToolCallStatus::Denied);
    let result = record.result.expect("result");
    assert!(result.is_error);
    assert!(!marker.exists(), "a denied command does not run");
    let reply = streamed_text(&events);
    assert!(
        reply.starts_with("Tool shell returned:") && reply.contains("denied"),
        "the model is told: {reply}"
    );
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );
}

#[tokio::test]
async fn allow_always_stops_asking_for_that_tool_in_the_session() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo one")).await;
    respond(
        &mut chat,
        &requested(&events).name,
        pb::ConfirmationDecision::AllowAlways,
    )
    .await;
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    assert_eq!(tool_record(&events).status(), pb::ToolCallStatus::Succeeded);

    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo two")).await;
    assert!(
        finishes(&turn.name)(events.last().expect("events")),
        "no confirmation: {:?}",
        common::kinds(&events)
    );
    let record = tool_record(&events);
    assert_eq!(record.status(), pb::ToolCallStatus::Succeeded);
    assert_eq!(record.result.expect("result").output, "two\n");

    // Another tool still asks.
    let write = tool(
        "write_file",
        serde_json::json!({"path": "a.txt", "content": "x"}),
    );
    let (_, events) = start(&mut chat, &mut watcher, &session.name, &write).await;
    assert!(
        is_kind("confirmation_requested")(events.last().expect("events")),
        "write_file still needs confirmation: {:?}",
        common::kinds(&events)
    );
}

/// Reads `octo_live_sessions` (live state in memory) from /metrics.
async fn live_sessions(server: &TestServer) -> i64 {
    let body = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    body.lines()
        .find_map(|l| l.strip_prefix("octo_live_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("octo_live_sessions in {body}"))
}

/// ALLOW_ALWAYS holds "for every later call of the same tool in this session", also
/// after the session's live state was dropped for being idle.
#[tokio::test]
async fn allow_always_survives_the_session_going_idle() {
    let server = TestServer::start_with(|config| config.session_idle_seconds = 1).await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo one")).await;
    respond(
        &mut chat,
        &requested(&events).name,
        pb::ConfirmationDecision::AllowAlways,
    )
    .await;
    collect_until(&mut watcher, finishes(&turn.name)).await;
    drop(watcher);
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    while live_sessions(&server).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session retires"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo two")).await;
    assert!(
        finishes(&turn.name)(events.last().expect("events")),
        "asked again after ALLOW_ALWAYS: {:?}",
        common::kinds(&events)
    );
}

#[tokio::test]
async fn ask_runs_read_tools_without_confirmation() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    std::fs::write(
        std::path::Path::new(&session.working_dir).join("notes.txt"),
        "remember this\n",
    )
    .expect("write");
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let read = tool("read_file", serde_json::json!({"path": "notes.txt"}));
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &read).await;
    assert!(finishes(&turn.name)(events.last().expect("events")));
    let record = tool_record(&events);
    assert_eq!(record.status(), pb::ToolCallStatus::Succeeded);
    assert!(
        record
            .result
            .expect("result")
            .output
            .contains("remember this")
    );
}

#[tokio::test]
async fn read_only_refuses_the_shell_and_still_reads() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::ReadOnly).await;
    let marker = server.dir.path().join("read-only-marker");
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let command = format!("touch '{}'", marker.display());
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell(&command)).await;
    assert!(
        finishes(&turn.name)(events.last().expect("events")),
        "no confirmation in READ_ONLY: {:?}",
        common::kinds(&events)
    );
    let record = tool_record(&events);
    assert_eq!(record.status(), pb::ToolCallStatus::Denied);
    assert!(record.result.expect("result").is_error);
    assert!(!marker.exists(), "the command did not run");
    let reply = streamed_text(&events);
    assert!(
        reply.contains("READ_ONLY"),
        "the model is told why: {reply}"
    );

    let write = tool(
        "write_file",
        serde_json::json!({"path": "a.txt", "content": "x"}),
    );
    let (_, events) = start(&mut chat, &mut watcher, &session.name, &write).await;
    assert_eq!(tool_record(&events).status(), pb::ToolCallStatus::Denied);
    assert!(
        !std::path::Path::new(&session.working_dir)
            .join("a.txt")
            .exists()
    );

    let list = tool("list_dir", serde_json::json!({}));
    let (_, events) = start(&mut chat, &mut watcher, &session.name, &list).await;
    assert_eq!(tool_record(&events).status(), pb::ToolCallStatus::Succeeded);
}

/// ALLOW_ALWAYS also holds after a server restart.
#[tokio::test]
async fn allow_always_survives_a_restart() {
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo one")).await;
    respond(
        &mut chat,
        &requested(&events).name,
        pb::ConfirmationDecision::AllowAlways,
    )
    .await;
    collect_until(&mut watcher, finishes(&turn.name)).await;
    drop((watcher, chat));
    let (dir, config) = server.stop().await;

    let server = TestServer::start_in(dir, config).await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo two")).await;
    assert!(
        finishes(&turn.name)(events.last().expect("events")),
        "asked again after ALLOW_ALWAYS and a restart: {:?}",
        common::kinds(&events)
    );
    assert_eq!(tool_record(&events).status(), pb::ToolCallStatus::Succeeded);
}

/// The time a person takes to approve a call is not the call's running time.
#[tokio::test]
async fn a_tool_calls_duration_is_its_running_time_not_the_wait_for_approval() {
    const THINKING: std::time::Duration = std::time::Duration::from_millis(1500);
    let server = TestServer::start().await;
    let (session, mut chat) = session(&server, pb::PermissionMode::Ask).await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = start(&mut chat, &mut watcher, &session.name, &shell("echo quick")).await;
    let confirmation = requested(&events);
    // The person reads the request before answering (the scenario, not a wait for
    // the server).
    tokio::time::sleep(THINKING).await;
    respond(
        &mut chat,
        &confirmation.name,
        pb::ConfirmationDecision::Allow,
    )
    .await;
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let duration = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.duration,
            _ => None,
        })
        .expect("tool_call_finished with a duration");
    let ran = std::time::Duration::new(duration.seconds as u64, duration.nanos as u32);
    assert!(
        ran < THINKING,
        "`echo` ran for {ran:?}, less than the {THINKING:?} spent deciding"
    );
    let record = tool_record(&events);
    let micros = |t: &Option<prost_types::Timestamp>| {
        let t = t.as_ref().expect("time");
        t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
    };
    let span = micros(&record.end_time) - micros(&record.start_time);
    assert!(
        span < THINKING.as_micros() as i64,
        "start_time is when it started running: {span} µs"
    );
}
