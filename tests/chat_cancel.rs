//! CancelTurn really stops: a running shell command and the processes it started are
//! killed, a streaming answer stops, a queued turn never starts; the turn ends with
//! exactly one terminal event; cancelling again returns the finished turn unchanged.

use crate::common;

use std::path::{Path, PathBuf};

use common::{
    ChatClient, TIMEOUT, TestServer, collect_until, create_in_mode, finished, finishes, get_turn,
    history, is_kind, message_text, send_text, sent_turn, streamed_text, subscribe,
};
use octo::pb;
use pb::session_event::Kind;

/// Live (non-zombie) processes running `sleep 1000` whose cwd is inside `dir`.
fn sleeps_in(dir: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if is_our_sleep(pid, dir) {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

fn is_our_sleep(pid: i32, dir: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return false;
    };
    if cmdline != b"sleep\x001000\x00" {
        return false;
    }
    let alive = std::fs::read_to_string(proc.join("stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`: the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    });
    alive && std::fs::read_link(proc.join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
}

/// Waits (see `common::eventually`) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    common::eventually(what, async || done().then_some(())).await
}

fn tool_message(command: &str) -> String {
    format!("/tool shell {}", serde_json::json!({ "command": command }))
}

async fn cancel(chat: &mut ChatClient, turn: &str) -> pb::Turn {
    tokio::time::timeout(
        TIMEOUT,
        chat.cancel_turn(pb::CancelTurnRequest {
            name: turn.to_owned(),
        }),
    )
    .await
    .expect("CancelTurn answers in time")
    .expect("CancelTurn")
    .into_inner()
}

#[tokio::test]
async fn cancel_kills_the_command_and_its_children() {
    let server = TestServer::start().await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "cancel",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let workdir = std::fs::canonicalize(&session.working_dir).expect("working dir exists");
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            &tool_message("sh -c 'sleep 1000 & sleep 1000'"),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    collect_until(&mut watcher, is_kind("tool_call_started")).await;
    let mut sleeps = Vec::new();
    eventually("both sleeps run", || {
        sleeps = sleeps_in(&workdir);
        sleeps.len() == 2
    })
    .await;

    let answer = cancel(&mut chat, &turn.name).await;
    assert_eq!(answer.name, turn.name);
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let ended = finished(events.last().expect("events"))
        .expect("turn")
        .clone();
    assert_eq!(ended.status(), pb::TurnStatus::Cancelled);
    assert!(ended.end_time.is_some());
    let record = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished");
    assert_eq!(record.status(), pb::ToolCallStatus::Cancelled, "{record:?}");
    eventually("every process of the command is gone", || {
        sleeps.iter().all(|pid| !is_our_sleep(*pid, &workdir))
    })
    .await;

    // Idempotent: the finished turn as it is.
    let again = cancel(&mut chat, &turn.name).await;
    assert_eq!(
        again, ended,
        "cancelling a finished turn returns it unchanged"
    );
    assert_eq!(get_turn(&mut chat, &turn.name).await, ended);

    // Exactly one terminal event: the next turn's events hold nothing of this one.
    let next = sent_turn(
        &send_text(&mut chat, &session.name, "after", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let later = collect_until(&mut watcher, finishes(&next.name)).await;
    assert!(
        later.iter().all(|e| e.turn != turn.name),
        "no event of the cancelled turn after its end: {:?}",
        common::kinds(&later)
    );
    assert_eq!(
        finished(later.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );
}

#[tokio::test]
async fn cancel_stops_a_streaming_answer_and_keeps_its_text_incomplete() {
    let server = TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock");
        mock.options
            .insert("tokens".into(), serde_json::json!(100_000));
        mock.options
            .insert("token_delay_ms".into(), serde_json::json!(1));
    })
    .await;
    let session = common::create(&mut server.sessions().await, "stream").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "go", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let mut events = collect_until(&mut watcher, is_kind("text_delta")).await;
    cancel(&mut chat, &turn.name).await;
    events.extend(collect_until(&mut watcher, finishes(&turn.name)).await);
    let ended = finished(events.last().expect("events")).expect("turn");
    assert_eq!(ended.status(), pb::TurnStatus::Cancelled);
    // Every opened block and message is closed before the turn ends.
    let order: Vec<_> = common::kinds(&events)
        .into_iter()
        .filter(|k| *k != "text_delta")
        .collect();
    assert_eq!(
        &order[order.len() - 3..],
        ["content_finished", "message_completed", "turn_finished"]
    );
    let streamed = streamed_text(&events);
    assert!(streamed.len() < common::numbered_tokens(100_000).len());
    let messages = history(&mut chat, &session.name).await;
    assert_eq!(messages[0].role(), pb::Role::Assistant);
    assert!(messages[0].incomplete, "a cancelled answer is incomplete");
    assert_eq!(
        message_text(&messages[0]),
        streamed,
        "the stored text is what streamed"
    );
}

#[tokio::test]
async fn cancel_a_queued_turn_and_it_never_starts() {
    let server = TestServer::start().await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "queued",
        pb::PermissionMode::Ask,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let first = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            &tool_message("echo one"),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut watcher, is_kind("confirmation_requested")).await;
    let Some(Kind::ConfirmationRequested(requested)) = &events.last().and_then(|e| e.kind.clone())
    else {
        unreachable!()
    };
    let queued = sent_turn(
        &send_text(&mut chat, &session.name, "later", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let cancelled = cancel(&mut chat, &queued.name).await;
    assert_eq!(cancelled.status(), pb::TurnStatus::Cancelled);
    assert!(cancelled.start_time.is_none(), "it never started");
    let events = collect_until(&mut watcher, finishes(&queued.name)).await;
    assert_eq!(finished(events.last().expect("events")), Some(&cancelled));
    assert_eq!(get_turn(&mut chat, &queued.name).await, cancelled);
    assert_eq!(
        cancel(&mut chat, &queued.name).await,
        cancelled,
        "idempotent"
    );

    chat.respond_to_confirmation(pb::RespondToConfirmationRequest {
        name: requested.confirmation.clone().expect("confirmation").name,
        decision: pb::ConfirmationDecision::Allow.into(),
    })
    .await
    .expect("allow");
    collect_until(&mut watcher, finishes(&first.name)).await;
    let next = sent_turn(
        &send_text(&mut chat, &session.name, "next", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&next.name)).await;
    assert!(
        events.iter().all(|e| e.turn != queued.name),
        "the cancelled turn never started"
    );
}

/// Cancel racing completion, many times: each turn ends with exactly one terminal
/// event, and the stored turn agrees with it.
#[tokio::test]
async fn cancel_racing_completion_ends_each_turn_exactly_once() {
    let server = TestServer::start().await;
    let session = common::create(&mut server.sessions().await, "race").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let mut turns = Vec::new();
    for i in 0..20 {
        let turn = sent_turn(
            &send_text(
                &mut chat,
                &session.name,
                &format!("hello {i}"),
                pb::BusyPolicy::Enqueue,
            )
            .await
            .expect("send"),
        );
        cancel(&mut chat, &turn.name).await;
        turns.push(turn.name);
    }
    // A queued turn cancelled at once may end before the running one before it.
    let remaining = std::sync::Mutex::new(turns.clone());
    let events = collect_until(&mut watcher, |e| {
        let mut remaining = remaining.lock().expect("lock");
        if let Some(turn) = finished(e) {
            remaining.retain(|t| *t != turn.name);
        }
        remaining.is_empty()
    })
    .await;
    for name in &turns {
        let ends: Vec<&pb::Turn> = events
            .iter()
            .filter_map(finished)
            .filter(|t| t.name == *name)
            .collect();
        assert_eq!(ends.len(), 1, "one terminal event for {name}");
        assert!(
            matches!(
                ends[0].status(),
                pb::TurnStatus::Cancelled | pb::TurnStatus::Succeeded
            ),
            "{:?}",
            ends[0]
        );
        let stored = get_turn(&mut chat, name).await;
        assert_eq!(
            stored.status(),
            ends[0].status(),
            "stored = streamed for {name}"
        );
        assert_eq!(cancel(&mut chat, name).await.status(), ends[0].status());
    }
}

/// DeleteSession (to the trash) cancels the running turn (killing its processes), tells
/// subscribers, ends their streams; the turn stays, CANCELLED, and the session cannot be
/// streamed until restored.
#[tokio::test]
async fn deleting_a_session_stops_its_turn_and_ends_its_streams() {
    let server = TestServer::start().await;
    let mut sessions = server.sessions().await;
    let session = create_in_mode(&mut sessions, "delete", pb::PermissionMode::AutoApprove).await;
    let workdir = std::fs::canonicalize(&session.working_dir).expect("working dir exists");
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            &tool_message("sleep 1000"),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    collect_until(&mut watcher, is_kind("tool_call_started")).await;
    let mut sleeps = Vec::new();
    eventually("the sleep runs", || {
        sleeps = sleeps_in(&workdir);
        sleeps.len() == 1
    })
    .await;

    sessions
        .delete_session(pb::DeleteSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    let events = collect_until(&mut watcher, is_kind("session_deleted")).await;
    assert!(
        events.iter().filter(|e| finishes(&turn.name)(e)).count() <= 1,
        "{:?}",
        common::kinds(&events)
    );
    let end = tokio::time::timeout(TIMEOUT, watcher.message())
        .await
        .expect("the stream ends in time");
    assert!(
        matches!(end, Ok(None)),
        "the stream ends after session_deleted: {end:?}"
    );
    eventually("the command is killed", || {
        sleeps.iter().all(|pid| !is_our_sleep(*pid, &workdir))
    })
    .await;
    let ended = common::eventually("the cancelled turn is stored", async || {
        let turn = get_turn(&mut chat, &turn.name).await;
        (turn.status == pb::TurnStatus::Cancelled as i32).then_some(turn)
    })
    .await;
    assert!(ended.end_time.is_some(), "{ended:?}");
    let status = chat
        .stream_events(pb::StreamEventsRequest {
            session: session.name.clone(),
            after_sequence: 0,
        })
        .await
        .expect_err("no stream for a session in the trash");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(common::reason(&status), "SESSION_DELETED");
}
