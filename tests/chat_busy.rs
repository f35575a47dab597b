//! Busy policies of SendMessage while a turn runs (ENQUEUE, REJECT, INTERRUPT, STEER),
//! the queue limit and ClearQueue, each checked on the event order a StreamEvents
//! subscriber sees. A running turn is held deterministically by a shell call waiting
//! for confirmation (ASK) or by a command waiting for a file the test creates.

use crate::common;

use common::{
    ChatClient, TestServer, collect_until, create_in_mode, finished, finishes, history, is_kind,
    message_text, reason, send_text, sent_turn, streamed_text, subscribe,
};
use octo::pb;
use pb::session_event::Kind;

/// A session in `mode`, a subscriber from the start, and a chat client.
async fn setup(
    server: &TestServer,
    mode: pb::PermissionMode,
) -> (pb::Session, ChatClient, tonic::Streaming<pb::SessionEvent>) {
    let session = create_in_mode(&mut server.sessions().await, "busy", mode).await;
    let mut chat = server.chat().await;
    let watcher = subscribe(&mut chat, &session.name, 0).await;
    (session, chat, watcher)
}

/// Starts a turn that waits for a confirmation (ASK + shell); returns it, the
/// confirmation's name and the events so far.
async fn blocked_turn(
    chat: &mut ChatClient,
    watcher: &mut tonic::Streaming<pb::SessionEvent>,
    session: &str,
) -> (pb::Turn, String, Vec<pb::SessionEvent>) {
    let turn = sent_turn(
        &send_text(
            chat,
            session,
            r#"/tool shell {"command":"echo one"}"#,
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(watcher, is_kind("confirmation_requested")).await;
    let Some(Kind::ConfirmationRequested(requested)) = &events.last().and_then(|e| e.kind.clone())
    else {
        unreachable!()
    };
    let confirmation = requested.confirmation.clone().expect("confirmation").name;
    (turn, confirmation, events)
}

async fn respond(chat: &mut ChatClient, confirmation: &str, decision: pb::ConfirmationDecision) {
    chat.respond_to_confirmation(pb::RespondToConfirmationRequest {
        name: confirmation.to_owned(),
        decision: decision.into(),
    })
    .await
    .expect("respond");
}

/// Index of the first event matching `what`.
fn position(events: &[pb::SessionEvent], what: impl Fn(&pb::SessionEvent) -> bool) -> usize {
    events
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("event not found in {:?}", common::kinds(events)))
}

fn started(turn: &str) -> impl Fn(&pb::SessionEvent) -> bool + '_ {
    move |e| matches!(&e.kind, Some(Kind::TurnStarted(s)) if s.turn.as_ref().is_some_and(|t| t.name == turn))
}

fn of_turn(events: &[pb::SessionEvent], turn: &str) -> Vec<pb::SessionEvent> {
    events.iter().filter(|e| e.turn == turn).cloned().collect()
}

fn finish_count(events: &[pb::SessionEvent], turn: &str) -> usize {
    events.iter().filter(|e| finishes(turn)(e)).count()
}

async fn counts(chat: &mut ChatClient, session: &str) -> (usize, usize) {
    let messages = history(chat, session).await.len();
    let turns = chat
        .list_turns(pb::ListTurnsRequest {
            parent: session.to_owned(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("ListTurns")
        .into_inner()
        .turns
        .len();
    (messages, turns)
}

#[tokio::test]
async fn enqueue_runs_the_second_turn_after_the_first() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, confirmation, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;

    let sent = send_text(&mut chat, &session.name, "second", pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    let second = sent_turn(&sent);
    assert_eq!(second.status(), pb::TurnStatus::Queued);
    let queued = collect_until(&mut watcher, is_kind("turn_queued")).await;
    let Some(Kind::TurnQueued(q)) = &queued.last().and_then(|e| e.kind.clone()) else {
        unreachable!()
    };
    assert_eq!(
        q.turn.as_ref().map(|t| t.name.as_str()),
        Some(second.name.as_str())
    );
    assert_eq!(q.position, 1);
    let live = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(live.queue_depth, 1);
    assert_eq!(live.status(), pb::SessionStatus::AwaitingConfirmation);
    assert_eq!(live.active_turn, first.name);

    respond(&mut chat, &confirmation, pb::ConfirmationDecision::Allow).await;
    let events = collect_until(&mut watcher, finishes(&second.name)).await;
    let first_end = position(&events, finishes(&first.name));
    let second_start = position(&events, started(&second.name));
    assert!(
        first_end < second_start,
        "the queued turn starts after the first ends"
    );
    assert!(
        events[second_start..].iter().all(|e| e.turn != first.name),
        "no event of the first turn after the second started"
    );
    assert_eq!(finish_count(&events, &first.name), 1);
    assert_eq!(
        finished(&events[first_end]).expect("turn").status(),
        pb::TurnStatus::Succeeded
    );
    let second_events = of_turn(&events, &second.name);
    let done = finished(second_events.last().expect("events")).expect("turn");
    assert_eq!(done.status(), pb::TurnStatus::Succeeded);
}

/// The history a queued turn sends to the model ends with its own user message, not
/// with the previous turn's answer (the mock echoes the last message it sees).
#[tokio::test]
async fn a_queued_turn_answers_its_own_message() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (_first, confirmation, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let second = sent_turn(
        &send_text(&mut chat, &session.name, "second", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    respond(&mut chat, &confirmation, pb::ConfirmationDecision::Allow).await;
    let events = collect_until(&mut watcher, finishes(&second.name)).await;
    assert_eq!(
        streamed_text(&of_turn(&events, &second.name)),
        "Echo: second",
        "the queued turn answers its own message"
    );
    // History, newest first: the queued exchange after the whole first turn.
    let texts: Vec<(pb::Role, String)> = history(&mut chat, &session.name)
        .await
        .iter()
        .map(|m| (m.role(), message_text(m)))
        .collect();
    assert_eq!(texts[0], (pb::Role::Assistant, "Echo: second".to_owned()));
    assert_eq!(texts[1], (pb::Role::User, "second".to_owned()));
    assert_eq!(texts[2].0, pb::Role::Assistant, "{texts:?}");
    assert_eq!(texts[3].0, pb::Role::Tool, "{texts:?}");
}

#[tokio::test]
async fn reject_fails_while_busy_and_stores_nothing() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, confirmation, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let before = counts(&mut chat, &session.name).await;

    let status = send_text(&mut chat, &session.name, "nope", pb::BusyPolicy::Reject)
        .await
        .expect_err("rejected while busy");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "SESSION_BUSY");
    assert_eq!(
        counts(&mut chat, &session.name).await,
        before,
        "nothing stored"
    );

    respond(&mut chat, &confirmation, pb::ConfirmationDecision::Allow).await;
    let events = collect_until(&mut watcher, finishes(&first.name)).await;
    assert!(
        matches!(events[0].kind, Some(Kind::ConfirmationResolved(_))),
        "no event for the rejected message: {:?}",
        common::kinds(&events)
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.kind, Some(Kind::MessageCompleted(m)) if m.message.as_ref().is_some_and(|m| message_text(m) == "nope")))
    );

    // Idle again: REJECT runs like ENQUEUE.
    let idle = sent_turn(
        &send_text(&mut chat, &session.name, "now", pb::BusyPolicy::Reject)
            .await
            .expect("accepted when idle"),
    );
    let events = collect_until(&mut watcher, finishes(&idle.name)).await;
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );
    assert_eq!(streamed_text(&of_turn(&events, &idle.name)), "Echo: now");
}

#[tokio::test]
async fn interrupt_cancels_the_running_turn_then_runs_the_new_one() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, confirmation, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;

    let second = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            "urgent",
            pb::BusyPolicy::Interrupt,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&second.name)).await;
    let first_end = position(&events, finishes(&first.name));
    let second_start = position(&events, started(&second.name));
    assert!(first_end < second_start);
    assert_eq!(
        finish_count(&events, &first.name),
        1,
        "exactly one terminal event"
    );
    assert_eq!(
        finished(&events[first_end]).expect("turn").status(),
        pb::TurnStatus::Cancelled
    );
    // The unanswered confirmation is withdrawn before the turn ends.
    let withdrawn = position(&events, |e| {
        matches!(&e.kind, Some(Kind::ConfirmationResolved(r))
            if r.confirmation == confirmation && r.decision() == pb::ConfirmationDecision::Unspecified)
    });
    assert!(withdrawn < first_end);
    let second_events = of_turn(&events, &second.name);
    assert_eq!(
        finished(second_events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );
    // The withdrawn confirmation can no longer be answered.
    let late = chat
        .respond_to_confirmation(pb::RespondToConfirmationRequest {
            name: confirmation.clone(),
            decision: pb::ConfirmationDecision::Allow.into(),
        })
        .await
        .expect_err("withdrawn");
    assert_eq!(late.code(), tonic::Code::NotFound);
}

/// The interrupting turn's model request ends with its own message, not with the
/// cancelled turn's tool result (the mock answers the last message it sees).
#[tokio::test]
async fn an_interrupting_turn_answers_its_own_message() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (_first, _, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let second = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            "urgent",
            pb::BusyPolicy::Interrupt,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&second.name)).await;
    assert_eq!(
        streamed_text(&of_turn(&events, &second.name)),
        "Echo: urgent",
        "the interrupting turn answers its own message"
    );
}

/// A call that waited for a confirmation when its turn was cancelled was stopped by the
/// cancel, not refused by a person or the policy.
#[tokio::test]
async fn a_call_awaiting_confirmation_ends_cancelled_when_its_turn_is_cancelled() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, _, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    chat.cancel_turn(pb::CancelTurnRequest {
        name: first.name.clone(),
    })
    .await
    .expect("cancel");
    let events = collect_until(&mut watcher, finishes(&first.name)).await;
    let record = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished");
    assert_eq!(record.status(), pb::ToolCallStatus::Cancelled, "{record:?}");
}

#[tokio::test]
async fn interrupt_goes_ahead_of_queued_turns() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, _, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let queued = sent_turn(
        &send_text(&mut chat, &session.name, "queued", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let urgent = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            "urgent",
            pb::BusyPolicy::Interrupt,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&queued.name)).await;
    let first_end = position(&events, finishes(&first.name));
    let urgent_start = position(&events, started(&urgent.name));
    let urgent_end = position(&events, finishes(&urgent.name));
    let queued_start = position(&events, started(&queued.name));
    assert!(first_end < urgent_start && urgent_end < queued_start);
    for turn in [&first, &urgent, &queued] {
        assert_eq!(finish_count(&events, &turn.name), 1);
    }
    let ended = |name: &str| {
        events
            .iter()
            .find_map(|e| finished(e).filter(|t| t.name == name).cloned())
            .expect("finished")
    };
    assert_eq!(ended(&first.name).status(), pb::TurnStatus::Cancelled);
    assert_eq!(ended(&urgent.name).status(), pb::TurnStatus::Succeeded);
    assert_eq!(ended(&queued.name).status(), pb::TurnStatus::Succeeded);
}

#[tokio::test]
async fn steer_reaches_the_next_model_step() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::AutoApprove).await;
    let go = server.dir.path().join("steer-go");
    let command = format!(
        "while [ ! -e '{}' ]; do sleep 0.02; done; echo done",
        go.display()
    );
    let tool = format!("/tool shell {}", serde_json::json!({ "command": command }));
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, &tool, pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    collect_until(&mut watcher, is_kind("tool_call_started")).await;

    let steered = send_text(&mut chat, &session.name, "extra", pb::BusyPolicy::Steer)
        .await
        .expect("steer");
    assert_eq!(
        steered.turn.as_ref().map(|t| t.name.as_str()),
        Some(turn.name.as_str()),
        "STEER joins the running turn"
    );
    assert_eq!(steered.message.as_ref().expect("message").turn, turn.name);
    std::fs::write(&go, b"").expect("release the tool");

    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let steered_at = position(
        &events,
        |e| matches!(&e.kind, Some(Kind::MessageCompleted(m)) if m.message.as_ref().is_some_and(|m| message_text(m) == "extra")),
    );
    let tool_done = position(&events, is_kind("tool_call_finished"));
    assert!(steered_at < tool_done, "the steered message shows at once");
    let done = finished(events.last().expect("events")).expect("turn");
    assert_eq!(done.status(), pb::TurnStatus::Succeeded);
    assert_eq!(done.step_count, 2);
    assert_eq!(
        streamed_text(&events[tool_done..]),
        "Echo: extra",
        "the next model step sees the steered message last"
    );

    // With nothing running, STEER starts a turn of its own.
    let own = sent_turn(
        &send_text(&mut chat, &session.name, "alone", pb::BusyPolicy::Steer)
            .await
            .expect("steer when idle"),
    );
    assert_ne!(own.name, turn.name);
    let events = collect_until(&mut watcher, finishes(&own.name)).await;
    assert_eq!(streamed_text(&of_turn(&events, &own.name)), "Echo: alone");
}

#[tokio::test]
async fn a_full_queue_is_resource_exhausted() {
    let server = TestServer::start_with(|config| config.max_queue_depth = 1).await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (_first, _, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    send_text(&mut chat, &session.name, "fits", pb::BusyPolicy::Enqueue)
        .await
        .expect("one queued turn fits");
    let before = counts(&mut chat, &session.name).await;
    let status = send_text(
        &mut chat,
        &session.name,
        "too many",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect_err("queue full");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), "QUEUE_FULL");
    assert_eq!(
        counts(&mut chat, &session.name).await,
        before,
        "nothing stored"
    );
}

#[tokio::test]
async fn clear_queue_cancels_queued_turns_and_leaves_the_running_one() {
    let server = TestServer::start().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, confirmation, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let mut queued = Vec::new();
    for text in ["two", "three"] {
        queued.push(sent_turn(
            &send_text(&mut chat, &session.name, text, pb::BusyPolicy::Enqueue)
                .await
                .expect("send"),
        ));
    }
    let cleared = chat
        .clear_queue(pb::ClearQueueRequest {
            session: session.name.clone(),
        })
        .await
        .expect("clear")
        .into_inner()
        .cancelled_turns;
    let names: Vec<&str> = cleared.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, [queued[0].name.as_str(), queued[1].name.as_str()]);
    assert!(
        cleared
            .iter()
            .all(|t| t.status() == pb::TurnStatus::Cancelled)
    );
    for turn in &queued {
        let stored = common::get_turn(&mut chat, &turn.name).await;
        assert_eq!(stored.status(), pb::TurnStatus::Cancelled);
    }
    let events = collect_until(&mut watcher, finishes(&queued[1].name)).await;
    assert_eq!(finish_count(&events, &queued[0].name), 1);

    // The running turn goes on; the cleared ones never start.
    respond(&mut chat, &confirmation, pb::ConfirmationDecision::Allow).await;
    let events = collect_until(&mut watcher, finishes(&first.name)).await;
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );
    let next = sent_turn(
        &send_text(&mut chat, &session.name, "four", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&next.name)).await;
    let starts: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::TurnStarted(s)) => s.turn.as_ref().map(|t| t.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        std::slice::from_ref(&next.name),
        "only the new turn started"
    );
    let empty = chat
        .clear_queue(pb::ClearQueueRequest {
            session: session.name.clone(),
        })
        .await
        .expect("clear")
        .into_inner();
    assert!(empty.cancelled_turns.is_empty());
}

/// Many concurrent sends to an idle session: one turn at a time, each starts after the
/// previous ended, every one ends exactly once.
#[tokio::test]
async fn concurrent_sends_run_one_turn_at_a_time() {
    let server = TestServer::start().await;
    let (session, chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let mut chat = chat.clone();
        let session = session.name.clone();
        tasks.spawn(async move {
            sent_turn(
                &send_text(
                    &mut chat,
                    &session,
                    &format!("m{i}"),
                    pb::BusyPolicy::Enqueue,
                )
                .await
                .expect("send"),
            )
            .name
        });
    }
    let mut turns = Vec::new();
    while let Some(name) = tasks.join_next().await {
        turns.push(name.expect("task"));
    }
    let remaining = std::sync::Mutex::new(turns.clone());
    let events = collect_until(&mut watcher, |e| {
        let mut remaining = remaining.lock().expect("lock");
        if let Some(turn) = finished(e) {
            remaining.retain(|t| *t != turn.name);
        }
        remaining.is_empty()
    })
    .await;
    let mut running: Option<String> = None;
    for event in &events {
        match &event.kind {
            Some(Kind::TurnStarted(s)) => {
                let name = s.turn.as_ref().expect("turn").name.clone();
                assert!(running.is_none(), "{name} started while {running:?} ran");
                running = Some(name);
            }
            Some(Kind::TurnFinished(f)) => {
                let turn = f.turn.as_ref().expect("turn");
                assert_eq!(running.take().as_deref(), Some(turn.name.as_str()));
                assert_eq!(turn.status(), pb::TurnStatus::Succeeded);
            }
            _ => {}
        }
        if !event.turn.is_empty() && running.is_some() {
            assert!(
                matches!(
                    event.kind,
                    Some(Kind::MessageCompleted(_) | Kind::TurnQueued(_))
                ) || Some(&event.turn) == running.as_ref()
                    || matches!(event.kind, Some(Kind::TurnFinished(_))),
                "only the running turn streams: {event:?}"
            );
        }
    }
    for turn in &turns {
        assert_eq!(finish_count(&events, turn), 1, "{turn}");
    }
}

/// Two mock models: `mock` (the default, echoes) and `other` (replies "from other"), for
/// "a turn keeps the model it started with even if the session's model changes
/// mid-turn" and Turn.model "resolved when it started".
async fn model_server() -> TestServer {
    TestServer::start_with(|config| {
        let mut other = octo::config::ModelConfig::mock();
        other
            .options
            .insert("reply".into(), serde_json::json!("from other"));
        config.models.insert("other".into(), other);
    })
    .await
}

async fn switch_model(server: &TestServer, session: &pb::Session, model: &str) {
    server
        .sessions()
        .await
        .update_session(pb::UpdateSessionRequest {
            session: Some(pb::Session {
                name: session.name.clone(),
                model: model.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["model".into()],
            }),
        })
        .await
        .expect("update the session's model");
}

#[tokio::test]
async fn a_running_turn_keeps_its_model_when_the_session_switches() {
    let server = model_server().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (first, confirmation, events) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let started = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::TurnStarted(s)) => s.turn.clone(),
            _ => None,
        })
        .expect("turn_started");
    assert_eq!(started.model, "models/mock");
    switch_model(&server, &session, "models/other").await;
    respond(&mut chat, &confirmation, pb::ConfirmationDecision::Allow).await;
    let events = collect_until(&mut watcher, finishes(&first.name)).await;
    let done = finished(events.last().expect("events")).expect("turn");
    assert_eq!(done.model, "models/mock");
    let answers: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::MessageCompleted(m)) => m
                .message
                .as_ref()
                .filter(|m| m.role() == pb::Role::Assistant)
                .map(|m| m.model.clone()),
            _ => None,
        })
        .collect();
    assert!(
        !answers.is_empty() && answers.iter().all(|m| m == "models/mock"),
        "{answers:?}"
    );

    // The next turn uses the session's new model.
    let next = sent_turn(
        &send_text(&mut chat, &session.name, "hello", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&next.name)).await;
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .model,
        "models/other"
    );
    assert_eq!(streamed_text(&of_turn(&events, &next.name)), "from other");
}

#[tokio::test]
async fn a_queued_turn_resolves_its_model_when_it_starts() {
    let server = model_server().await;
    let (session, mut chat, mut watcher) = setup(&server, pb::PermissionMode::Ask).await;
    let (_first, confirmation, _) = blocked_turn(&mut chat, &mut watcher, &session.name).await;
    let queued = sent_turn(
        &send_text(&mut chat, &session.name, "hello", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    switch_model(&server, &session, "models/other").await;
    respond(&mut chat, &confirmation, pb::ConfirmationDecision::Allow).await;
    let events = collect_until(&mut watcher, finishes(&queued.name)).await;
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .model,
        "models/other"
    );
}
