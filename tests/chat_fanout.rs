//! One session, many subscribers: every subscriber receives the same events (each event
//! is encoded once and the bytes shared, so a mix-up would show here), and the Chat
//! stream is exactly its turn's share of them.

use crate::common;

use common::{TestServer, collect_until, create, finishes, streamed_text, subscribe};
use octo::pb;
use serde_json::json;

#[tokio::test]
async fn every_subscriber_receives_the_same_events() {
    let server = TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock model");
        mock.options.insert("tokens".into(), json!(200));
    })
    .await;
    let session = create(&mut server.sessions().await, "fanout").await;
    let mut chat = server.chat().await;

    // Subscribed (snapshot received) before the turn, so each of its events is emitted
    // to all of them.
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut stream = subscribe(&mut chat, &session.name, 0).await;
        let snapshot = collect_until(&mut stream, |_| true).await;
        assert!(matches!(
            snapshot[0].kind,
            Some(pb::session_event::Kind::Snapshot(_))
        ));
        subscribers.push(stream);
    }
    let mut turn_stream = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![common::text("fan out")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let from_chat = collect_until(&mut turn_stream, common::is_turn_finished).await;
    let turn = from_chat
        .last()
        .and_then(common::finished)
        .expect("turn")
        .name
        .clone();

    let mut received = Vec::new();
    for stream in &mut subscribers {
        received.push(collect_until(stream, finishes(&turn)).await);
    }
    assert!(received[0].len() > 200, "{} events", received[0].len());
    let sequences: Vec<i64> = received[0].iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous: {sequences:?}"
    );
    for other in &received[1..] {
        assert_eq!(other, &received[0]);
    }
    let of_turn: Vec<_> = received[0]
        .iter()
        .filter(|e| e.turn == turn)
        .cloned()
        .collect();
    assert_eq!(from_chat, of_turn, "Chat carries exactly the turn's events");
    assert_eq!(streamed_text(&from_chat), streamed_text(&received[2]));
    assert!(!streamed_text(&from_chat).is_empty());
}
