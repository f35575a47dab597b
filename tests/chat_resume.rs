//! Resuming StreamEvents: over gRPC with after_sequence and over SSE with Last-Event-ID,
//! each event after the resume point exactly once, in order; and an explicit
//! stream_reset when the resume point is older than the retained window (the last
//! `event_log_capacity` events while subscribed, `event_log_bytes` of them while not).

use crate::common;

use common::{
    ChatClient, SseEvent, SseReader, TestServer, collect_until, create, finishes, history,
    message_text, numbered_tokens, send_text, sent_turn, streamed_text, subscribe,
};
use octo::pb;
use serde_json::json;

const TOKENS: usize = 300;

async fn server(tokens: usize, delay_ms: u64, log_capacity: Option<usize>) -> TestServer {
    TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock model");
        mock.options.insert("tokens".into(), json!(tokens));
        mock.options
            .insert("token_delay_ms".into(), json!(delay_ms));
        if let Some(capacity) = log_capacity {
            config.event_log_capacity = capacity;
        }
    })
    .await
}

/// Events of `stream` up to and including the `n`th text delta.
async fn until_deltas(
    stream: &mut tonic::Streaming<pb::SessionEvent>,
    n: usize,
) -> Vec<pb::SessionEvent> {
    let seen = std::sync::atomic::AtomicUsize::new(0);
    collect_until(stream, |e| {
        matches!(e.kind, Some(pb::session_event::Kind::TextDelta(_)))
            && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == n
    })
    .await
}

fn is_snapshot(event: &pb::SessionEvent) -> bool {
    matches!(event.kind, Some(pb::session_event::Kind::Snapshot(_)))
}

fn assert_contiguous(sequences: &[i64]) {
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "each event exactly once, in order: {sequences:?}"
    );
}

async fn stored_answer(chat: &mut ChatClient, session: &str) -> String {
    let messages = history(chat, session).await;
    message_text(&messages[0])
}

#[tokio::test]
async fn grpc_resume_after_the_last_seen_sequence_has_no_gap_and_no_duplicate() {
    let server = server(TOKENS, 2, None).await;
    let session = create(&mut server.sessions().await, "resume").await;
    let mut chat = server.chat().await;
    let mut first = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let before = until_deltas(&mut first, 40).await;
    assert!(is_snapshot(&before[0]), "snapshot first");
    drop(first);
    let last_seen = before.last().expect("events").sequence;

    let mut second = subscribe(&mut chat, &session.name, last_seen).await;
    let after = collect_until(&mut second, finishes(&turn.name)).await;
    assert!(
        is_snapshot(&after[0]),
        "snapshot first on a resumed stream too"
    );
    let Some(pb::session_event::Kind::Snapshot(snapshot)) = &after[0].kind else {
        unreachable!()
    };
    assert!(snapshot.last_sequence >= last_seen);

    let sequences: Vec<i64> = before[1..]
        .iter()
        .chain(&after[1..])
        .map(|e| e.sequence)
        .collect();
    assert_contiguous(&sequences);
    let text = format!("{}{}", streamed_text(&before), streamed_text(&after));
    assert_eq!(text, numbered_tokens(TOKENS));
    assert_eq!(text, stored_answer(&mut chat, &session.name).await);
}

/// Resuming several times in a row while the turn streams.
#[tokio::test]
async fn grpc_resume_repeatedly_mid_turn() {
    let server = server(TOKENS, 1, None).await;
    let session = create(&mut server.sessions().await, "resume").await;
    let mut chat = server.chat().await;
    let mut stream = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let mut all = Vec::new();
    for _ in 0..5 {
        let part = until_deltas(&mut stream, 25).await;
        all.extend(part.into_iter().filter(|e| !is_snapshot(e)));
        let last = all.last().expect("events").sequence;
        stream = subscribe(&mut chat, &session.name, last).await;
    }
    let rest = collect_until(&mut stream, finishes(&turn.name)).await;
    all.extend(rest.into_iter().filter(|e| !is_snapshot(e)));
    let sequences: Vec<i64> = all.iter().map(|e| e.sequence).collect();
    assert_contiguous(&sequences);
    assert_eq!(streamed_text(&all), numbered_tokens(TOKENS));
}

async fn sse_events(server: &TestServer, session: &str, last_event_id: Option<i64>) -> SseReader {
    let mut request = reqwest::Client::new().get(format!("{}/v1/{session}/events", server.url()));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = tokio::time::timeout(common::TIMEOUT, request.send())
        .await
        .expect("answers in time")
        .expect("request");
    assert_eq!(response.status(), 200);
    SseReader::new(response)
}

/// Reads SSE events until `stop` holds for one (included).
async fn sse_until(
    reader: &mut SseReader,
    stop: impl Fn(&serde_json::Value) -> bool,
) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        assert_eq!(event.event, None, "no error event: {}", event.data);
        let done = stop(&event.json());
        events.push(event);
        if done {
            return events;
        }
    }
    panic!("the event stream ended early");
}

fn sse_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter_map(|e| e.json()["textDelta"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// The `id:` of each event, checked against its sequence; the snapshot has none.
fn sse_ids(events: &[SseEvent]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| {
            let json = e.json();
            if json.get("snapshot").is_some() {
                assert_eq!(e.id, None, "the snapshot carries no id");
                return None;
            }
            let id: i64 =
                e.id.as_deref()
                    .expect("id: line")
                    .parse()
                    .expect("numeric id");
            assert_eq!(json["sequence"], id.to_string(), "id: is the sequence");
            Some(id)
        })
        .collect()
}

#[tokio::test]
async fn sse_resume_with_last_event_id() {
    let server = server(TOKENS, 2, None).await;
    let session = create(&mut server.sessions().await, "resume").await;
    let mut chat = server.chat().await;
    let mut first = sse_events(&server, &session.name, None).await;
    let snapshot = first.next().await.expect("snapshot");
    assert!(
        snapshot.json().get("snapshot").is_some(),
        "{}",
        snapshot.data
    );
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let deltas = std::sync::atomic::AtomicUsize::new(0);
    let before = sse_until(&mut first, |j| {
        j.get("textDelta").is_some()
            && deltas.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 40
    })
    .await;
    drop(first);
    let last_id = *sse_ids(&before).last().expect("ids");

    let mut second = sse_events(&server, &session.name, Some(last_id)).await;
    let after = sse_until(&mut second, |j| {
        j["turnFinished"]["turn"]["name"] == turn.name.as_str()
    })
    .await;
    assert!(after[0].json().get("snapshot").is_some(), "snapshot first");
    let ids: Vec<i64> = sse_ids(&before)
        .into_iter()
        .chain(sse_ids(&after))
        .collect();
    assert_contiguous(&ids);
    let text = format!("{}{}", sse_text(&before), sse_text(&after));
    assert_eq!(text, numbered_tokens(TOKENS));
    assert_eq!(text, stored_answer(&mut chat, &session.name).await);
}

#[tokio::test]
async fn a_resume_point_older_than_the_retained_window_gets_a_stream_reset() {
    let server = server(TOKENS, 0, Some(16)).await;
    let session = create(&mut server.sessions().await, "reset").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let all = collect_until(&mut watcher, finishes(&turn.name)).await;
    let first_sequence = all[1].sequence;
    let last_sequence = all.last().expect("events").sequence;
    assert!(
        last_sequence - first_sequence > 16,
        "more events than retained"
    );

    // Resume from the first event of the turn: long gone from a 16-event window.
    let mut resumed = subscribe(&mut chat, &session.name, first_sequence).await;
    let events = collect_until(&mut resumed, |e| e.sequence >= last_sequence).await;
    assert!(is_snapshot(&events[0]));
    let Some(pb::session_event::Kind::StreamReset(reset)) = &events[1].kind else {
        panic!(
            "stream_reset right after the snapshot: {:?}",
            common::kinds(&events)
        );
    };
    assert!(!reset.reason.is_empty());
    assert!(
        reset.oldest_retained_sequence > first_sequence + 1,
        "{reset:?}"
    );
    // Then the retained events, from the oldest retained on, in order.
    assert_eq!(events[2].sequence, reset.oldest_retained_sequence);
    let sequences: Vec<i64> = events[2..].iter().map(|e| e.sequence).collect();
    assert_contiguous(&sequences);
    assert!(
        sequences.len() <= 16,
        "at most the retained window: {}",
        sequences.len()
    );

    // A resume point inside the window resumes normally.
    let inside = last_sequence - 3;
    let mut resumed = subscribe(&mut chat, &session.name, inside).await;
    let events = collect_until(&mut resumed, |e| e.sequence >= last_sequence).await;
    let sequences: Vec<i64> = events[1..].iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (inside + 1..=last_sequence).collect::<Vec<_>>());
}

#[tokio::test]
async fn sse_reset_when_last_event_id_is_too_old() {
    let server = server(TOKENS, 0, Some(16)).await;
    let session = create(&mut server.sessions().await, "reset").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let all = collect_until(&mut watcher, finishes(&turn.name)).await;
    let mut reader = sse_events(&server, &session.name, Some(all[1].sequence)).await;
    let snapshot = reader.next().await.expect("snapshot");
    assert!(snapshot.json().get("snapshot").is_some());
    let reset = reader.next().await.expect("reset");
    let json = reset.json();
    assert!(json.get("streamReset").is_some(), "{}", reset.data);
    assert_eq!(reset.id, None, "a reset has no sequence of its own");
}

/// A resume point beyond the last event (a client bug, or a sequence from another
/// session) must not silently swallow the live events that follow.
#[tokio::test]
async fn a_resume_point_in_the_future_does_not_swallow_live_events() {
    let server = server(3, 0, None).await;
    let session = create(&mut server.sessions().await, "future").await;
    let mut chat = server.chat().await;
    let mut future = match chat
        .stream_events(pb::StreamEventsRequest {
            session: session.name.clone(),
            after_sequence: 1_000_000,
        })
        .await
    {
        // Refusing the resume point outright is fine too.
        Err(status) => {
            assert!(matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::OutOfRange
            ));
            return;
        }
        Ok(response) => response.into_inner(),
    };
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    collect_until(&mut watcher, finishes(&turn.name)).await;
    // The turn is over: whatever the stream delivers is there already.
    let snapshot = future.message().await.expect("stream").expect("snapshot");
    assert!(is_snapshot(&snapshot));
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), future.message())
        .await
        .map(|m| m.expect("stream").expect("event"));
    assert!(
        next.is_ok(),
        "the turn's events (or a reset) arrive after a resume point in the future"
    );
}

/// A subscriber joining mid-answer: the snapshot's partial message holds exactly the
/// text of the deltas up to snapshot.last_sequence, and live events continue right
/// after it, so partial + later deltas is the whole answer.
#[tokio::test]
async fn a_mid_turn_snapshot_joins_the_live_stream_without_gap() {
    let server = server(TOKENS, 2, None).await;
    let session = create(&mut server.sessions().await, "join").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let mut full = until_deltas(&mut watcher, 30).await;

    let mut late = subscribe(&mut chat, &session.name, 0).await;
    let first = late.message().await.expect("stream").expect("snapshot");
    let Some(pb::session_event::Kind::Snapshot(snapshot)) = first.kind else {
        panic!("snapshot first");
    };
    assert_eq!(
        snapshot.active_turn.as_ref().map(|t| t.name.as_str()),
        Some(turn.name.as_str())
    );
    let partial = snapshot
        .partial_message
        .as_ref()
        .map(message_text)
        .expect("the partial message mid-answer");
    let rest = collect_until(&mut late, finishes(&turn.name)).await;
    assert_eq!(
        rest[0].sequence,
        snapshot.last_sequence + 1,
        "live right after the snapshot"
    );
    assert_contiguous(&rest.iter().map(|e| e.sequence).collect::<Vec<_>>());
    full.extend(collect_until(&mut watcher, finishes(&turn.name)).await);
    let upto: Vec<pb::SessionEvent> = full
        .iter()
        .filter(|e| e.sequence <= snapshot.last_sequence)
        .cloned()
        .collect();
    assert_eq!(partial, streamed_text(&upto));
    assert_eq!(
        format!("{partial}{}", streamed_text(&rest)),
        numbered_tokens(TOKENS)
    );
}

/// Waits on WatchSessions until `session` is reported idle after its turn: the turn's
/// last event (session_updated) is emitted just before that report.
async fn until_idle(
    watch: &mut tonic::Streaming<pb::WatchSessionsResponse>,
    session: &str,
) -> pb::Session {
    use pb::watch_sessions_response::Change;
    tokio::time::timeout(common::TIMEOUT, async {
        loop {
            let item = watch
                .message()
                .await
                .expect("watch ok")
                .expect("watch open");
            if let Some(Change::Updated(s)) = item.change
                && s.name == session
                && s.status() == pb::SessionStatus::Idle
                && s.message_count >= 2
            {
                return s;
            }
        }
    })
    .await
    .expect("the turn ends in time")
}

/// With nobody subscribed, a live session keeps only the newest `event_log_bytes` of
/// events: an older resume point gets a stream_reset, then exactly what is retained; a
/// resume point inside it resumes exactly. While a subscriber is connected, the
/// event-count window (`event_log_capacity`) applies instead, so the same resume point
/// is served in full.
#[tokio::test]
async fn an_unwatched_session_retains_only_its_byte_budget() {
    const BUDGET: usize = 8 * 1024;
    let server = TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock model");
        mock.options.insert("tokens".into(), json!(TOKENS));
        config.event_log_bytes = BUDGET;
    })
    .await;
    let mut sessions = server.sessions().await;
    let mut watch = server
        .sessions()
        .await
        .watch_sessions(pb::WatchSessionsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let mut chat = server.chat().await;

    // Nobody subscribes while the turn runs.
    let unwatched = create(&mut sessions, "unwatched").await;
    send_text(&mut chat, &unwatched.name, "go", pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    until_idle(&mut watch, &unwatched.name).await;
    let mut resumed = subscribe(&mut chat, &unwatched.name, 1).await;
    let first = resumed.message().await.expect("stream").expect("snapshot");
    let Some(pb::session_event::Kind::Snapshot(snapshot)) = &first.kind else {
        panic!("snapshot first");
    };
    let last = snapshot.last_sequence;
    assert!(last > TOKENS as i64, "the whole turn was emitted: {last}");
    let events = collect_until(&mut resumed, |e| e.sequence >= last).await;
    let Some(pb::session_event::Kind::StreamReset(reset)) = &events[0].kind else {
        panic!("stream_reset first: {:?}", common::kinds(&events[..3]));
    };
    let retained: Vec<i64> = events[1..].iter().map(|e| e.sequence).collect();
    assert_eq!(retained[0], reset.oldest_retained_sequence);
    assert_contiguous(&retained);
    assert_eq!(*retained.last().expect("retained"), last);
    // Every retained event counts at least its own size against the budget.
    let most = BUDGET / std::mem::size_of::<octo::runtime::events::Event>();
    assert!(
        retained.len() <= most,
        "{} events retained, at most {most} fit {BUDGET} bytes",
        retained.len()
    );
    assert!(
        retained.len() >= 10,
        "the newest events are kept: {}",
        retained.len()
    );
    drop(resumed);
    let inside = last - 3;
    let mut resumed = subscribe(&mut chat, &unwatched.name, inside).await;
    let events = collect_until(&mut resumed, |e| e.sequence >= last).await;
    assert!(is_snapshot(&events[0]));
    let sequences: Vec<i64> = events[1..].iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (inside + 1..=last).collect::<Vec<_>>());

    // A subscriber connected throughout: the whole turn stays resumable.
    let watched = create(&mut sessions, "watched").await;
    let mut watcher = subscribe(&mut chat, &watched.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &watched.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let seen = collect_until(&mut watcher, finishes(&turn.name)).await;
    let finished = seen.last().expect("events").sequence;
    let mut resumed = subscribe(&mut chat, &watched.name, 1).await;
    let events = collect_until(&mut resumed, |e| e.sequence >= finished).await;
    assert!(is_snapshot(&events[0]));
    let sequences: Vec<i64> = events[1..].iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (2..=finished).collect::<Vec<_>>(), "no reset");
    assert_eq!(streamed_text(&events), numbered_tokens(TOKENS));
    drop(watcher);
}
