//! Turns through the server against the fake OpenAI-compatible and Anthropic servers,
//! which speak the real streaming wire formats: a tool call whose arguments arrive in
//! fragments, the tool run, then the text answer; and what the provider received.

use crate::common;

use common::{
    TestServer, collect_until, create_in_mode, finished, is_turn_finished, kinds, streamed_text,
    text,
};
use octo::{
    config::ModelConfig,
    pb,
    providers::fake::{FakeAnthropic, FakeOpenAi, FakeResponse},
};
use serde_json::{Value, json};

fn model(provider: &str, base_url: String) -> ModelConfig {
    ModelConfig {
        provider: provider.into(),
        model: "x".into(),
        base_url,
        api_key: Some("k".into()),
        ..ModelConfig::mock()
    }
}

/// A server whose default model is `provider` at `base_url`.
async fn server_with(provider: &str, base_url: String) -> TestServer {
    TestServer::start_with(|config| {
        config
            .models
            .insert("fake".into(), model(provider, base_url));
        config.default_model = Some("fake".into());
    })
    .await
}

/// Runs one turn with Chat in an AUTO_APPROVE session; returns its events.
async fn chat_turn(server: &TestServer, message: &str) -> Vec<pb::SessionEvent> {
    let session = create_in_mode(
        &mut server.sessions().await,
        "provider",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let mut stream = server
        .chat()
        .await
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text(message)],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    collect_until(&mut stream, is_turn_finished).await
}

/// The tool call the server ran and its record, from the events.
fn tool_record(events: &[pb::SessionEvent]) -> pb::ToolCallRecord {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished")
}

fn assert_turn(events: &[pb::SessionEvent], call_id: &str) {
    let turn = finished(events.last().expect("events")).expect("turn_finished last");
    assert_eq!(turn.status(), pb::TurnStatus::Succeeded, "{turn:?}");
    assert_eq!(turn.model, "models/fake");
    assert_eq!(turn.step_count, 2);
    assert_eq!(streamed_text(events), "The shell said hi.");
    let record = tool_record(events);
    assert_eq!(record.status(), pb::ToolCallStatus::Succeeded);
    let call = record.call.expect("call");
    assert_eq!(call.id, call_id);
    assert_eq!(call.tool, "shell");
    let arguments: Value = serde_json::from_str(&call.arguments_json).expect("JSON arguments");
    assert_eq!(
        arguments,
        json!({"command": "echo hi"}),
        "fragments assembled"
    );
    assert_eq!(record.result.expect("result").output, "hi\n");
    let order: Vec<_> = kinds(events)
        .into_iter()
        .filter(|k| *k != "text_delta" && *k != "tool_call_output")
        .collect();
    assert_eq!(
        order,
        [
            "message_completed",
            "turn_queued",
            "turn_started",
            "message_started",
            "message_completed",
            "tool_call_started",
            "tool_call_finished",
            "message_completed",
            "message_started",
            "content_started",
            "content_finished",
            "message_completed",
            "turn_finished"
        ]
    );
}

const FRAGMENTS: [&str; 4] = ["{\"comm", "and\": \"ec", "ho h", "i\"}"];

#[tokio::test]
async fn openai_tool_call_then_answer() {
    let fake = FakeOpenAi::start(vec![
        FakeResponse::tool_call("call_1", "shell", FRAGMENTS),
        FakeResponse::text(["The shell ", "said hi."]),
    ])
    .await
    .expect("fake");
    let server = server_with("openai", fake.base_url()).await;
    let events = chat_turn(&server, "run echo hi").await;
    assert_turn(&events, "call_1");
    let turn = finished(events.last().expect("events")).expect("turn");
    let usage = turn.usage.expect("usage");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (20, 6),
        "usage summed over both requests: {usage:?}"
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one request per step");
    for request in &requests {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.header("authorization"), Some("Bearer k"));
        assert_eq!(request.body["model"], "x");
        assert_eq!(request.body["stream"], true);
    }
    let first = &requests[0].body;
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"shell"), "{tools:?}");
    let messages = first["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages.last().expect("user")["role"], "user");
    assert!(
        messages.last().expect("user")["content"]
            .to_string()
            .contains("run echo hi")
    );

    // The second request carries the call and its result.
    let second = requests[1].body["messages"].as_array().expect("messages");
    let n = second.len();
    let assistant = &second[n - 2];
    assert_eq!(assistant["role"], "assistant", "{second:?}");
    let call = &assistant["tool_calls"][0];
    assert_eq!(call["id"], "call_1");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "shell");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("string"))
            .expect("JSON");
    assert_eq!(arguments, json!({"command": "echo hi"}));
    let result = &second[n - 1];
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_call_id"], "call_1");
    assert_eq!(result["content"], "hi\n");
}

#[tokio::test]
async fn anthropic_tool_call_then_answer() {
    let fake = FakeAnthropic::start(vec![
        FakeResponse::tool_call("toolu_1", "shell", FRAGMENTS),
        FakeResponse::text(["The shell ", "said hi."]),
    ])
    .await
    .expect("fake");
    let server = server_with("anthropic", fake.base_url()).await;
    let events = chat_turn(&server, "run echo hi").await;
    assert_turn(&events, "toolu_1");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one request per step");
    for request in &requests {
        assert_eq!(request.path, "/v1/messages");
        assert_eq!(request.header("x-api-key"), Some("k"));
        assert!(request.header("anthropic-version").is_some());
        assert_eq!(request.body["model"], "x");
        assert_eq!(request.body["stream"], true);
        assert!(
            request.body["system"]
                .to_string()
                .contains("software agent"),
            "system prompt travels in `system`"
        );
    }
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"shell"), "{tools:?}");

    let second = requests[1].body["messages"].as_array().expect("messages");
    let n = second.len();
    let assistant = &second[n - 2];
    assert_eq!(assistant["role"], "assistant", "{second:?}");
    let tool_use = assistant["content"]
        .as_array()
        .expect("blocks")
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("tool_use block");
    assert_eq!(tool_use["id"], "toolu_1");
    assert_eq!(tool_use["name"], "shell");
    assert_eq!(tool_use["input"], json!({"command": "echo hi"}));
    let user = &second[n - 1];
    assert_eq!(user["role"], "user");
    let result = user["content"]
        .as_array()
        .expect("blocks")
        .iter()
        .find(|b| b["type"] == "tool_result")
        .expect("tool_result block");
    assert_eq!(result["tool_use_id"], "toolu_1");
    assert_eq!(result["content"], "hi\n");
    assert!(result.get("is_error").is_none_or(|e| e == false));
}

#[tokio::test]
async fn read_only_sessions_offer_no_shell_or_write_tools() {
    let fake = FakeOpenAi::start(vec![FakeResponse::text(["fine"])])
        .await
        .expect("fake");
    let server = server_with("openai", fake.base_url()).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "read only",
        pb::PermissionMode::ReadOnly,
    )
    .await;
    let mut stream = server
        .chat()
        .await
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text("look around")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = collect_until(&mut stream, is_turn_finished).await;
    assert_eq!(streamed_text(&events), "fine");
    let requests = fake.requests();
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("read tools offered")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"read_file"), "{tools:?}");
    for refused in ["shell", "write_file", "edit_file"] {
        assert!(!tools.contains(&refused), "{refused} offered: {tools:?}");
    }
}

/// Every assistant message with tool calls is followed at once by exactly one tool
/// message per call, and tool messages appear nowhere else (what OpenAI requires).
fn assert_well_formed(messages: &[Value]) {
    let mut i = 0;
    while i < messages.len() {
        let message = &messages[i];
        assert_ne!(
            message["role"], "tool",
            "tool message {i} answers no preceding call: {messages:#?}"
        );
        i += 1;
        let Some(calls) = message["tool_calls"].as_array() else {
            continue;
        };
        let mut ids: Vec<&str> = calls.iter().filter_map(|c| c["id"].as_str()).collect();
        while i < messages.len() && messages[i]["role"] == "tool" {
            let id = messages[i]["tool_call_id"].as_str().unwrap_or_default();
            let at = ids
                .iter()
                .position(|c| *c == id)
                .unwrap_or_else(|| panic!("unexpected or repeated result {id}: {messages:#?}"));
            ids.remove(at);
            i += 1;
        }
        assert!(
            ids.is_empty(),
            "calls {ids:?} lack a result right after them: {messages:#?}"
        );
    }
}

async fn release_and_wait(
    watcher: &mut tonic::Streaming<pb::SessionEvent>,
    turn: &str,
) -> Vec<pb::SessionEvent> {
    collect_until(watcher, common::finishes(turn)).await
}

/// A message queued behind a turn with a tool call reaches the model after that whole
/// turn: the next request is well formed and ends with the queued message.
#[tokio::test]
async fn a_queued_message_reaches_the_provider_after_the_previous_turn() {
    let fake = FakeOpenAi::start(vec![
        FakeResponse::tool_call("call_1", "shell", [r#"{"command":"echo one"}"#]),
        FakeResponse::text(["first done"]),
        FakeResponse::text(["second done"]),
    ])
    .await
    .expect("fake");
    let server = server_with("openai", fake.base_url()).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "queue",
        pb::PermissionMode::Ask,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = common::subscribe(&mut chat, &session.name, 0).await;
    let first = common::sent_turn(
        &common::send_text(&mut chat, &session.name, "first", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let events = collect_until(&mut watcher, common::is_kind("confirmation_requested")).await;
    let Some(pb::session_event::Kind::ConfirmationRequested(requested)) =
        &events.last().and_then(|e| e.kind.clone())
    else {
        unreachable!()
    };
    let second = common::sent_turn(
        &common::send_text(&mut chat, &session.name, "second", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    chat.respond_to_confirmation(pb::RespondToConfirmationRequest {
        name: requested.confirmation.clone().expect("confirmation").name,
        decision: pb::ConfirmationDecision::Allow.into(),
    })
    .await
    .expect("allow");
    release_and_wait(&mut watcher, &first.name).await;
    release_and_wait(&mut watcher, &second.name).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    let messages = requests[2].body["messages"].as_array().expect("messages");
    assert_well_formed(messages);
    let last = messages.last().expect("messages");
    assert_eq!(last["role"], "user");
    assert!(last["content"].to_string().contains("second"), "{last}");
    let previous = &messages[messages.len() - 2];
    assert_eq!(previous["role"], "assistant");
    assert_eq!(previous["content"], "first done");
}

/// A message steered into a turn during a tool call keeps the history well formed for
/// later requests (the next turn's too).
#[tokio::test]
async fn a_steered_message_keeps_later_requests_well_formed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    let command = format!(
        "while [ ! -e '{}' ]; do sleep 0.02; done; echo done",
        go.display()
    );
    let arguments = json!({ "command": command }).to_string();
    let fake = FakeOpenAi::start(vec![
        FakeResponse::tool_call("call_1", "shell", [arguments.as_str()]),
        FakeResponse::text(["steered answer"]),
        FakeResponse::text(["next answer"]),
    ])
    .await
    .expect("fake");
    let server = server_with("openai", fake.base_url()).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "steer",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = common::subscribe(&mut chat, &session.name, 0).await;
    let first = common::sent_turn(
        &common::send_text(&mut chat, &session.name, "first", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    collect_until(&mut watcher, common::is_kind("tool_call_started")).await;
    common::send_text(&mut chat, &session.name, "extra", pb::BusyPolicy::Steer)
        .await
        .expect("steer");
    std::fs::write(&go, b"").expect("release the tool");
    release_and_wait(&mut watcher, &first.name).await;

    // Within the turn, the steered message follows the tool result.
    let requests = fake.requests();
    let step2 = requests[1].body["messages"].as_array().expect("messages");
    assert_well_formed(step2);
    assert!(
        step2.last().expect("last")["content"]
            .to_string()
            .contains("extra")
    );

    let next = common::sent_turn(
        &common::send_text(&mut chat, &session.name, "again", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    release_and_wait(&mut watcher, &next.name).await;
    let requests = fake.requests();
    let messages = requests[2].body["messages"].as_array().expect("messages");
    assert_well_formed(messages);
    assert!(
        messages.last().expect("last")["content"]
            .to_string()
            .contains("again")
    );
}

/// A turn's model requests hold the history up to its own message: not the messages
/// queued behind it for later turns.
#[tokio::test]
async fn a_turn_does_not_see_messages_queued_behind_it() {
    let fake = FakeOpenAi::start(vec![
        FakeResponse::tool_call("call_1", "shell", [r#"{"command":"echo zero"}"#]),
        FakeResponse::text(["zero done"]),
        FakeResponse::text(["first done"]),
        FakeResponse::text(["second done"]),
    ])
    .await
    .expect("fake");
    let server = server_with("openai", fake.base_url()).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "queue",
        pb::PermissionMode::Ask,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = common::subscribe(&mut chat, &session.name, 0).await;
    common::send_text(&mut chat, &session.name, "zero", pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    let events = collect_until(&mut watcher, common::is_kind("confirmation_requested")).await;
    let confirmation = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ConfirmationRequested(r)) => r.confirmation.clone(),
            _ => None,
        })
        .expect("confirmation");
    let mut queued = Vec::new();
    for text in ["first", "second"] {
        queued.push(common::sent_turn(
            &common::send_text(&mut chat, &session.name, text, pb::BusyPolicy::Enqueue)
                .await
                .expect("send"),
        ));
    }
    chat.respond_to_confirmation(pb::RespondToConfirmationRequest {
        name: confirmation.name,
        decision: pb::ConfirmationDecision::Allow.into(),
    })
    .await
    .expect("allow");
    release_and_wait(&mut watcher, &queued[1].name).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let first_turn = requests[2].body["messages"].to_string();
    assert!(
        !first_turn.contains("\"second\""),
        "the turn of \"first\" saw \"second\": {first_turn}"
    );
}
