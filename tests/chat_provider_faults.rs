//! Provider faults through the server, with the fake OpenAI server: what a turn ends
//! with when the provider errs, rate-limits, sends garbage, cuts or hangs.

use crate::common;

use common::{
    TestServer, collect_until, create, finished, get_turn, history, is_kind, is_turn_finished,
    message_text, streamed_text, text,
};
use octo::{
    config::ModelConfig,
    pb,
    providers::fake::{FakeOpenAi, FakeResponse},
};

async fn server_for(fake: &FakeOpenAi) -> TestServer {
    let base_url = fake.base_url();
    TestServer::start_with(|config| {
        config.models.insert(
            "fake".into(),
            ModelConfig {
                provider: "openai".into(),
                model: "x".into(),
                base_url,
                api_key: Some("k".into()),
                ..ModelConfig::mock()
            },
        );
        config.default_model = Some("fake".into());
    })
    .await
}

struct Outcome {
    events: Vec<pb::SessionEvent>,
    turn: pb::Turn,
    session: pb::Session,
}

/// One turn with Chat; its events and final turn.
async fn turn(server: &TestServer, message: &str) -> Outcome {
    let session = create(&mut server.sessions().await, "faults").await;
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
    let events = collect_until(&mut stream, is_turn_finished).await;
    let turn = finished(events.last().expect("events"))
        .expect("turn")
        .clone();
    Outcome {
        events,
        turn,
        session,
    }
}

fn error_of(turn: &pb::Turn) -> pb::TurnError {
    turn.error
        .clone()
        .unwrap_or_else(|| panic!("a FAILED turn carries an error: {turn:?}"))
}

fn seconds(duration: &Option<prost_types::Duration>) -> f64 {
    duration
        .as_ref()
        .map(|d| d.seconds as f64 + d.nanos as f64 / 1e9)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_500_is_retried_and_the_turn_succeeds() {
    let fake = FakeOpenAi::start(vec![
        FakeResponse::status(500, r#"{"error":{"message":"boom"}}"#),
        FakeResponse::text(["recovered"]),
    ])
    .await
    .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Succeeded);
    assert_eq!(streamed_text(&outcome.events), "recovered");
    assert_eq!(fake.request_count(), 2, "one retry");
}

#[tokio::test]
async fn a_429_waits_retry_after_then_succeeds() {
    let fake = FakeOpenAi::start(vec![
        FakeResponse::Status {
            code: 429,
            body: r#"{"error":{"message":"slow down"}}"#.into(),
            retry_after: Some(1),
        },
        FakeResponse::text(["patient"]),
    ])
    .await
    .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Succeeded);
    assert_eq!(streamed_text(&outcome.events), "patient");
    assert_eq!(fake.request_count(), 2);
    let latency = seconds(&outcome.turn.latency);
    assert!(
        latency >= 0.95,
        "Retry-After: 1 honoured, latency {latency}s"
    );
}

#[tokio::test]
async fn persistent_5xx_fails_the_turn_as_unavailable() {
    let fake = FakeOpenAi::start(vec![FakeResponse::status(
        503,
        r#"{"error":{"message":"the service is down"}}"#,
    )])
    .await
    .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Failed);
    let error = error_of(&outcome.turn);
    assert_eq!(error.reason, "PROVIDER_UNAVAILABLE");
    assert!(
        error.message.contains("the service is down"),
        "{}",
        error.message
    );
    assert!(fake.request_count() > 1, "retried before giving up");
}

#[tokio::test]
async fn a_401_fails_at_once() {
    let fake = FakeOpenAi::start(vec![FakeResponse::status(
        401,
        r#"{"error":{"message":"Incorrect API key provided"}}"#,
    )])
    .await
    .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Failed);
    let error = error_of(&outcome.turn);
    assert_eq!(error.reason, "PROVIDER_UNAUTHENTICATED");
    assert!(
        error.message.contains("Incorrect API key"),
        "{}",
        error.message
    );
    assert_eq!(fake.request_count(), 1, "not retried");
}

#[tokio::test]
async fn garbage_json_fails_the_turn() {
    let fake = FakeOpenAi::start(vec![FakeResponse::Garbage])
        .await
        .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Failed);
    let error = error_of(&outcome.turn);
    assert_eq!(error.reason, "PROVIDER_PROTOCOL");
    assert!(
        error.message.contains("not valid JSON"),
        "says what was wrong: {}",
        error.message
    );
    // The stored turn says the same.
    let mut chat = server.chat().await;
    let stored = get_turn(&mut chat, &outcome.turn.name).await;
    assert_eq!(stored.status(), pb::TurnStatus::Failed);
    assert_eq!(stored.error, outcome.turn.error);
}

#[tokio::test]
async fn a_cut_stream_fails_the_turn_and_keeps_the_partial_text() {
    let fake = FakeOpenAi::start(vec![FakeResponse::CutAfter {
        chunks: vec!["partial ".into(), "answer".into()],
    }])
    .await
    .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Failed);
    let error = error_of(&outcome.turn);
    assert_eq!(error.reason, "PROVIDER_PROTOCOL");
    assert!(error.message.contains("ended before"), "{}", error.message);
    assert_eq!(streamed_text(&outcome.events), "partial answer");
    // Every opened block is closed, and the message is stored as incomplete.
    assert!(
        outcome.events.iter().any(is_kind("content_finished")),
        "content_finished after a cut"
    );
    let mut chat = server.chat().await;
    let messages = history(&mut chat, &outcome.session.name).await;
    let answer = &messages[0];
    assert_eq!(answer.role(), pb::Role::Assistant);
    assert_eq!(message_text(answer), "partial answer");
    assert!(answer.incomplete, "cut short: incomplete");
}

#[tokio::test]
async fn an_in_stream_error_fails_the_turn_with_the_providers_message() {
    let fake = FakeOpenAi::start(vec![FakeResponse::StreamError {
        chunks: vec!["some ".into()],
        message: "The server had an error while processing your request".into(),
    }])
    .await
    .expect("fake");
    let server = server_for(&fake).await;
    let outcome = turn(&server, "hello").await;
    assert_eq!(outcome.turn.status(), pb::TurnStatus::Failed);
    let error = error_of(&outcome.turn);
    assert!(
        error.message.contains("had an error while processing"),
        "{error:?}"
    );
    assert_eq!(fake.request_count(), 1, "no retry after the first token");
}

#[tokio::test]
async fn cancel_aborts_a_hanging_provider_request() {
    let fake = FakeOpenAi::start(vec![FakeResponse::Hang])
        .await
        .expect("fake");
    let server = server_for(&fake).await;
    let session = create(&mut server.sessions().await, "hang").await;
    let mut chat = server.chat().await;
    let mut stream = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text("hello")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let started = collect_until(&mut stream, is_kind("turn_started")).await;
    let turn = match &started.last().and_then(|e| e.kind.clone()) {
        Some(pb::session_event::Kind::TurnStarted(s)) => s.turn.clone().expect("turn"),
        _ => unreachable!(),
    };
    // The request reached the fake (it hangs there).
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    while fake.request_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "request sent");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    chat.cancel_turn(pb::CancelTurnRequest {
        name: turn.name.clone(),
    })
    .await
    .expect("cancel");
    let events = collect_until(&mut stream, is_turn_finished).await;
    let ended = finished(events.last().expect("events")).expect("turn");
    assert_eq!(ended.status(), pb::TurnStatus::Cancelled);
}

/// Needs a short provider idle timeout: `ProviderPolicy::idle_timeout` is fixed at its
/// default (120 s) in `Server::bind` and no Config field sets it.
#[tokio::test]
async fn a_hanging_provider_fails_with_provider_timeout() {
    let fake = FakeOpenAi::start(vec![FakeResponse::Hang])
        .await
        .expect("fake");
    let base_url = fake.base_url();
    let server = TestServer::start_with(|config| {
        config.models.insert(
            "fake".into(),
            ModelConfig {
                provider: "openai".into(),
                model: "x".into(),
                base_url,
                api_key: Some("k".into()),
                ..ModelConfig::mock()
            },
        );
        config.default_model = Some("fake".into());
        // A hang is noticed after this much silence.
        config.provider.idle_timeout_ms = 300;
    })
    .await;
    let session = create(&mut server.sessions().await, "hang").await;
    let mut stream = server
        .chat()
        .await
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text("hello")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut events = Vec::new();
        while let Some(event) = stream.message().await.expect("stream") {
            let done = is_turn_finished(&event);
            events.push(event);
            if done {
                break;
            }
        }
        events
    })
    .await
    .expect("the idle timeout ends the turn");
    let turn = finished(events.last().expect("events")).expect("turn");
    assert_eq!(turn.status(), pb::TurnStatus::Failed);
    assert_eq!(error_of(turn).reason, "PROVIDER_TIMEOUT");
}
