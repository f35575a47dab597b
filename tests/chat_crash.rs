//! A crash mid-turn: the real `octo serve` process is killed with SIGKILL while a turn
//! streams and another waits in the queue, then restarted on the same data dir. The
//! messages survive, the running turn becomes INTERRUPTED (keeping its partial text),
//! the queued turn runs, and event sequences keep increasing.

use crate::common;

use std::{path::Path, time::Duration};

use common::{
    TIMEOUT, collect_until, finishes, get_turn, history, message_text, numbered_tokens, send_text,
    sent_turn, subscribe,
};
use octo::pb;
use tokio::process::Child;

/// The default model streams 1000 tokens 20 ms apart (20 s); `fast` answers at once.
const CONFIG: &str = r#"
default_model = "slow"

[models.slow]
provider = "mock"
model = "mock"

[models.slow.options]
tokens = 1000
token_delay_ms = 20

[models.fast]
provider = "mock"
model = "mock"
"#;

/// Starts `octo serve --demo` on an ephemeral port and returns it with its address.
async fn serve(home: &Path) -> (Child, String) {
    let data = home.join("data");
    let config = home.join("octo.toml");
    let args: [&std::ffi::OsStr; 5] = [
        "--demo".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    common::spawn_serve(home, &args).await
}

#[tokio::test]
async fn a_killed_server_recovers_its_turns_on_restart() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("octo.toml"), CONFIG).expect("config");

    let (mut first_server, address) = serve(home.path()).await;
    let channel = common::connect(&address).await;
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel);
    let session = common::create(&mut sessions, "crash").await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let slow = sent_turn(
        &send_text(&mut chat, &session.name, "go slow", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    // 100 tokens at 20 ms: past the 1 s checkpoint of the streaming text.
    let deltas = std::sync::atomic::AtomicUsize::new(0);
    let before = collect_until(&mut watcher, |e| {
        matches!(e.kind, Some(pb::session_event::Kind::TextDelta(_)))
            && deltas.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 100
    })
    .await;
    let queued = chat
        .send_message(pb::SendMessageRequest {
            session: session.name.clone(),
            parts: vec![common::text("second")],
            on_busy: pb::BusyPolicy::Enqueue.into(),
            model: "models/fast".into(),
        })
        .await
        .expect("queue a second turn")
        .into_inner();
    let queued = sent_turn(&queued);
    assert_eq!(queued.status(), pb::TurnStatus::Queued);
    let last_seen = before.last().expect("events").sequence;

    first_server.kill().await.expect("SIGKILL");
    drop(watcher);

    let (_second_server, address) = serve(home.path()).await;
    let channel = common::connect(&address).await;
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel);

    // The queued turn runs to its end after the restart.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let done = loop {
        let turn = get_turn(&mut chat, &queued.name).await;
        if !matches!(
            turn.status(),
            pb::TurnStatus::Queued | pb::TurnStatus::Running
        ) {
            break turn;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queued turn ends in time: {turn:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.status(), pb::TurnStatus::Succeeded, "{done:?}");
    assert_eq!(done.model, "models/fast");

    let interrupted = get_turn(&mut chat, &slow.name).await;
    assert_eq!(interrupted.status(), pb::TurnStatus::Interrupted);
    assert!(interrupted.end_time.is_some());
    assert!(
        interrupted
            .error
            .as_ref()
            .is_some_and(|e| !e.reason.is_empty()),
        "{interrupted:?}"
    );

    let messages = history(&mut chat, &session.name).await;
    let user: Vec<String> = messages
        .iter()
        .filter(|m| m.role() == pb::Role::User)
        .map(message_text)
        .collect();
    assert_eq!(user, ["second", "go slow"], "both user messages survived");
    let partial = messages
        .iter()
        .find(|m| m.turn == slow.name && m.role() == pb::Role::Assistant)
        .expect("the interrupted turn's partial answer is kept");
    assert!(partial.incomplete);
    let text = message_text(partial);
    assert!(
        !text.is_empty() && numbered_tokens(1000).starts_with(&text),
        "a prefix of the answer: {text:?}"
    );
    let answer = messages
        .iter()
        .find(|m| m.turn == queued.name && m.role() == pb::Role::Assistant)
        .expect("the queued turn's answer");
    assert_eq!(message_text(answer), "Echo: second");
    assert!(!answer.incomplete);

    // Sequences go on increasing across the crash; resuming from before it is a reset.
    let mut fresh = subscribe(&mut chat, &session.name, 0).await;
    let snapshot = fresh.message().await.expect("stream").expect("snapshot");
    let Some(pb::session_event::Kind::Snapshot(snapshot)) = snapshot.kind else {
        panic!("snapshot first");
    };
    assert!(
        snapshot.last_sequence > last_seen,
        "{} > {last_seen}",
        snapshot.last_sequence
    );
    let mut resumed = subscribe(&mut chat, &session.name, last_seen).await;
    let events = collect_until(&mut resumed, |e| {
        matches!(e.kind, Some(pb::session_event::Kind::StreamReset(_))) || finishes(&queued.name)(e)
    })
    .await;
    assert!(
        matches!(
            events.get(1).and_then(|e| e.kind.as_ref()),
            Some(pb::session_event::Kind::StreamReset(_))
        ),
        "events before the crash are gone: a reset, not a silent gap: {:?}",
        common::kinds(&events)
    );
}

/// A graceful stop mid-turn: the running turn ends INTERRUPTED (stored, with exactly
/// one terminal event), the queued one stays queued and runs after the restart.
#[tokio::test]
async fn a_graceful_stop_interrupts_the_running_turn_and_keeps_the_queue() {
    let server = common::TestServer::start().await;
    let session = common::create(&mut server.sessions().await, "stop").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let running = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            "/sleep 60000",
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    // message_started: the turn has read its history and waits in the model call.
    collect_until(&mut watcher, |e| {
        matches!(&e.kind, Some(pb::session_event::Kind::MessageStarted(_)))
    })
    .await;
    let queued = sent_turn(
        &send_text(&mut chat, &session.name, "second", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    drop(chat);

    let stopped = tokio::time::Instant::now();
    let (dir, config) = server.stop().await;
    assert!(
        stopped.elapsed() < Duration::from_secs(20),
        "the sleeping turn does not hold the shutdown"
    );
    // Whatever the watcher got before the stream closed holds at most one end.
    let mut ends = 0;
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_secs(5), watcher.message()).await
    {
        if let Some(turn) = common::finished(&event) {
            assert_eq!(turn.name, running.name);
            assert_eq!(turn.status(), pb::TurnStatus::Interrupted);
            ends += 1;
        }
    }
    assert!(ends <= 1);

    let server = common::TestServer::start_in(dir, config).await;
    let mut chat = server.chat().await;
    let interrupted = get_turn(&mut chat, &running.name).await;
    assert_eq!(interrupted.status(), pb::TurnStatus::Interrupted);
    assert!(interrupted.error.is_some());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let done = loop {
        let turn = get_turn(&mut chat, &queued.name).await;
        if !matches!(
            turn.status(),
            pb::TurnStatus::Queued | pb::TurnStatus::Running
        ) {
            break turn;
        }
        assert!(tokio::time::Instant::now() < deadline, "{turn:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.status(), pb::TurnStatus::Succeeded, "{done:?}");
    let messages = history(&mut chat, &session.name).await;
    assert_eq!(message_text(&messages[0]), "Echo: second");
}
