//! Three Octo servers on one real Postgres (a cluster): any server serves any session
//! with the owner's events, sequences and answers. The servers run in this process
//! (each its own listener, runtime and store pool, talking to each other over real
//! sockets), except where a server must die by kill -9: those are `octo serve`
//! processes (tests/cluster_takeover.rs).

use crate::common;

use std::sync::Arc;

use common::{
    TestServer, collect_until, create, create_in_mode, finishes, is_kind, sent_turn, subscribe,
    text,
};
use octo::scheduler::ManualClock;
use octo::{
    config::ModelConfig,
    domain::Timestamp,
    pb,
    providers::fake::{FakeOpenAi, FakeResponse},
};
use prost::Message as _;

pub const CLUSTER_TOKEN: &str = "test-cluster-token-0123456789abcdef0123456789";

/// Three servers on one fresh database, with `models` (the mock by default).
pub(crate) async fn cluster(tweak: impl Fn(&mut octo::config::Config)) -> Vec<TestServer> {
    cluster_on_clock(tweak, None).await
}

/// [`cluster`] with every server's schedules firing by `clock`.
async fn cluster_on_clock(
    tweak: impl Fn(&mut octo::config::Config),
    clock: Option<ManualClock>,
) -> Vec<TestServer> {
    let url = common::postgres::database().await;
    let mut servers = Vec::new();
    for _ in 0..3 {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut config = common::test_config(&dir);
        config.database_url = Some(url.clone());
        config.cluster_token = Some(CLUSTER_TOKEN.into());
        // The default TTL: these tests move no lease on purpose, and a loaded CI machine
        // must not make one expire under them.
        config.lease_ttl_seconds = 10;
        tweak(&mut config);
        servers.push(match &clock {
            Some(clock) => TestServer::start_with_clock(dir, config, Arc::new(clock.clone())).await,
            None => TestServer::start_in(dir, config).await,
        });
    }
    servers
}

fn slow_mock(tokens: u64, delay_ms: u64) -> ModelConfig {
    let mut model = ModelConfig::mock();
    model.options.insert("tokens".into(), tokens.into());
    model
        .options
        .insert("token_delay_ms".into(), delay_ms.into());
    model
}

/// Events without the snapshot (which differs by when one subscribed), as the wire
/// bytes of each, with their sequences.
fn wire(events: &[pb::SessionEvent]) -> Vec<(i64, Vec<u8>)> {
    events
        .iter()
        .filter(|e| !matches!(e.kind, Some(pb::session_event::Kind::Snapshot(_))))
        .map(|e| (e.sequence, e.encode_to_vec()))
        .collect()
}

#[tokio::test]
async fn a_session_is_served_by_every_server_with_the_owners_events() {
    let servers = cluster(|_| {}).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let session = create(&mut a.sessions().await, "everywhere").await;

    // B takes the session (first to make it live), C relays it, A forwards a send.
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let mut on_c = subscribe(&mut c.chat().await, &session.name, 0).await;
    let sent = common::send_text(
        &mut a.chat().await,
        &session.name,
        "hello cluster",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("a send on a non-owner is forwarded");
    let turn = sent_turn(&sent);
    let from_b = collect_until(&mut on_b, finishes(&turn.name)).await;
    let from_c = collect_until(&mut on_c, finishes(&turn.name)).await;
    assert_eq!(common::streamed_text(&from_c), "Echo: hello cluster");
    assert_eq!(
        wire(&from_c),
        wire(&from_b),
        "the relayed events are the owner's, byte for byte, with the same sequences"
    );

    // Chat on a third server: forwarded send, relayed stream ending with its turn.
    let mut chat_a = a.chat().await;
    let events = chat_a
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text("second")],
            ..Default::default()
        })
        .await
        .expect("chat on a non-owner")
        .into_inner();
    let mut events = events;
    let chatted = collect_until(&mut events, common::is_turn_finished).await;
    assert_eq!(common::streamed_text(&chatted), "Echo: second");
    let second_turn = chatted.last().map(|e| e.turn.clone()).expect("events");
    let from_b = collect_until(&mut on_b, finishes(&second_turn)).await;
    let of_turn: Vec<_> = from_b
        .into_iter()
        .filter(|e| e.turn == second_turn)
        .collect();
    assert_eq!(
        wire(&chatted),
        wire(&of_turn),
        "Chat's events are the owner's events of that turn"
    );

    // A resume on C from the middle of the first turn is exact: every later event
    // once, in order, the same as the live stream had them.
    let first_turn = wire(&from_c);
    let middle = first_turn[first_turn.len() / 2].0;
    let mut resumed = subscribe(&mut c.chat().await, &session.name, middle).await;
    let replayed = collect_until(&mut resumed, finishes(&turn.name)).await;
    let expected: Vec<_> = first_turn
        .iter()
        .filter(|(sequence, _)| *sequence > middle)
        .cloned()
        .collect();
    assert_eq!(wire(&replayed), expected);
}

#[tokio::test]
async fn cancel_and_confirmations_work_through_servers_that_do_not_own_the_session() {
    let servers = cluster(|config| {
        config.models.insert("slow".into(), slow_mock(2_000, 5));
    })
    .await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);

    // A confirmation answered on C for a session owned by B.
    let session = create_in_mode(&mut a.sessions().await, "ask", pb::PermissionMode::Ask).await;
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let sent = common::send_text(
        &mut a.chat().await,
        &session.name,
        r#"/tool shell {"command": "echo confirmed-through-c"}"#,
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("send");
    let turn = sent_turn(&sent);
    let requested = collect_until(&mut on_b, is_kind("confirmation_requested")).await;
    let Some(pb::session_event::Kind::ConfirmationRequested(request)) =
        requested.last().and_then(|e| e.kind.clone())
    else {
        panic!("a confirmation request");
    };
    let confirmation = request.confirmation.expect("confirmation").name;
    let answered = c
        .chat()
        .await
        .respond_to_confirmation(pb::RespondToConfirmationRequest {
            name: confirmation.clone(),
            decision: pb::ConfirmationDecision::Allow as i32,
        })
        .await
        .expect("respond through a non-owner")
        .into_inner();
    assert_eq!(answered.confirmation.expect("answer").name, confirmation);
    let finished = collect_until(&mut on_b, finishes(&turn.name)).await;
    let tool_output: String = finished
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallOutput(o)) => Some(o.text.clone()),
            _ => None,
        })
        .collect();
    assert!(
        tool_output.contains("confirmed-through-c"),
        "the allowed tool ran on the owner: {tool_output:?}"
    );
    // An unknown confirmation is the owner's NOT_FOUND, passed through.
    let missing = c
        .chat()
        .await
        .respond_to_confirmation(pb::RespondToConfirmationRequest {
            name: confirmation,
            decision: pb::ConfirmationDecision::Allow as i32,
        })
        .await
        .expect_err("already answered");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(common::reason(&missing), "CONFIRMATION_NOT_FOUND");

    // A long turn on B cancelled through C.
    let session = create(&mut a.sessions().await, "cancel").await;
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let sent = b
        .chat()
        .await
        .send_message(pb::SendMessageRequest {
            session: session.name.clone(),
            parts: vec![text("go on for a while")],
            model: "models/slow".into(),
            ..Default::default()
        })
        .await
        .expect("send")
        .into_inner();
    let turn = sent_turn(&sent);
    collect_until(&mut on_b, is_kind("text_delta")).await;
    c.chat()
        .await
        .cancel_turn(pb::CancelTurnRequest {
            name: turn.name.clone(),
        })
        .await
        .expect("cancel through a non-owner");
    let events = collect_until(&mut on_b, finishes(&turn.name)).await;
    let ended = common::finished(events.last().expect("finished")).expect("turn");
    assert_eq!(ended.status, pb::TurnStatus::Cancelled as i32);
}

#[tokio::test]
async fn a_deleted_session_ends_its_streams_on_every_server() {
    let servers = cluster(|_| {}).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let session = create(&mut a.sessions().await, "to delete").await;
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let mut on_c = subscribe(&mut c.chat().await, &session.name, 0).await;
    a.sessions()
        .await
        .delete_session(pb::DeleteSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete on a non-owner");
    collect_until(&mut on_b, is_kind("session_deleted")).await;
    collect_until(&mut on_c, is_kind("session_deleted")).await;
    assert!(on_c.message().await.expect("clean end").is_none());
}

/// A session moved to the trash through a non-owner while its turn runs on the owner:
/// the owner stops the turn and gives the lease back, so a retention pass (on any
/// server) can purge it; while the owner held it live, none did.
#[tokio::test]
async fn a_session_trashed_through_another_server_is_released_by_its_owner_and_purged() {
    let servers = cluster(|config| {
        config.models.insert("mock".into(), slow_mock(1_000_000, 1));
        config.trash_retention_days = 0.0;
        config.retention_interval_seconds = 1;
    })
    .await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let session = create(&mut a.sessions().await, "trashed elsewhere").await;
    // B owns it: the first to make it live.
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let sent = common::send_text(
        &mut b.chat().await,
        &session.name,
        "stream until cancelled",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("send on B");
    collect_until(&mut on_b, is_kind("text_delta")).await;
    let mut on_c = subscribe(&mut c.chat().await, &session.name, 0).await;

    let trashed = a
        .sessions()
        .await
        .delete_session(pb::DeleteSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete on a non-owner")
        .into_inner();
    assert_eq!(trashed.expire_time, trashed.delete_time, "due at once");
    let events = collect_until(&mut on_c, is_kind("session_deleted")).await;
    assert!(
        events
            .iter()
            .filter(|e| finishes(&sent_turn(&sent).name)(e))
            .count()
            <= 1,
        "{:?}",
        common::kinds(&events)
    );
    common::eventually("a retention pass purges it", async || {
        match c
            .sessions()
            .await
            .get_session(pb::GetSessionRequest {
                name: session.name.clone(),
            })
            .await
        {
            Err(status) if status.code() == tonic::Code::NotFound => Some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn every_turn_runs_once_when_sends_are_spread_over_the_servers() {
    const SESSIONS: usize = 100;
    const TURNS: usize = 5;
    let fake = FakeOpenAi::start(vec![FakeResponse::text(["done"])])
        .await
        .expect("fake provider");
    let base_url = fake.base_url();
    let servers = cluster(|config| {
        let mut model = ModelConfig::mock();
        model.provider = "openai".into();
        model.model = "gpt-fake".into();
        model.base_url = base_url.clone();
        model.api_key = Some("sk-test".into());
        config.models.insert("fake".into(), model);
        config.default_model = Some("fake".into());
    })
    .await;
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let server = &servers[i % 3];
        sessions.push(create(&mut server.sessions().await, &format!("spread {i}")).await);
    }
    // Every send goes to a different server than the last one for its session.
    let mut sends = tokio::task::JoinSet::new();
    for (i, session) in sessions.iter().enumerate() {
        for turn in 0..TURNS {
            let mut chat = servers[(i + turn) % 3].chat().await;
            let name = session.name.clone();
            sends.spawn(async move {
                common::send_text(
                    &mut chat,
                    &name,
                    &format!("turn {turn}"),
                    pb::BusyPolicy::Enqueue,
                )
                .await
                .expect("every send is acknowledged")
            });
        }
    }
    let mut acknowledged = Vec::new();
    while let Some(sent) = sends.join_next().await {
        acknowledged.push(sent.expect("send task"));
    }
    assert_eq!(acknowledged.len(), SESSIONS * TURNS);
    // Wait for every turn to end (on whichever server), then count.
    for sent in &acknowledged {
        let turn = sent_turn(sent);
        let mut chat = servers[2].chat().await;
        let session = turn
            .name
            .split("/turns/")
            .next()
            .expect("session")
            .to_owned();
        let mut stream = subscribe(&mut chat, &session, 0).await;
        let current = common::get_turn(&mut chat, &turn.name).await;
        if current.status == pb::TurnStatus::Queued as i32
            || current.status == pb::TurnStatus::Running as i32
        {
            collect_until(&mut stream, finishes(&turn.name)).await;
        }
        let done = common::get_turn(&mut chat, &turn.name).await;
        assert_eq!(done.status, pb::TurnStatus::Succeeded as i32, "{done:?}");
        let message = sent.message.as_ref().expect("message");
        let stored = chat
            .get_message(pb::GetMessageRequest {
                name: message.name.clone(),
            })
            .await
            .expect("every acknowledged message is stored")
            .into_inner();
        assert_eq!(common::message_text(&stored), common::message_text(message));
    }
    assert_eq!(
        fake.request_count(),
        SESSIONS * TURNS,
        "each turn asked the provider exactly once"
    );
}

#[tokio::test]
async fn every_server_watches_the_changes_made_on_the_others() {
    let servers = cluster(|config| {
        config.models.insert("slow".into(), slow_mock(2_000, 5));
    })
    .await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let mut watch = c
        .sessions()
        .await
        .watch_sessions(pb::WatchSessionsRequest {})
        .await
        .expect("watch on C")
        .into_inner();
    let mut next_change = async || {
        tokio::time::timeout(common::TIMEOUT, watch.message())
            .await
            .expect("a change in time (safety net)")
            .expect("watch stream")
            .expect("not ended")
            .change
            .expect("a change")
    };
    use pb::watch_sessions_response::Change;

    let session = create(&mut a.sessions().await, "watched").await;
    let created = loop {
        if let Change::Created(s) = next_change().await {
            break s;
        }
    };
    assert_eq!(created.name, session.name);

    // A turn running on B shows as running on C (the owner's live status).
    let sent = b
        .chat()
        .await
        .send_message(pb::SendMessageRequest {
            session: session.name.clone(),
            parts: vec![text("keep going")],
            model: "models/slow".into(),
            ..Default::default()
        })
        .await
        .expect("send")
        .into_inner();
    let running = loop {
        if let Change::Updated(s) = next_change().await
            && s.status == pb::SessionStatus::Running as i32
        {
            break s;
        }
    };
    assert_eq!(running.name, session.name);
    let got = c
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("get on C")
        .into_inner();
    assert_eq!(got.status, pb::SessionStatus::Running as i32, "{got:?}");
    assert_eq!(got.active_turn, sent_turn(&sent).name);

    a.sessions()
        .await
        .delete_session(pb::DeleteSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete on A");
    loop {
        if let Change::Deleted(name) = next_change().await {
            assert_eq!(name, session.name);
            break;
        }
    }
}

#[tokio::test]
async fn a_schedule_fires_once_and_waits_for_a_turn_owned_by_another_server() {
    // 2026-03-02T08:59:00Z; the schedule fires at 09:00.
    const START: i64 = 1_772_441_940_000_000;
    const MINUTE: i64 = 60_000_000;
    let clock = ManualClock::new(Timestamp(START));
    let servers = cluster_on_clock(|_| {}, Some(clock.clone())).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    // The schedule's target session is live on B; the schedule is made on C.
    let session = create(&mut a.sessions().await, "scheduled").await;
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let mut schedules = c.schedules().await;
    let schedule = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                prompt: "daily report".into(),
                cron: "0 9 * * *".into(),
                target_session: session.name.clone(),
                overlap_policy: pb::OverlapPolicy::Queue as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create schedule")
        .into_inner();

    clock.set(Timestamp(START + MINUTE));
    let finished = collect_until(&mut on_b, common::is_turn_finished).await;
    assert_eq!(common::streamed_text(&finished), "Echo: daily report");
    // Whichever server fired it, it follows the turn on the owner to its end.
    let runs = tokio::time::timeout(common::TIMEOUT, async {
        loop {
            let runs = schedules
                .list_schedule_runs(pb::ListScheduleRunsRequest {
                    parent: schedule.name.clone(),
                    ..Default::default()
                })
                .await
                .expect("runs")
                .into_inner()
                .runs;
            if runs
                .iter()
                .all(|r| r.status == pb::RunStatus::Succeeded as i32)
                && !runs.is_empty()
            {
                return runs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the run succeeds in time (safety net)");
    assert_eq!(
        runs.len(),
        1,
        "three servers, one fire time, one run: {runs:?}"
    );
    let prompts = common::history(&mut a.chat().await, &session.name)
        .await
        .iter()
        .filter(|m| m.role() == pb::Role::User)
        .count();
    assert_eq!(prompts, 1, "the prompt was sent once");
}

/// The internal service answers only callers with the cluster token, and is not part of
/// the public contract (not in the descriptor set reflection and the JSON mapping use).
#[tokio::test]
async fn the_peer_service_needs_the_cluster_token_and_is_not_public() {
    use octo::api::peer::peer_pb::peer_service_client::PeerServiceClient;
    let servers = cluster(|_| {}).await;
    let session = create(&mut servers[0].sessions().await, "peer").await;
    let mut peer = PeerServiceClient::new(servers[1].channel().await);
    let clear = |token: Option<&str>| {
        let mut request = tonic::Request::new(pb::ClearQueueRequest {
            session: session.name.clone(),
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("x-octo-cluster-token", token.parse().expect("ascii"));
        }
        request
    };
    let missing = peer.clear_queue(clear(None)).await.expect_err("no token");
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    let wrong = peer
        .clear_queue(clear(Some("not-the-cluster-token-0123456789abcdef")))
        .await
        .expect_err("wrong token");
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    // A client's bearer token is not a cluster token either.
    let mut bearer = clear(None);
    bearer.metadata_mut().insert(
        "authorization",
        format!("Bearer {CLUSTER_TOKEN}").parse().expect("ascii"),
    );
    assert_eq!(
        peer.clear_queue(bearer).await.expect_err("bearer").code(),
        tonic::Code::Unauthenticated
    );
    let cleared = peer
        .clear_queue(clear(Some(CLUSTER_TOKEN)))
        .await
        .expect("the right token passes")
        .into_inner();
    assert!(cleared.cancelled_turns.is_empty());

    // A server that is not in a cluster refuses every peer call.
    let alone = TestServer::start().await;
    let mut peer = PeerServiceClient::new(alone.channel().await);
    let refused = peer
        .clear_queue(clear(Some(CLUSTER_TOKEN)))
        .await
        .expect_err("not a cluster");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(common::reason(&refused), "NOT_A_CLUSTER");

    let public = String::from_utf8_lossy(pb::FILE_DESCRIPTOR_SET);
    assert!(
        !public.contains("octo.peer.v1"),
        "not in the public descriptors"
    );
}

/// Waits until `done` holds for GetModel's outcome on `server` (see
/// `common::eventually`).
async fn wait_for_model(
    server: &TestServer,
    name: &str,
    done: impl Fn(&Result<pb::Model, tonic::Status>) -> bool,
) {
    let mut models = server.models().await;
    common::eventually(&format!("{name} to change on this server"), async || {
        let got = models
            .get_model(pb::GetModelRequest { name: name.into() })
            .await
            .map(tonic::Response::into_inner);
        done(&got).then_some(())
    })
    .await
}

#[tokio::test]
async fn a_model_changed_on_one_server_is_not_used_stale_by_the_others() {
    let servers = cluster(|config| {
        config.models.insert("extra".into(), ModelConfig::mock());
    })
    .await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    // Every server holds both models in its snapshot.
    for server in [b, c] {
        wait_for_model(server, "models/extra", |got| got.is_ok()).await;
    }
    let mut on_a = a.models().await;
    let mut renamed = on_a
        .get_model(pb::GetModelRequest {
            name: "models/mock".into(),
        })
        .await
        .expect("get")
        .into_inner();
    renamed.display_name = "renamed on A".into();
    on_a.update_model(pb::UpdateModelRequest {
        model: Some(renamed),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
    })
    .await
    .expect("update on A");
    on_a.delete_model(pb::DeleteModelRequest {
        name: "models/extra".into(),
        force: true,
        ..Default::default()
    })
    .await
    .expect("delete on A");
    for server in [b, c] {
        wait_for_model(server, "models/mock", |got| {
            got.as_ref().is_ok_and(|m| m.display_name == "renamed on A")
        })
        .await;
        wait_for_model(server, "models/extra", |got| {
            got.as_ref()
                .is_err_and(|s| s.code() == tonic::Code::NotFound)
        })
        .await;
    }
}
