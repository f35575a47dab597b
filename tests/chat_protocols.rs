//! One full turn with a tool call (AUTO_APPROVE, the mock model calling `shell`) over
//! each protocol the server speaks: gRPC, gRPC-Web (hand-made frames over HTTP/1.1) and
//! JSON with server-sent events.

use crate::common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{
    SseReader, TIMEOUT, TestServer, collect_until, create_in_mode, finished, is_turn_finished,
    kinds, streamed_text, text,
};
use octo::pb;
use prost::Message;

const TOOL_TURN: &str = r#"/tool shell {"command":"echo hi"}"#;

/// What the mock answers after the shell call printed `hi`.
const REPLY: &str = "Tool shell returned: hi";

async fn auto_session(server: &TestServer) -> pb::Session {
    create_in_mode(
        &mut server.sessions().await,
        "tools",
        pb::PermissionMode::AutoApprove,
    )
    .await
}

/// The kinds of a tool turn in order, without the streamed deltas and tool output.
const TOOL_TURN_ORDER: [&str; 13] = [
    "message_completed", // the user message
    "turn_queued",
    "turn_started",
    "message_started", // the assistant's tool call
    "message_completed",
    "tool_call_started",
    "tool_call_finished",
    "message_completed", // the tool result
    "message_started",   // the answer
    "content_started",
    "content_finished",
    "message_completed",
    "turn_finished",
];

fn assert_tool_turn(events: &[pb::SessionEvent]) {
    use pb::session_event::Kind;
    let order: Vec<_> = kinds(events)
        .into_iter()
        .filter(|k| *k != "text_delta" && *k != "tool_call_output")
        .collect();
    assert_eq!(order, TOOL_TURN_ORDER);
    assert_eq!(streamed_text(events).trim_end(), REPLY);
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {sequences:?}"
    );
    let record = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished");
    assert_eq!(record.status(), pb::ToolCallStatus::Succeeded);
    let call = record.call.expect("call");
    assert_eq!(call.tool, "shell");
    assert_eq!(call.arguments_json, r#"{"command":"echo hi"}"#);
    assert_eq!(record.result.expect("result").output.trim_end(), "hi");
    let output: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::ToolCallOutput(o)) => Some(o.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        output, "hi\n",
        "the shell's stdout streams as tool_call_output"
    );
    let turn = finished(events.last().expect("events")).expect("ends with turn_finished");
    assert_eq!(turn.status(), pb::TurnStatus::Succeeded);
    assert_eq!(turn.step_count, 2, "tool call, then the answer");
    assert_eq!(turn.tool_calls.len(), 1);
    assert!(
        events.iter().all(|e| e.turn == turn.name),
        "Chat streams only its turn's events"
    );
}

#[tokio::test]
async fn tool_turn_over_grpc() {
    let server = TestServer::start().await;
    let session = auto_session(&server).await;
    let mut chat = server.chat().await;
    let mut stream = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text(TOOL_TURN)],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = collect_until(&mut stream, is_turn_finished).await;
    assert_tool_turn(&events);
    // The stream ends after the turn's terminal event.
    let after = tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("stream ends in time");
    assert!(
        matches!(after, Ok(None)),
        "nothing after turn_finished: {after:?}"
    );
}

fn frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.put_slice(&body);
    out.freeze()
}

#[tokio::test]
async fn tool_turn_over_grpc_web_http1() {
    let server =
        TestServer::start_with(|c| c.cors_allowed_origins = vec!["http://page.example".into()])
            .await;
    let session = auto_session(&server).await;
    let http = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let response = tokio::time::timeout(
        TIMEOUT,
        http.post(format!("{}/octo.v1.ChatService/Chat", server.url()))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .header("origin", "http://page.example")
            .body(frame(&pb::ChatRequest {
                session: session.name.clone(),
                parts: vec![text(TOOL_TURN)],
                ..Default::default()
            }))
            .send(),
    )
    .await
    .expect("answers in time")
    .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc-web")),
        "{:?}",
        response.headers()
    );
    let mut body = tokio::time::timeout(TIMEOUT, response.bytes())
        .await
        .expect("the stream ends after the turn")
        .expect("body");
    // Data frames, then exactly one trailer frame, last.
    let mut events = Vec::new();
    let mut trailers = None;
    while body.remaining() >= 5 {
        assert!(trailers.is_none(), "nothing after the trailer frame");
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        assert!(body.remaining() >= len, "frame of {len} bytes is complete");
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            trailers = Some(String::from_utf8_lossy(&payload).into_owned());
        } else {
            assert_eq!(flag, 0, "uncompressed data frame");
            events.push(pb::SessionEvent::decode(payload).expect("a SessionEvent"));
        }
    }
    assert!(!body.has_remaining(), "no partial frame at the end");
    let trailers = trailers.expect("a trailer frame");
    assert!(
        trailers.to_ascii_lowercase().contains("grpc-status:0"),
        "{trailers}"
    );
    assert!(events.len() > 10, "several data frames: {}", events.len());
    assert_tool_turn(&events);
}

#[tokio::test]
async fn tool_turn_over_json_sse() {
    let server = TestServer::start().await;
    let session = auto_session(&server).await;
    let response = tokio::time::timeout(
        TIMEOUT,
        reqwest::Client::new()
            .post(format!("{}/v1/{}:chat", server.url(), session.name))
            .json(&serde_json::json!({"parts": [{"text": TOOL_TURN}]}))
            .send(),
    )
    .await
    .expect("answers in time")
    .expect("request");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        assert_eq!(event.event, None, "no error event: {}", event.data);
        events.push(event);
    }
    assert!(!events.is_empty());
    let mut kinds = Vec::new();
    let mut text = String::new();
    let mut last_id = 0i64;
    for event in &events {
        let json = event.json();
        let sequence: i64 = json["sequence"]
            .as_str()
            .expect("int64 sequence as a JSON string")
            .parse()
            .expect("number");
        assert_eq!(
            event.id.as_deref(),
            Some(sequence.to_string().as_str()),
            "id: is the sequence: {}",
            event.data
        );
        assert!(sequence > last_id, "increasing ids");
        last_id = sequence;
        let object = json.as_object().expect("object");
        let kind = object
            .keys()
            .find(|k| !["sequence", "session", "turn", "time"].contains(&k.as_str()))
            .expect("one kind field")
            .clone();
        if kind == "textDelta" {
            text.push_str(json["textDelta"]["text"].as_str().unwrap_or_default());
        } else if kind != "toolCallOutput" {
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds,
        [
            "messageCompleted",
            "turnQueued",
            "turnStarted",
            "messageStarted",
            "messageCompleted",
            "toolCallStarted",
            "toolCallFinished",
            "messageCompleted",
            "messageStarted",
            "contentStarted",
            "contentFinished",
            "messageCompleted",
            "turnFinished"
        ]
    );
    assert_eq!(text.trim_end(), REPLY);
    let last = events.last().expect("events").json();
    assert_eq!(
        last["turnFinished"]["turn"]["status"], "TURN_STATUS_SUCCEEDED",
        "{last}"
    );
    let finished_tool = events
        .iter()
        .map(|e| e.json())
        .find(|j| j.get("toolCallFinished").is_some())
        .expect("toolCallFinished");
    assert_eq!(
        finished_tool["toolCallFinished"]["record"]["status"], "TOOL_CALL_STATUS_SUCCEEDED",
        "{finished_tool}"
    );
}
