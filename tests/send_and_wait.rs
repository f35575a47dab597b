//! SendMessageAndWait (one request, the ended turn and its answer back) over gRPC and
//! the JSON mapping, and `octo run` on top of it, against an in-process server whose
//! default model is the deterministic `mock`; `slow` streams 1000 tokens 20 ms apart
//! (20 s), to outlive a short wait.

use crate::common;

use common::{TIMEOUT, TestServer, create, text};
use octo::{config::ModelConfig, pb};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        let mut slow = ModelConfig::mock();
        slow.options.insert("tokens".into(), json!(1000));
        slow.options.insert("token_delay_ms".into(), json!(20));
        config.models.insert("slow".into(), slow);
    })
    .await
}

fn reply_text(message: &pb::Message) -> String {
    common::message_text(message)
}

#[tokio::test]
async fn one_request_answers_with_the_ended_turn_and_its_reply() {
    let server = server().await;
    let session = create(&mut server.sessions().await, "wait").await;
    let mut chat = server.chat().await;
    let answered = chat
        .send_message_and_wait(pb::SendMessageAndWaitRequest {
            session: session.name.clone(),
            parts: vec![text("hello there")],
            ..Default::default()
        })
        .await
        .expect("send and wait")
        .into_inner();
    let turn = answered.turn.expect("turn");
    assert_eq!(turn.status(), pb::TurnStatus::Succeeded);
    assert!(turn.usage.is_some_and(|u| u.output_tokens == 3));
    assert_eq!(answered.replies.len(), 1, "{:?}", answered.replies);
    assert_eq!(reply_text(&answered.replies[0]), "Echo: hello there");
    assert_eq!(answered.replies[0].turn, turn.name);
    assert_eq!(
        common::message_text(answered.message.as_ref().expect("message")),
        "hello there"
    );

    // A tool-using turn: the replies hold the call and the final answer, oldest first.
    let answered = chat
        .send_message_and_wait(pb::SendMessageAndWaitRequest {
            session: session.name.clone(),
            parts: vec![text(r#"/tool list_dir {}"#)],
            ..Default::default()
        })
        .await
        .expect("a tool turn")
        .into_inner();
    assert_eq!(
        answered.turn.as_ref().expect("turn").status(),
        pb::TurnStatus::Succeeded
    );
    assert!(answered.replies.len() >= 2, "{:?}", answered.replies);
    let first = &answered.replies[0];
    assert!(
        first
            .parts
            .iter()
            .any(|p| matches!(p.kind, Some(pb::part::Kind::ToolCall(_)))),
        "the first reply calls the tool: {first:?}"
    );
}

#[tokio::test]
async fn a_turn_outliving_the_wait_goes_on_and_the_error_names_it() {
    let server = server().await;
    let session = create(&mut server.sessions().await, "slow").await;
    let mut chat = server.chat().await;
    let status = chat
        .send_message_and_wait(pb::SendMessageAndWaitRequest {
            session: session.name.clone(),
            parts: vec![text("take your time")],
            model: "models/slow".into(),
            timeout: Some(prost_types::Duration {
                seconds: 0,
                nanos: 300_000_000,
            }),
            ..Default::default()
        })
        .await
        .expect_err("the wait runs out");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(common::reason(&status), "TURN_STILL_RUNNING");
    assert!(status.message().contains("StreamEvents"), "{status:?}");
    // The turn named in the message still runs.
    let turn = status
        .message()
        .split_whitespace()
        .find(|w| w.contains("/turns/"))
        .expect("the turn's name")
        .to_owned();
    let running = common::get_turn(&mut chat, &turn).await;
    assert_eq!(running.status(), pb::TurnStatus::Running, "{running:?}");

    // Bad waits are refused, naming the field.
    let status = chat
        .send_message_and_wait(pb::SendMessageAndWaitRequest {
            session: session.name.clone(),
            parts: vec![text("x")],
            timeout: Some(prost_types::Duration {
                seconds: 7200,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect_err("two hours is too long");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(common::violated_fields(&status), ["timeout"]);
}

#[tokio::test]
async fn over_json_it_is_one_post_with_one_answer() {
    let server = server().await;
    let session = create(&mut server.sessions().await, "json").await;
    let http = reqwest::Client::new();
    let response = tokio::time::timeout(
        TIMEOUT,
        http.post(format!("{}/v1/{}:sendAndWait", server.url(), session.name))
            .json(&json!({"parts": [{"text": "over http"}]}))
            .send(),
    )
    .await
    .expect("in time")
    .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["turn"]["status"], "TURN_STATUS_SUCCEEDED", "{body}");
    assert_eq!(
        body["replies"][0]["parts"][0]["text"], "Echo: over http",
        "{body}"
    );

    let response = http
        .post(format!("{}/v1/{}:sendAndWait", server.url(), session.name))
        .json(&json!({"parts": [{"text": "slowly"}], "model": "models/slow", "timeout": "0.2s"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::GATEWAY_TIMEOUT);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], 4, "{body}");
}

/// Runs the real `octo run ...` against `server`; returns (exit code, stdout, stderr).
async fn octo_run(server: &TestServer, args: &[&str], stdin: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut command = common::octo_command();
    command
        .arg("--server")
        .arg(server.url())
        .arg("run")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("octo runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("stdin");
    drop(input);
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("in time")
        .expect("output");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn octo_run_prints_only_the_answer_and_exits_with_the_turns_outcome() {
    let server = server().await;
    let (code, stdout, stderr) = octo_run(&server, &["hello", "there"], "").await;
    assert_eq!(
        (code, stdout.as_str()),
        (0, "Echo: hello there\n"),
        "{stderr}"
    );
    assert!(stderr.contains("Created session"), "{stderr}");

    let (code, stdout, stderr) = octo_run(&server, &["-"], "from a pipe\n").await;
    assert_eq!(
        (code, stdout.as_str()),
        (0, "Echo: from a pipe\n"),
        "{stderr}"
    );

    // A failed turn: exit 1, the reason on stderr.
    let (code, _, stderr) = octo_run(&server, &["/error the model is gone"], "").await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");

    // The wait runs out: 124, and the turn to follow is named.
    let (code, stdout, stderr) = octo_run(
        &server,
        &["--model", "slow", "--timeout", "300ms", "long"],
        "",
    )
    .await;
    assert_eq!(code, 124, "{stdout} {stderr}");
    assert!(stderr.contains("TURN_STILL_RUNNING"), "{stderr}");
}
