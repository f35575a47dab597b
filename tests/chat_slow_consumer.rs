//! A subscriber that stops reading never blocks the agent or other subscribers, and
//! once it reads again it catches up without a gap (or is told to reset).

use crate::common;

use common::{
    TIMEOUT, TestServer, collect_until, create, finishes, numbered_tokens, send_text, sent_turn,
    streamed_text, subscribe,
};
use octo::pb;
use tonic::transport::Endpoint;

const TOKENS: usize = 2000;

#[tokio::test]
async fn a_stalled_subscriber_does_not_block_the_turn_or_other_subscribers() {
    let server = TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock");
        mock.options
            .insert("tokens".into(), serde_json::json!(TOKENS));
    })
    .await;
    let session = create(&mut server.sessions().await, "slow consumer").await;

    // Its own connection with tiny HTTP/2 windows: once a few events are in flight the
    // server cannot write more to it until it reads.
    let stalled_channel = tokio::time::timeout(
        TIMEOUT,
        Endpoint::from_shared(server.url())
            .expect("url")
            .initial_stream_window_size(Some(1024))
            .initial_connection_window_size(Some(1024))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects");
    let mut stalled_client = pb::chat_service_client::ChatServiceClient::new(stalled_channel);
    let mut stalled = subscribe(&mut stalled_client, &session.name, 0).await;

    let mut chat = server.chat().await;
    let mut reader = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let events = collect_until(&mut reader, finishes(&turn.name)).await;
    assert_eq!(streamed_text(&events), numbered_tokens(TOKENS));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, Some(pb::session_event::Kind::StreamReset(_)))),
        "a reader that keeps up gets no reset"
    );
    let sequences: Vec<i64> = events[1..].iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap for the reader"
    );

    // The stalled subscriber, reading at last, catches up from the retained log.
    let late = collect_until(&mut stalled, finishes(&turn.name)).await;
    let sequences: Vec<i64> = late[1..].iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap or duplicate after catching up: {:?}",
        common::kinds(&late[..late.len().min(5)])
    );
    assert_eq!(streamed_text(&late), numbered_tokens(TOKENS));
}

/// With a retained window smaller than what the stalled subscriber missed, it is told
/// so with a stream_reset, then goes on from the oldest retained event without a gap.
#[tokio::test]
async fn a_subscriber_stalled_past_the_retained_window_gets_a_reset() {
    let server = TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock");
        mock.options
            .insert("tokens".into(), serde_json::json!(TOKENS));
        config.event_log_capacity = 100;
    })
    .await;
    let session = create(&mut server.sessions().await, "slow consumer").await;
    let stalled_channel = tokio::time::timeout(
        TIMEOUT,
        Endpoint::from_shared(server.url())
            .expect("url")
            .initial_stream_window_size(Some(1024))
            .initial_connection_window_size(Some(1024))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects");
    let mut stalled_client = pb::chat_service_client::ChatServiceClient::new(stalled_channel);
    let mut stalled = subscribe(&mut stalled_client, &session.name, 0).await;

    let mut chat = server.chat().await;
    let mut reader = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    collect_until(&mut reader, finishes(&turn.name)).await;

    let late = collect_until(&mut stalled, finishes(&turn.name)).await;
    let reset = late
        .iter()
        .position(|e| matches!(e.kind, Some(pb::session_event::Kind::StreamReset(_))))
        .unwrap_or_else(|| panic!("a reset: {} events", late.len()));
    let Some(pb::session_event::Kind::StreamReset(info)) = &late[reset].kind else {
        unreachable!()
    };
    assert_eq!(late[reset + 1].sequence, info.oldest_retained_sequence);
    let sequences: Vec<i64> = late[reset + 1..].iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous after the reset"
    );
    let before: Vec<i64> = late[1..reset].iter().map(|e| e.sequence).collect();
    assert!(before.windows(2).all(|w| w[1] == w[0] + 1));
}
