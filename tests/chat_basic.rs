//! A first turn end to end over gRPC with the mock model.

use crate::common;

use common::{TestServer, collect_until, create, is_turn_finished, kinds, streamed_text, text};
use octo::pb;

#[tokio::test]
async fn chat_streams_a_turn_to_its_end_in_order() {
    let server = TestServer::start().await;
    let session = create(&mut server.sessions().await, "chat").await;
    let mut chat = server.chat().await;
    let mut stream = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text("hello there")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = collect_until(&mut stream, is_turn_finished).await;
    assert_eq!(streamed_text(&events), "Echo: hello there");
    let order: Vec<_> = kinds(&events)
        .into_iter()
        .filter(|k| *k != "text_delta")
        .collect();
    assert_eq!(
        order,
        [
            "message_completed",
            "turn_queued",
            "turn_started",
            "message_started",
            "content_started",
            "content_finished",
            "message_completed",
            "turn_finished"
        ]
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    // Chat streams only this turn's events (session_updated and others are skipped), so
    // sequences increase but need not be contiguous; StreamEvents tests check contiguity.
    assert!(
        sequences.windows(2).all(|w| w[1] > w[0]),
        "increasing: {sequences:?}"
    );
    let Some(pb::session_event::Kind::TurnFinished(finished)) =
        &events.last().and_then(|e| e.kind.clone())
    else {
        panic!("last is turn_finished");
    };
    let turn = finished.turn.as_ref().expect("turn");
    assert_eq!(turn.status(), pb::TurnStatus::Succeeded);
    assert_eq!(turn.model, "models/mock");
    assert!(turn.usage.as_ref().is_some_and(|u| u.output_tokens == 3));

    let history = chat
        .list_messages(pb::ListMessagesRequest {
            parent: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let texts: Vec<String> = history
        .messages
        .iter()
        .map(|m| {
            m.parts
                .iter()
                .filter_map(|p| match &p.kind {
                    Some(pb::part::Kind::Text(t)) => Some(t.clone()),
                    _ => None,
                })
                .collect::<String>()
        })
        .collect();
    assert_eq!(texts, ["Echo: hello there", "hello there"], "newest first");
}
