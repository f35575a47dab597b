//! Compaction: a conversation that outgrows the model's window is summarised instead of
//! forgotten. The summary reaches later requests (the mock's `/context` shows what it was
//! sent), `context_compacted` says what happened, history keeps every message, and
//! CompactSession does it on demand — over gRPC and JSON — refusing a busy session.

use octo::pb;
use tonic::Code;

use crate::common::{self, ChatClient, TestServer};

/// A mock model with a 500-token window: compaction starts past 375 tokens and keeps at
/// most 125 tokens of the newest messages as they are.
async fn small_window_server() -> TestServer {
    TestServer::start_with(|config| {
        config
            .models
            .get_mut("mock")
            .expect("mock model")
            .context_window = 500;
    })
    .await
}

async fn short_prompt_session(server: &TestServer) -> pb::Session {
    server
        .sessions()
        .await
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                display_name: "long talk".into(),
                system_prompt: "Be brief.".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner()
}

/// A ~100-token message (400 characters) that starts with `topic`.
fn long_message(topic: &str) -> String {
    let mut text = format!("{topic} ");
    while text.len() < 400 {
        text.push_str("lorem ");
    }
    text
}

/// Sends `text` and returns every event up to the end of its turn.
async fn turn(
    chat: &mut ChatClient,
    events: &mut tonic::Streaming<pb::SessionEvent>,
    session: &str,
    text: &str,
) -> Vec<pb::SessionEvent> {
    let sent = common::send_text(chat, session, text, pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    common::collect_until(events, common::finishes(&common::sent_turn(&sent).name)).await
}

fn compacted(events: &[pb::SessionEvent]) -> Vec<&pb::ContextCompacted> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ContextCompacted(c)) => Some(c),
            _ => None,
        })
        .collect()
}

fn final_text(events: &[pb::SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::session_event::Kind::MessageCompleted(m)) => m.message.as_ref(),
            _ => None,
        })
        .filter(|m| m.role == pb::Role::Assistant as i32)
        .map(common::message_text)
        .next_back()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_conversation_is_summarised_not_forgotten() {
    let server = small_window_server().await;
    let session = short_prompt_session(&server).await;
    let mut chat = server.chat().await;
    let mut events = common::subscribe(&mut chat, &session.name, 0).await;

    let first = turn(
        &mut chat,
        &mut events,
        &session.name,
        &long_message("alpha"),
    )
    .await;
    assert!(compacted(&first).is_empty(), "nothing to compact yet");
    let second = turn(&mut chat, &mut events, &session.name, &long_message("beta")).await;
    assert!(compacted(&second).is_empty(), "still within 375 tokens");
    // Two exchanges of ~100 tokens a message: ~500 tokens with the third question.
    let third = turn(
        &mut chat,
        &mut events,
        &session.name,
        &long_message("gamma"),
    )
    .await;
    let done = compacted(&third);
    assert_eq!(done.len(), 1, "{:?}", common::kinds(&third));
    let summary = done[0];
    // Both earlier exchanges (4 messages) went into the summary; the newest question is
    // kept as it is.
    assert_eq!(summary.replaced_messages, 4, "{summary:?}");
    assert!(
        summary.summary.contains("alpha lorem") && summary.summary.contains("beta lorem"),
        "{summary:?}"
    );
    assert!(!summary.summary.contains("gamma"), "{summary:?}");
    assert!(summary.tokens_before > 375, "{summary:?}");
    assert!(
        summary.tokens_after < summary.tokens_before / 2,
        "{summary:?}"
    );
    assert_eq!(summary.model, "models/mock");
    // The event belongs to the turn that compacted.
    let event = third
        .iter()
        .find(|e| matches!(e.kind, Some(pb::session_event::Kind::ContextCompacted(_))))
        .unwrap();
    let turn_name = &third
        .iter()
        .find_map(common::finished)
        .expect("finished")
        .name;
    assert_eq!(&event.turn, turn_name);
    assert!(
        final_text(&third).starts_with("Echo: gamma"),
        "{}",
        final_text(&third)
    );

    // What the model is sent now: the summary in the system prompt, then only what
    // came after it.
    let context = turn(&mut chat, &mut events, &session.name, "/context").await;
    let text = final_text(&context);
    assert!(
        text.contains("Summary of 4 messages") && text.contains("Be brief."),
        "{text}"
    );
    let sent: usize = text
        .strip_prefix("Context: ")
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(sent <= 3, "the replaced messages were sent again: {text}");

    // History keeps every message.
    let history = common::history(&mut chat, &session.name).await;
    let texts: Vec<String> = history.iter().map(common::message_text).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("alpha lorem")),
        "{texts:?}"
    );
    assert!(history.len() >= 8, "{}", history.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_session_on_demand_over_grpc_and_json() {
    // An unknown window (0): nothing compacts by itself.
    let server = TestServer::start().await;
    let session = short_prompt_session(&server).await;
    let mut chat = server.chat().await;
    let mut events = common::subscribe(&mut chat, &session.name, 0).await;
    for topic in ["one", "two"] {
        let seen = turn(&mut chat, &mut events, &session.name, &long_message(topic)).await;
        assert!(compacted(&seen).is_empty());
    }

    let answer = chat
        .compact_session(pb::CompactSessionRequest {
            session: session.name.clone(),
        })
        .await
        .expect("compact")
        .into_inner();
    assert!(answer.compacted);
    let summary = answer.summary.expect("summary");
    assert_eq!(summary.replaced_messages, 2, "{summary:?}");
    assert!(summary.summary.contains("one lorem"), "{summary:?}");
    // Subscribers hear of it too.
    let seen = common::collect_until(&mut events, common::is_kind("context_compacted")).await;
    assert_eq!(compacted(&seen)[0].summary, summary.summary);

    // Over JSON, again: only the latest exchange is left, so nothing more to do, and the
    // answer still shows the session's summary.
    let id = session.name.trim_start_matches("sessions/");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/sessions/{id}:compact", server.url()))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("POST :compact");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["compacted"], serde_json::Value::Null, "{body}");
    assert_eq!(body["summary"]["replacedMessages"], 2, "{body}");

    // Unknown session: NOT_FOUND.
    let missing = chat
        .compact_session(pb::CompactSessionRequest {
            session: "sessions/0190a0b0-0000-7000-8000-000000000000".into(),
        })
        .await
        .expect_err("unknown session");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_session_is_not_compacted() {
    let server = TestServer::start().await;
    let session = short_prompt_session(&server).await;
    let mut chat = server.chat().await;
    let mut events = common::subscribe(&mut chat, &session.name, 0).await;
    let sent = common::send_text(
        &mut chat,
        &session.name,
        "/sleep 30000",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("send");
    common::collect_until(&mut events, common::is_kind("turn_started")).await;
    let busy = chat
        .compact_session(pb::CompactSessionRequest {
            session: session.name.clone(),
        })
        .await
        .expect_err("busy");
    assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");
    assert_eq!(common::reason(&busy), "SESSION_BUSY");
    chat.cancel_turn(pb::CancelTurnRequest {
        name: common::sent_turn(&sent).name,
    })
    .await
    .expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compaction_is_announced_and_the_turn_goes_on() {
    // Summaries by a model whose server is not there (a closed port), tried once.
    let server = TestServer::start_with(|config| {
        config
            .models
            .get_mut("mock")
            .expect("mock model")
            .context_window = 500;
        config.models.insert(
            "gone".into(),
            octo::config::ModelConfig {
                provider: "openai".into(),
                model: "gpt-nowhere".into(),
                base_url: "http://127.0.0.1:1/v1".into(),
                api_key: Some("sk-test".into()),
                ..octo::config::ModelConfig::mock()
            },
        );
        config.compaction.model = Some("gone".into());
        config.provider.max_attempts = 1;
    })
    .await;
    let session = short_prompt_session(&server).await;
    let mut chat = server.chat().await;
    let mut events = common::subscribe(&mut chat, &session.name, 0).await;
    for topic in ["alpha", "beta"] {
        turn(&mut chat, &mut events, &session.name, &long_message(topic)).await;
    }
    let third = turn(
        &mut chat,
        &mut events,
        &session.name,
        &long_message("gamma"),
    )
    .await;
    assert!(compacted(&third).is_empty());
    let warning = third
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::Error(error)) => Some(error),
            _ => None,
        })
        .expect("an error event");
    assert_eq!(warning.reason, "COMPACTION_FAILED", "{warning:?}");
    let finished = third.iter().find_map(common::finished).expect("finished");
    assert_eq!(finished.status, pb::TurnStatus::Succeeded as i32);
    assert!(final_text(&third).starts_with("Echo: gamma"));
}

/// CompactSession through the OpenAI-compatible and Anthropic fakes: the summary request
/// goes out in each provider's real wire format, and the next turn's request carries the
/// summary instead of the replaced messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_request_and_its_use_speak_each_providers_wire_format() {
    use octo::providers::fake::{FakeAnthropic, FakeOpenAi, FakeResponse};

    fn script() -> Vec<FakeResponse> {
        vec![
            FakeResponse::text(["first answer"]),
            FakeResponse::text(["second answer"]),
            FakeResponse::text(["The user asked about alpha; answered."]),
            FakeResponse::text(["third answer"]),
        ]
    }
    let openai = FakeOpenAi::start(script()).await.expect("fake openai");
    let anthropic = FakeAnthropic::start(script())
        .await
        .expect("fake anthropic");
    for (provider, base_url) in [
        ("openai", openai.base_url()),
        ("anthropic", anthropic.base_url()),
    ] {
        let server = TestServer::start_with(|config| {
            config.models.insert(
                "fake".into(),
                octo::config::ModelConfig {
                    provider: provider.into(),
                    model: "x".into(),
                    base_url,
                    api_key: Some("k".into()),
                    ..octo::config::ModelConfig::mock()
                },
            );
            config.default_model = Some("fake".into());
        })
        .await;
        let session = short_prompt_session(&server).await;
        let mut chat = server.chat().await;
        let mut events = common::subscribe(&mut chat, &session.name, 0).await;
        turn(&mut chat, &mut events, &session.name, "alpha question").await;
        turn(&mut chat, &mut events, &session.name, "beta question").await;
        let answer = chat
            .compact_session(pb::CompactSessionRequest {
                session: session.name.clone(),
            })
            .await
            .expect("compact")
            .into_inner();
        assert!(answer.compacted, "{provider}");
        let summary = answer.summary.expect("summary");
        assert_eq!(summary.summary, "The user asked about alpha; answered.");
        assert_eq!(summary.replaced_messages, 2, "{provider}");
        turn(&mut chat, &mut events, &session.name, "gamma question").await;
    }

    // OpenAI: the system prompt is the first message; the instruction the last.
    let requests = openai.requests();
    assert_eq!(requests.len(), 4);
    let summary_request = &requests[2].body;
    let messages = summary_request["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("condensing the earlier part"),
        "{summary_request}"
    );
    let texts = serde_json::to_string(messages).unwrap();
    assert!(texts.contains("alpha question") && texts.contains("first answer"));
    assert!(
        !texts.contains("beta question"),
        "the kept exchange is not summarised"
    );
    assert_eq!(
        messages.last().unwrap()["content"].as_str().unwrap(),
        octo::providers::SUMMARY_INSTRUCTION
    );
    let next = serde_json::to_string(&requests[3].body["messages"]).unwrap();
    assert!(
        next.contains("The user asked about alpha; answered."),
        "{next}"
    );
    assert!(!next.contains("alpha question"), "{next}");
    assert!(next.contains("beta question") && next.contains("gamma question"));

    // Anthropic: the system prompt is its own field.
    let requests = anthropic.requests();
    assert_eq!(requests.len(), 4);
    let summary_request = &requests[2].body;
    assert!(
        serde_json::to_string(&summary_request["system"])
            .unwrap()
            .contains("condensing the earlier part"),
        "{summary_request}"
    );
    let texts = serde_json::to_string(&summary_request["messages"]).unwrap();
    assert!(texts.contains("alpha question") && !texts.contains("beta question"));
    let next = &requests[3].body;
    assert!(
        serde_json::to_string(&next["system"])
            .unwrap()
            .contains("The user asked about alpha; answered."),
        "{next}"
    );
    assert!(
        !serde_json::to_string(&next["messages"])
            .unwrap()
            .contains("alpha question")
    );
}
