//! A cluster server dies by kill -9 mid-turn: three `octo serve` processes on one real
//! Postgres; the owner of a session is killed while a turn streams and another waits
//! in its queue. Within the lease TTL a surviving server takes the session over: the
//! running turn ends INTERRUPTED with its partial text kept, the queued turn runs, and
//! a stream on a survivor that relayed the dead owner's events goes on to the end.
//! A schedule run the killed server was running is taken over by a survivor and settled
//! once, with one `schedule_run.finished` webhook. (And, without a kill: a QUEUE run on
//! one server waits for the schedule's earlier run on another.)

use crate::common;

use std::path::Path;

use common::{
    collect_until, finishes, get_turn, history, message_text, numbered_tokens, send_text,
    sent_turn, subscribe,
};
use octo::pb;
use tokio::process::Child;

/// The default model streams 1000 tokens 20 ms apart (20 s), `medium` 50 (1 s); `fast`
/// answers at once.
const CONFIG: &str = r#"
default_model = "slow"
lease_ttl_seconds = 2

[models.slow]
provider = "mock"
model = "mock"

[models.slow.options]
tokens = 1000
token_delay_ms = 20

[models.fast]
provider = "mock"
model = "mock"

[models.medium]
provider = "mock"
model = "mock"

[models.medium.options]
tokens = 50
token_delay_ms = 20
"#;

const CLUSTER_TOKEN: &str = "test-cluster-token-0123456789abcdef0123456789";

/// The server-level webhook points at a closed port: deliveries stay pending, listed.
const WEBHOOK: &str = r#"
webhook_url = "http://127.0.0.1:9/hooks"
webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

async fn serve(home: &Path, database: &str) -> (Child, String) {
    std::fs::create_dir_all(home).expect("home");
    let config = home.join("octo.toml");
    std::fs::write(&config, format!("{WEBHOOK}{CONFIG}")).expect("config");
    let mut command = common::octo_command();
    command
        .env("OCTO_DATABASE_URL", database)
        .env("OCTO_CLUSTER_TOKEN", CLUSTER_TOKEN);
    let args: [&std::ffi::OsStr; 2] = ["--config".as_ref(), config.as_os_str()];
    common::spawn_serve_with(command, home, &args).await
}

#[tokio::test]
async fn a_killed_owners_sessions_move_to_a_live_server() {
    let database = common::postgres::database().await;
    let homes = tempfile::tempdir().expect("tempdir");
    let (mut owner, owner_address) = serve(&homes.path().join("a"), &database).await;
    let (_b, b_address) = serve(&homes.path().join("b"), &database).await;
    let (_c, c_address) = serve(&homes.path().join("c"), &database).await;

    let on_a = common::connect(&owner_address).await;
    let mut sessions = pb::session_service_client::SessionServiceClient::new(on_a.clone());
    let mut chat_a = pb::chat_service_client::ChatServiceClient::new(on_a);
    let session = common::create(&mut sessions, "takeover").await;
    // A takes the session with the first send; C relays it.
    let slow = sent_turn(
        &send_text(
            &mut chat_a,
            &session.name,
            "go slow",
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    let mut chat_c =
        pb::chat_service_client::ChatServiceClient::new(common::connect(&c_address).await);
    let mut on_c = subscribe(&mut chat_c, &session.name, 0).await;
    let queued = chat_a
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
    // 100 tokens at 20 ms: past the 1 s checkpoint of the streaming text.
    let deltas = std::sync::atomic::AtomicUsize::new(0);
    collect_until(&mut on_c, |e| {
        matches!(e.kind, Some(pb::session_event::Kind::TextDelta(_)))
            && deltas.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 100
    })
    .await;

    owner.kill().await.expect("SIGKILL");
    let killed = std::time::Instant::now();

    // C's stream goes on: to the queued turn's end, through a reset at most.
    let after = collect_until(&mut on_c, finishes(&queued.name)).await;
    let takeover = killed.elapsed();
    eprintln!("takeover: the queued turn finished {takeover:?} after the kill (lease TTL 2 s)");
    let ended = common::finished(after.last().expect("events")).expect("turn");
    assert_eq!(ended.status(), pb::TurnStatus::Succeeded, "{ended:?}");
    let interrupted_seen = after
        .iter()
        .filter_map(common::finished)
        .any(|turn| turn.name == slow.name && turn.status() == pb::TurnStatus::Interrupted);
    let reset_seen = after
        .iter()
        .any(|e| matches!(e.kind, Some(pb::session_event::Kind::StreamReset(_))));
    assert!(
        interrupted_seen || reset_seen,
        "the survivor's stream shows the interrupted turn or a reset: {:?}",
        common::kinds(&after)
    );

    let mut chat_b =
        pb::chat_service_client::ChatServiceClient::new(common::connect(&b_address).await);
    let interrupted = get_turn(&mut chat_b, &slow.name).await;
    assert_eq!(interrupted.status(), pb::TurnStatus::Interrupted);
    let messages = history(&mut chat_b, &session.name).await;
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
    // Every server answers for the session now; a new turn runs.
    let third = chat_b
        .send_message(pb::SendMessageRequest {
            session: session.name.clone(),
            parts: vec![common::text("third")],
            model: "models/fast".into(),
            ..Default::default()
        })
        .await
        .expect("send after the takeover")
        .into_inner();
    let third = sent_turn(&third);
    collect_until(&mut on_c, finishes(&third.name)).await;
}

/// The run, once `done` holds for it (see `common::eventually`).
async fn wait_for_run(
    schedules: &mut pb::schedule_service_client::ScheduleServiceClient<tonic::transport::Channel>,
    name: &str,
    done: impl Fn(&pb::ScheduleRun) -> bool,
) -> pb::ScheduleRun {
    common::eventually(&format!("{name} to get there"), async || {
        let run = schedules
            .get_schedule_run(pb::GetScheduleRunRequest { name: name.into() })
            .await
            .expect("get run")
            .into_inner();
        done(&run).then_some(run)
    })
    .await
}

#[tokio::test]
async fn a_killed_servers_schedule_run_is_settled_once_by_a_survivor() {
    let database = common::postgres::database().await;
    let homes = tempfile::tempdir().expect("tempdir");
    let (mut runner, runner_address) = serve(&homes.path().join("a"), &database).await;
    let (_b, b_address) = serve(&homes.path().join("b"), &database).await;

    let mut on_a = pb::schedule_service_client::ScheduleServiceClient::new(
        common::connect(&runner_address).await,
    );
    let schedule = on_a
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                cron: "0 3 * * *".into(),
                prompt: "a long report".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create schedule")
        .into_inner();
    // A runs it (RunSchedule runs on the server asked) and its turn streams (20 s).
    let run = on_a
        .run_schedule(pb::RunScheduleRequest {
            name: schedule.name.clone(),
        })
        .await
        .expect("run now")
        .into_inner();
    let started = wait_for_run(&mut on_a, &run.name, |r| !r.turn.is_empty()).await;
    let mut chat_b =
        pb::chat_service_client::ChatServiceClient::new(common::connect(&b_address).await);
    let mut events = subscribe(&mut chat_b, &started.session, 0).await;
    let deltas = std::sync::atomic::AtomicUsize::new(0);
    collect_until(&mut events, |e| {
        matches!(e.kind, Some(pb::session_event::Kind::TextDelta(_)))
            && deltas.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 20
    })
    .await;

    runner.kill().await.expect("SIGKILL");
    let killed = std::time::Instant::now();

    let mut on_b =
        pb::schedule_service_client::ScheduleServiceClient::new(common::connect(&b_address).await);
    let settled = wait_for_run(&mut on_b, &run.name, |r| {
        r.status() != pb::RunStatus::Pending && r.status() != pb::RunStatus::Running
    })
    .await;
    eprintln!(
        "the run was settled {:?} after the kill (lease TTL 2 s)",
        killed.elapsed()
    );
    assert_eq!(settled.status(), pb::RunStatus::Failed, "{settled:?}");
    assert!(
        settled.error.contains("interrupted"),
        "the run failed with its interrupted turn: {settled:?}"
    );
    assert_eq!(
        get_turn(&mut chat_b, &started.turn).await.status(),
        pb::TurnStatus::Interrupted
    );
    // Settled once: one schedule_run.finished delivery, naming this run as failed.
    let mut webhooks =
        pb::webhook_service_client::WebhookServiceClient::new(common::connect(&b_address).await);
    let deliveries = webhooks
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list deliveries")
        .into_inner()
        .webhook_deliveries;
    let finished: Vec<serde_json::Value> = deliveries
        .iter()
        .filter(|d| d.event_type == "schedule_run.finished")
        .map(|d| serde_json::from_str(&d.payload).expect("payload"))
        .collect();
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["data"]["run"], run.name.as_str());
    assert_eq!(finished[0]["data"]["status"], "failed");
}

#[tokio::test]
async fn a_queue_run_waits_for_the_earlier_run_on_another_server() {
    let database = common::postgres::database().await;
    let homes = tempfile::tempdir().expect("tempdir");
    let (_a, a_address) = serve(&homes.path().join("a"), &database).await;
    let (_b, b_address) = serve(&homes.path().join("b"), &database).await;
    let mut on_a =
        pb::schedule_service_client::ScheduleServiceClient::new(common::connect(&a_address).await);
    let mut on_b =
        pb::schedule_service_client::ScheduleServiceClient::new(common::connect(&b_address).await);
    let schedule = on_a
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                cron: "0 3 * * *".into(),
                prompt: "one at a time".into(),
                model: "models/medium".into(),
                overlap_policy: pb::OverlapPolicy::Queue.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create schedule")
        .into_inner();
    let run_now = pb::RunScheduleRequest {
        name: schedule.name.clone(),
    };
    let first = on_a
        .run_schedule(run_now.clone())
        .await
        .expect("run on A")
        .into_inner();
    wait_for_run(&mut on_a, &first.name, |r| !r.turn.is_empty()).await;
    let second = on_b
        .run_schedule(run_now)
        .await
        .expect("run on B")
        .into_inner();
    let terminal = |r: &pb::ScheduleRun| {
        !matches!(r.status(), pb::RunStatus::Pending | pb::RunStatus::Running)
    };
    let second = wait_for_run(&mut on_b, &second.name, terminal).await;
    let first = wait_for_run(&mut on_b, &first.name, terminal).await;
    assert_eq!(first.status(), pb::RunStatus::Succeeded, "{first:?}");
    assert_eq!(second.status(), pb::RunStatus::Succeeded, "{second:?}");
    let (ended, started) = (
        first.end_time.expect("first end"),
        second.start_time.expect("second start"),
    );
    assert!(
        (started.seconds, started.nanos) >= (ended.seconds, ended.nanos),
        "the second run started ({started:?}) after the first ended ({ended:?})"
    );
}
