//! `octo chat`, `octo turns` and `octo cancel` as a user runs them: the real binary
//! against an in-process server whose default model is the deterministic `mock`.

use crate::common;

use std::process::Stdio;

use common::{TIMEOUT, TestServer};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

const ECHO_HI: &str = r#"/tool shell {"command":"echo hi"}"#;

fn octo(server: &TestServer) -> Command {
    let mut command = common::octo_command();
    command.arg("--server").arg(server.url());
    command
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `octo --server URL args...` with `stdin` as its input (closed when `None`).
async fn run(server: &TestServer, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = octo(server);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("octo runs");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).await.expect("write stdin");
        // Dropping it closes the pipe: the end of input.
        drop(input);
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("octo finishes in time")
        .expect("octo output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A session made with `octo sessions create`; returns its id.
async fn create_session(server: &TestServer, extra: &[&str]) -> String {
    let mut args = vec!["--json", "sessions", "create"];
    args.extend_from_slice(extra);
    let created = run(server, &args, None).await;
    assert_eq!(created.code, Some(0), "{created:?}");
    let session: serde_json::Value = serde_json::from_str(&created.stdout).expect("json");
    session["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("sessions/"))
        .expect("name")
        .to_owned()
}

#[tokio::test]
async fn chat_new_prints_the_reply_and_exits_zero() {
    let server = TestServer::start().await;
    let chat = run(&server, &["chat", "--new", "hello"], None).await;
    assert_eq!(chat.code, Some(0), "{chat:?}");
    assert_eq!(chat.stdout, "Echo: hello\n");
    let id = chat
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("Created session "))
        .expect("the new session's id on stderr")
        .to_owned();
    assert!(
        chat.stderr.contains("[succeeded · mock · "),
        "summary: {}",
        chat.stderr
    );

    // The session is a MANUAL one titled after the message.
    let shown = run(&server, &["--json", "sessions", "show", &id], None).await;
    let session: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(session["displayName"], "hello");
    assert_eq!(session["source"], "SESSION_SOURCE_MANUAL");

    // Without --session, chat makes a new session too.
    let again = run(&server, &["chat", "hello", "again"], None).await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stdout, "Echo: hello again\n");
    assert!(
        again.stderr.contains("Created session "),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn auto_approved_tool_calls_show_the_call_its_output_and_the_reply() {
    let server = TestServer::start().await;
    let id = create_session(&server, &["--permission-mode", "auto-approve"]).await;
    let chat = run(&server, &["chat", "--session", &id, ECHO_HI], None).await;
    assert_eq!(chat.code, Some(0), "{chat:?}");
    let lines: Vec<&str> = chat.stdout.lines().collect();
    assert_eq!(
        lines[0], r#"⚙ shell {"command":"echo hi"}"#,
        "{}",
        chat.stdout
    );
    assert_eq!(lines[1], "  hi", "{}", chat.stdout);
    assert!(lines[2].starts_with("✓ shell (exit 0, "), "{}", chat.stdout);
    assert!(
        lines[3].starts_with("Tool shell returned: hi"),
        "{}",
        chat.stdout
    );
    assert!(!chat.stderr.contains("Allow shell"), "{}", chat.stderr);
    assert!(!chat.stderr.contains("Created session"), "{}", chat.stderr);
}

#[tokio::test]
async fn ask_mode_prompts_and_follows_the_answer_from_stdin() {
    let server = TestServer::start().await;
    let id = create_session(&server, &[]).await;

    let denied = run(&server, &["chat", "--session", &id, ECHO_HI], Some("n\n")).await;
    assert_eq!(denied.code, Some(0), "{denied:?}");
    assert!(
        denied
            .stderr
            .contains(r#"Allow shell {"command":"echo hi"}? [y]es/[n]o/[a]lways: n"#),
        "{}",
        denied.stderr
    );
    assert!(
        denied
            .stdout
            .contains("✗ shell denied: the user denied this tool call"),
        "{}",
        denied.stdout
    );
    assert!(
        !denied.stdout.lines().any(|l| l == "  hi"),
        "{}",
        denied.stdout
    );

    let allowed = run(&server, &["chat", "--session", &id, ECHO_HI], Some("y\n")).await;
    assert_eq!(allowed.code, Some(0), "{allowed:?}");
    assert!(
        allowed.stderr.contains("[y]es/[n]o/[a]lways: y"),
        "{}",
        allowed.stderr
    );
    assert!(
        allowed.stdout.lines().any(|l| l == "  hi"),
        "{}",
        allowed.stdout
    );
    assert!(
        allowed.stdout.contains("✓ shell (exit 0"),
        "{}",
        allowed.stdout
    );
    assert!(
        allowed.stdout.contains("Tool shell returned: hi"),
        "{}",
        allowed.stdout
    );

    // No input at all: denied, and said so.
    let closed = run(&server, &["chat", "--session", &id, ECHO_HI], None).await;
    assert_eq!(closed.code, Some(0), "{closed:?}");
    assert!(
        closed
            .stderr
            .contains("no answer (stdin is closed): denying shell"),
        "{}",
        closed.stderr
    );
    assert!(
        closed.stdout.contains("✗ shell denied"),
        "{}",
        closed.stdout
    );

    // The turns are listed, newest first.
    let listed = run(&server, &["turns", "list", &id], None).await;
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", listed.stdout);
    assert!(
        lines[0].starts_with("TURN  ") && lines[0].contains("TOKENS IN/OUT"),
        "{}",
        listed.stdout
    );
    for row in &lines[1..] {
        assert!(row.contains("  succeeded  mock  "), "{}", listed.stdout);
    }

    // And one shows in detail, with its tool call.
    let listed = run(&server, &["--json", "turns", "list", &id], None).await;
    let turns: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    let newest = turns["turns"][0]["name"].as_str().expect("name").to_owned();
    let shown = run(&server, &["turns", "show", &newest], None).await;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    assert!(shown.stdout.contains("succeeded"), "{}", shown.stdout);
    assert!(
        shown
            .stdout
            .contains(r#"shell {"command":"echo hi"}: denied"#),
        "{}",
        shown.stdout
    );
}

#[tokio::test]
async fn json_prints_one_event_per_line_ending_with_turn_finished() {
    let server = TestServer::start().await;
    let chat = run(&server, &["--json", "chat", "--new", "hello"], None).await;
    assert_eq!(chat.code, Some(0), "{chat:?}");
    let events: Vec<serde_json::Value> = chat
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    assert!(events.len() > 3, "{}", chat.stdout);
    assert!(events.iter().all(serde_json::Value::is_object));
    let text: String = events
        .iter()
        .filter_map(|e| e["textDelta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Echo: hello");
    let last = events.last().expect("events");
    assert_eq!(
        last["turnFinished"]["turn"]["status"], "TURN_STATUS_SUCCEEDED",
        "{last}"
    );
}

#[tokio::test]
async fn ctrl_c_cancels_the_running_turn_and_exits_130() {
    let server = TestServer::start().await;
    let id = create_session(&server, &["--permission-mode", "auto-approve"]).await;
    let mut child = octo(&server)
        .args([
            "chat",
            "--session",
            &id,
            r#"/tool shell {"command":"sleep 60"}"#,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn octo chat");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The tool line means the turn runs (and the Ctrl-C handler is in place).
    let tool_line = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .expect("tool line in time")
        .expect("read")
        .expect("a line");
    assert_eq!(tool_line, r#"⚙ shell {"command":"sleep 60"}"#);

    let pid = child.id().expect("pid");
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    let mut rest = String::new();
    while let Some(line) = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .expect("output in time")
        .expect("read")
    {
        rest.push_str(&line);
        rest.push('\n');
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("stderr");
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(rest.contains("✗ shell cancelled"), "{rest}");
    assert!(stderr.contains("cancelling the turn"), "{stderr}");
    assert!(stderr.contains("[cancelled"), "{stderr}");

    // The turn is recorded as cancelled; cancelling it again reports that.
    let listed = run(&server, &["--json", "turns", "list", &id], None).await;
    let turns: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    assert_eq!(turns["turns"][0]["status"], "TURN_STATUS_CANCELLED");
    let name = turns["turns"][0]["name"].as_str().expect("name").to_owned();
    let turn_id = name.rsplit('/').next().expect("id").to_owned();
    let cancelled = run(&server, &["cancel", &turn_id, "--session", &id], None).await;
    assert_eq!(cancelled.code, Some(0), "{cancelled:?}");
    assert_eq!(cancelled.stdout, format!("Turn {turn_id}: cancelled\n"));
}

#[tokio::test]
async fn a_failed_turn_exits_one_with_the_reason() {
    let server = TestServer::start().await;
    let chat = run(&server, &["chat", "--new", "/error boom"], None).await;
    assert_eq!(chat.code, Some(1), "{chat:?}");
    assert!(chat.stderr.contains("[failed"), "{}", chat.stderr);
    assert!(
        chat.stderr.contains("error: turn failed: ") && chat.stderr.contains("boom"),
        "{}",
        chat.stderr
    );
}
