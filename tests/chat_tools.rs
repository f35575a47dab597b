//! The built-in tools as the agent runs them through the server (AUTO_APPROVE, the mock
//! model calling them): file tools round trip in the working dir, paths cannot escape
//! it, failures and timeouts are reported to the model, and the step limit holds.

use crate::common;

use common::{
    ChatClient, TestServer, collect_until, create_in_mode, finished, is_turn_finished,
    streamed_text, text,
};
use octo::pb;
use serde_json::json;

struct Run {
    record: pb::ToolCallRecord,
    turn: pb::Turn,
    reply: String,
}

/// One Chat turn calling `tool` with `arguments`.
async fn call(chat: &mut ChatClient, session: &str, tool: &str, arguments: &str) -> Run {
    let mut stream = chat
        .chat(pb::ChatRequest {
            session: session.to_owned(),
            parts: vec![text(&format!("/tool {tool} {arguments}"))],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = collect_until(&mut stream, is_turn_finished).await;
    let record = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished");
    Run {
        record,
        turn: finished(events.last().expect("events"))
            .expect("turn")
            .clone(),
        reply: streamed_text(&events),
    }
}

fn output(run: &Run) -> String {
    run.record.result.clone().expect("result").output
}

async fn auto(server: &TestServer) -> (pb::Session, ChatClient) {
    let session = create_in_mode(
        &mut server.sessions().await,
        "tools",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    (session, server.chat().await)
}

#[tokio::test]
async fn file_tools_round_trip_in_the_working_dir() {
    let server = TestServer::start().await;
    let (session, mut chat) = auto(&server).await;
    let dir = std::path::PathBuf::from(&session.working_dir);

    let write = json!({"path": "notes/a.txt", "content": "hello world\n"}).to_string();
    let run = call(&mut chat, &session.name, "write_file", &write).await;
    assert_eq!(
        run.record.status(),
        pb::ToolCallStatus::Succeeded,
        "{}",
        output(&run)
    );
    assert_eq!(run.turn.status(), pb::TurnStatus::Succeeded);
    assert_eq!(
        std::fs::read_to_string(dir.join("notes/a.txt")).expect("written"),
        "hello world\n"
    );

    let edit = json!({"path": "notes/a.txt", "old_string": "world", "new_string": "octo"});
    let run = call(&mut chat, &session.name, "edit_file", &edit.to_string()).await;
    assert_eq!(
        run.record.status(),
        pb::ToolCallStatus::Succeeded,
        "{}",
        output(&run)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes/a.txt")).expect("edited"),
        "hello octo\n"
    );

    let run = call(
        &mut chat,
        &session.name,
        "read_file",
        r#"{"path":"notes/a.txt"}"#,
    )
    .await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Succeeded);
    assert!(output(&run).contains("hello octo"), "{}", output(&run));
    assert!(
        run.reply.starts_with("Tool read_file returned:"),
        "{}",
        run.reply
    );

    let run = call(&mut chat, &session.name, "grep", r#"{"pattern":"oct."}"#).await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Succeeded);
    assert!(output(&run).contains("notes/a.txt"), "{}", output(&run));

    let run = call(
        &mut chat,
        &session.name,
        "glob",
        r#"{"pattern":"**/*.txt"}"#,
    )
    .await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Succeeded);
    assert!(output(&run).contains("notes/a.txt"), "{}", output(&run));

    let run = call(&mut chat, &session.name, "list_dir", r#"{"path":"notes"}"#).await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Succeeded);
    assert!(output(&run).contains("a.txt"), "{}", output(&run));
}

#[tokio::test]
async fn paths_outside_the_working_dir_are_refused() {
    let server = TestServer::start().await;
    let (session, mut chat) = auto(&server).await;
    let outside = server.dir.path().join("outside.txt");
    std::fs::write(&outside, "secret\n").expect("write");

    let run = call(
        &mut chat,
        &session.name,
        "read_file",
        &json!({"path": "../../outside.txt"}).to_string(),
    )
    .await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Failed);
    assert!(run.record.result.as_ref().expect("result").is_error);
    assert!(!output(&run).contains("secret"), "{}", output(&run));
    assert_eq!(
        run.turn.status(),
        pb::TurnStatus::Succeeded,
        "the turn goes on"
    );

    let target = server.dir.path().join("written-outside.txt");
    let run = call(
        &mut chat,
        &session.name,
        "write_file",
        &json!({"path": target, "content": "x"}).to_string(),
    )
    .await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Failed);
    assert!(!target.exists(), "nothing written outside");
}

#[tokio::test]
async fn failures_are_reported_to_the_model() {
    let server = TestServer::start().await;
    let (session, mut chat) = auto(&server).await;

    let run = call(
        &mut chat,
        &session.name,
        "shell",
        r#"{"command":"echo oops >&2; exit 3"}"#,
    )
    .await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Failed);
    assert_eq!(run.record.exit_code, Some(3));
    assert!(output(&run).contains("oops"), "{}", output(&run));
    assert_eq!(run.turn.status(), pb::TurnStatus::Succeeded);

    let run = call(&mut chat, &session.name, "no_such_tool", "{}").await;
    assert!(run.record.result.as_ref().expect("result").is_error);
    assert!(
        matches!(
            run.record.status(),
            pb::ToolCallStatus::Failed | pb::ToolCallStatus::Denied
        ),
        "{:?}",
        run.record
    );
    assert!(output(&run).contains("no_such_tool"), "{}", output(&run));
    assert_eq!(run.turn.status(), pb::TurnStatus::Succeeded);

    let run = call(&mut chat, &session.name, "shell", r#"{"cmd":"echo hi"}"#).await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Failed);
    assert!(
        output(&run).contains("command"),
        "says what is wrong: {}",
        output(&run)
    );
}

#[tokio::test]
async fn a_tool_timeout_stops_the_command_and_the_turn_goes_on() {
    let server = TestServer::start_with(|config| config.tool_timeout_seconds = 1).await;
    let (session, mut chat) = auto(&server).await;
    let run = call(
        &mut chat,
        &session.name,
        "shell",
        r#"{"command":"sleep 30"}"#,
    )
    .await;
    assert_eq!(
        run.record.status(),
        pb::ToolCallStatus::Cancelled,
        "{:?}",
        run.record
    );
    assert!(output(&run).contains("timed out"), "{}", output(&run));
    assert_eq!(run.turn.status(), pb::TurnStatus::Succeeded);
    assert!(run.reply.contains("timed out"), "{}", run.reply);
}

#[tokio::test]
async fn the_step_limit_fails_the_turn() {
    let server = TestServer::start_with(|config| config.max_steps = 1).await;
    let (session, mut chat) = auto(&server).await;
    let run = call(
        &mut chat,
        &session.name,
        "shell",
        r#"{"command":"echo hi"}"#,
    )
    .await;
    assert_eq!(run.record.status(), pb::ToolCallStatus::Succeeded);
    assert_eq!(run.turn.status(), pb::TurnStatus::Failed);
    assert_eq!(run.turn.step_count, 1);
    assert_eq!(
        run.turn.error.as_ref().map(|e| e.reason.as_str()),
        Some("STEP_LIMIT")
    );
}
