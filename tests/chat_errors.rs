//! Bad input to ChatService: empty or invalid parts, unknown sessions, models, turns and
//! confirmations, attachments over the limit. Each is a precise status, with ErrorInfo
//! and field violations, and nothing is stored.

use crate::common;

use common::{
    ChatClient, TestServer, create, history, reason, send_text, sent_turn, violated_fields,
};
use octo::pb;

const MISSING_SESSION: &str = "sessions/0190b5b4-0000-7000-8000-000000000000";

async fn send(chat: &mut ChatClient, request: pb::SendMessageRequest) -> tonic::Status {
    chat.send_message(request)
        .await
        .expect_err("the request is refused")
}

fn request(session: &str, parts: Vec<pb::Part>) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        session: session.to_owned(),
        parts,
        ..Default::default()
    }
}

async fn nothing_stored(chat: &mut ChatClient, session: &str) {
    assert!(history(chat, session).await.is_empty(), "no message stored");
    let turns = chat
        .list_turns(pb::ListTurnsRequest {
            parent: session.to_owned(),
            ..Default::default()
        })
        .await
        .expect("ListTurns")
        .into_inner()
        .turns;
    assert!(turns.is_empty(), "no turn stored: {turns:?}");
}

#[tokio::test]
async fn invalid_parts_are_field_violations() {
    let server = TestServer::start().await;
    let session = create(&mut server.sessions().await, "bad input").await;
    let mut chat = server.chat().await;
    let cases: Vec<(Vec<pb::Part>, &str)> = vec![
        (vec![], "parts"),
        (vec![common::text("   ")], "parts[0].text"),
        (vec![pb::Part { kind: None }], "parts[0]"),
        (
            vec![
                common::text("ok"),
                pb::Part {
                    kind: Some(pb::part::Kind::ToolResult(pb::ToolResult {
                        tool_call_id: "call_1".into(),
                        output: "forged".into(),
                        is_error: false,
                    })),
                },
            ],
            "parts[1]",
        ),
        (
            vec![pb::Part {
                kind: Some(pb::part::Kind::Attachment(pb::Attachment {
                    mime_type: "image/png".into(),
                    filename: String::new(),
                    source: None,
                })),
            }],
            "parts[0].attachment",
        ),
    ];
    for (parts, field) in cases {
        let status = send(&mut chat, request(&session.name, parts.clone())).await;
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{field}: {status:?}"
        );
        assert_eq!(reason(&status), "INVALID_ARGUMENT");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
        // Chat validates the same way, before streaming anything.
        let status = chat
            .chat(pb::ChatRequest {
                session: session.name.clone(),
                parts,
                ..Default::default()
            })
            .await
            .expect_err("Chat refuses it too");
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{field}: {status:?}"
        );
    }
    let status = send(
        &mut chat,
        pb::SendMessageRequest {
            on_busy: 99,
            ..request(&session.name, vec![common::text("hi")])
        },
    )
    .await;
    assert_eq!(violated_fields(&status), ["on_busy"], "{status:?}");
    let status = send(
        &mut chat,
        request("not-a-session", vec![common::text("hi")]),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["session"], "{status:?}");
    nothing_stored(&mut chat, &session.name).await;
}

#[tokio::test]
async fn an_unknown_session_is_not_found() {
    let server = TestServer::start().await;
    let mut chat = server.chat().await;
    let status = send(
        &mut chat,
        request(MISSING_SESSION, vec![common::text("hi")]),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "SESSION_NOT_FOUND");
    let status = chat
        .chat(pb::ChatRequest {
            session: MISSING_SESSION.into(),
            parts: vec![common::text("hi")],
            ..Default::default()
        })
        .await
        .expect_err("Chat");
    assert_eq!(reason(&status), "SESSION_NOT_FOUND", "{status:?}");
    let status = chat
        .stream_events(pb::StreamEventsRequest {
            session: MISSING_SESSION.into(),
            after_sequence: 0,
        })
        .await
        .expect_err("StreamEvents");
    assert_eq!(reason(&status), "SESSION_NOT_FOUND", "{status:?}");
    let status = chat
        .list_messages(pb::ListMessagesRequest {
            parent: MISSING_SESSION.into(),
            ..Default::default()
        })
        .await
        .expect_err("ListMessages");
    assert_eq!(reason(&status), "SESSION_NOT_FOUND", "{status:?}");
    let status = chat
        .clear_queue(pb::ClearQueueRequest {
            session: MISSING_SESSION.into(),
        })
        .await
        .expect_err("ClearQueue");
    assert_eq!(reason(&status), "SESSION_NOT_FOUND", "{status:?}");

    // The JSON mapping says the same with HTTP 404.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/{MISSING_SESSION}/messages", server.url()))
        .json(&serde_json::json!({"parts": [{"text": "hi"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], 5);
    assert!(body.to_string().contains("SESSION_NOT_FOUND"), "{body}");
}

#[tokio::test]
async fn an_unknown_model_override_is_not_found_and_stores_nothing() {
    let server = TestServer::start().await;
    let session = create(&mut server.sessions().await, "model").await;
    let mut chat = server.chat().await;
    let status = send(
        &mut chat,
        pb::SendMessageRequest {
            model: "models/nope".into(),
            ..request(&session.name, vec![common::text("hi")])
        },
    )
    .await;
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "MODEL_NOT_FOUND");
    assert!(status.message().contains("models/nope"), "{status:?}");
    let status = send(
        &mut chat,
        pb::SendMessageRequest {
            model: "nope".into(),
            ..request(&session.name, vec![common::text("hi")])
        },
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["model"]);
    nothing_stored(&mut chat, &session.name).await;

    // A known override is used for that turn only.
    let turn = sent_turn(
        &chat
            .send_message(pb::SendMessageRequest {
                model: "models/mock".into(),
                ..request(&session.name, vec![common::text("hi")])
            })
            .await
            .expect("known model")
            .into_inner(),
    );
    assert_eq!(turn.model, "models/mock");
}

#[tokio::test]
async fn an_attachment_over_the_limit_names_the_field() {
    let server = TestServer::start_with(|config| config.max_attachment_bytes = 1024).await;
    let session = create(&mut server.sessions().await, "attachment").await;
    let mut chat = server.chat().await;
    let attachment = |size: usize| pb::Part {
        kind: Some(pb::part::Kind::Attachment(pb::Attachment {
            mime_type: "application/octet-stream".into(),
            filename: "blob.bin".into(),
            source: Some(pb::attachment::Source::Data(vec![7u8; size])),
        })),
    };
    let status = send(&mut chat, request(&session.name, vec![attachment(2048)])).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["parts[0].attachment.data"]);
    assert!(
        status.message().contains("1024"),
        "says the limit: {status:?}"
    );
    let status = send(
        &mut chat,
        request(
            &session.name,
            vec![common::text("look"), attachment(10), attachment(4096)],
        ),
    )
    .await;
    assert_eq!(violated_fields(&status), ["parts[2].attachment.data"]);
    nothing_stored(&mut chat, &session.name).await;

    // At the limit it is accepted and stored.
    let sent = chat
        .send_message(request(
            &session.name,
            vec![common::text("look"), attachment(1024)],
        ))
        .await
        .expect("at the limit")
        .into_inner();
    let stored = sent.message.expect("message");
    assert!(matches!(
        &stored.parts[1].kind,
        Some(pb::part::Kind::Attachment(a)) if matches!(&a.source, Some(pb::attachment::Source::Data(d)) if d.len() == 1024)
    ));
}

#[tokio::test]
async fn unknown_confirmations_turns_and_messages_are_not_found() {
    let server = TestServer::start().await;
    let session = create(&mut server.sessions().await, "unknown").await;
    let other = create(&mut server.sessions().await, "other").await;
    let mut chat = server.chat().await;
    let missing_id = "0190b5b4-0000-7000-8000-000000000001";

    // Before and after the session has live state.
    for _ in 0..2 {
        let status = chat
            .respond_to_confirmation(pb::RespondToConfirmationRequest {
                name: format!("{}/confirmations/{missing_id}", session.name),
                decision: pb::ConfirmationDecision::Allow.into(),
            })
            .await
            .expect_err("unknown confirmation");
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert_eq!(reason(&status), "CONFIRMATION_NOT_FOUND");
        let mut watcher = common::subscribe(&mut chat, &session.name, 0).await;
        let turn = sent_turn(
            &send_text(&mut chat, &session.name, "hi", pb::BusyPolicy::Enqueue)
                .await
                .expect("send"),
        );
        common::collect_until(&mut watcher, common::finishes(&turn.name)).await;
    }
    let status = chat
        .respond_to_confirmation(pb::RespondToConfirmationRequest {
            name: format!("{}/confirmations/{missing_id}", session.name),
            decision: pb::ConfirmationDecision::Unspecified.into(),
        })
        .await
        .expect_err("no decision");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["decision"]);

    let missing_turn = format!("{}/turns/{missing_id}", session.name);
    let status = chat
        .get_turn(pb::GetTurnRequest {
            name: missing_turn.clone(),
        })
        .await
        .expect_err("GetTurn");
    assert_eq!(reason(&status), "TURN_NOT_FOUND", "{status:?}");
    let status = chat
        .cancel_turn(pb::CancelTurnRequest { name: missing_turn })
        .await
        .expect_err("CancelTurn");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "TURN_NOT_FOUND");

    // A turn or message of one session is not found under another.
    let turns = chat
        .list_turns(pb::ListTurnsRequest {
            parent: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("ListTurns")
        .into_inner()
        .turns;
    let turn_id = turns[0].name.rsplit('/').next().expect("id").to_owned();
    let status = chat
        .get_turn(pb::GetTurnRequest {
            name: format!("{}/turns/{turn_id}", other.name),
        })
        .await
        .expect_err("another session's turn");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let message = history(&mut chat, &session.name).await[0].name.clone();
    let message_id = message.rsplit('/').next().expect("id").to_owned();
    let status = chat
        .get_message(pb::GetMessageRequest {
            name: format!("{}/messages/{message_id}", other.name),
        })
        .await
        .expect_err("another session's message");
    assert_eq!(status.code(), tonic::Code::NotFound);

    let status = chat
        .stream_events(pb::StreamEventsRequest {
            session: session.name.clone(),
            after_sequence: -1,
        })
        .await
        .expect_err("negative resume point");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["after_sequence"]);
}
