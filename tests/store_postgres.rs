//! What the conformance suite (`tests/store.rs`) cannot show with one writer at a time:
//! the invariants SQLite gets from its single writer (one migration, exactly one default
//! model, counters and usage added once, no deadlock against a cascading delete, no
//! claim on a disabled schedule, each webhook delivery claimed once), kept by the
//! Postgres store under many concurrent writers on two pools standing for two servers;
//! and text with NUL, which Postgres cannot hold where SQLite can; and that servers
//! racing for one lease get one owner. Each test gets a database of its own on the test
//! binary's throwaway cluster (`common/postgres.rs`) and uses the store only through its
//! public API; the schema table is read with a plain `tokio_postgres` connection.

use crate::common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use octo::{
    domain::{
        Error, Message, Model, Part, PermissionMode, ReasoningEffort, Role, Session, SessionSource,
        SessionStatus, Timestamp, Turn, TurnError, TurnStatus, Usage,
        cluster::{Fence, Lease},
        model::{ModelCapabilities, ProviderKind},
        new_id,
        schedule::{RunTrigger, Schedule, ScheduleRun},
    },
    store::{
        ClusterStore, MessageStore, ModelStore, OutboxStore, ScheduleStore, SessionStore,
        TurnStore, postgres::PostgresStore,
    },
};

/// Two stores (two pools) on one new database: two servers.
async fn two_servers() -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let url = common::postgres::database().await;
    let a = PostgresStore::open(&url).await.expect("open a");
    let b = PostgresStore::open(&url).await.expect("open b");
    (Arc::new(a), Arc::new(b))
}

/// A plain connection to `url`, beside the store's pool: for the schema table.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

fn session() -> Session {
    Session {
        id: new_id(),
        display_name: "s".into(),
        model: None,
        reasoning_effort: ReasoningEffort::Default,
        working_dir: "/tmp".into(),
        permission_mode: PermissionMode::Ask,
        system_prompt: String::new(),
        labels: BTreeMap::new(),
        pinned: false,
        source: SessionSource::Api,
        message_count: 0,
        last_message_preview: String::new(),
        usage: Usage::default(),
        create_time: Timestamp(1),
        update_time: Timestamp(1),
        last_active_time: Timestamp(1),
        revision: 1,
        forked_from: None,
        mcp_servers: None,
        delete_time: None,
        expire_time: None,
        profile: None,
        status: SessionStatus::Idle,
        queue_depth: 0,
        active_turn: None,
    }
}

fn model(id: &str) -> Model {
    Model {
        id: id.into(),
        display_name: id.into(),
        provider: ProviderKind::OpenAiCompatible,
        provider_model: "m".into(),
        base_url: "http://127.0.0.1:1/v1".into(),
        api_key: None,
        api_key_env: None,
        capabilities: ModelCapabilities::default(),
        context_window: 1,
        max_output_tokens: 1,
        is_default: false,
        extra_headers: BTreeMap::new(),
        options: serde_json::Map::new(),
        create_time: Timestamp(1),
        update_time: Timestamp(1),
        revision: 1,
    }
}

fn text_message(session: &Session, text: &str) -> Message {
    Message {
        id: new_id(),
        session_id: session.id.clone(),
        turn_id: None,
        role: Role::Assistant,
        parts: vec![Part::Text { text: text.into() }],
        create_time: Timestamp(2),
        incomplete: true,
        model: None,
        position: Some(1),
    }
}

/// Runs `n` copies of `task` at once, alternating between the two stores.
async fn race<F, Fut, T>(
    a: &Arc<PostgresStore>,
    b: &Arc<PostgresStore>,
    n: usize,
    task: F,
) -> Vec<T>
where
    F: Fn(Arc<PostgresStore>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(task(store, i))
        })
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let url = common::postgres::database().await;
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::open(&url).await.map(|_| ()) })
        })
        .collect();
    for open in opens {
        open.await.expect("task").expect("open");
    }
    // Reopening finds nothing newer than it knows: the schema is at most its version.
    PostgresStore::open(&url).await.expect("reopen");
    let client = connect(&url).await;
    let rows = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("versions");
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let latest = versions.last().copied().unwrap_or(0);
    assert!(latest >= 1, "no migration recorded: {versions:?}");
    assert_eq!(
        versions,
        (1..=latest).collect::<Vec<_>>(),
        "each migration recorded once"
    );

    // The very next version is already too new: so `latest` is exactly the version this
    // Octo knows, all its migrations applied.
    client
        .execute(
            "INSERT INTO schema_migrations (version, applied_time) VALUES ($1, 0)",
            &[&(latest + 1)],
        )
        .await
        .expect("a future version");
    match PostgresStore::open(&url).await {
        Err(Error::Internal(message)) => assert!(message.contains("newer"), "{message}"),
        Err(other) => panic!("expected the version error, got {other:?}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn models_created_and_made_default_concurrently_keep_exactly_one_default() {
    let (a, b) = two_servers().await;
    let created = race(&a, &b, 16, |store, i| async move {
        store.create_model(&model(&format!("m{i:02}"))).await
    })
    .await;
    let defaults = created
        .iter()
        .map(|m| m.as_ref().expect("create").is_default)
        .filter(|d| *d)
        .count();
    assert_eq!(defaults, 1, "exactly one create became the default");
    // The same id from both servers at once: one wins, the other is ALREADY_EXISTS.
    let same = race(&a, &b, 8, |store, _| async move {
        store.create_model(&model("same")).await
    })
    .await;
    assert_eq!(same.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        same.iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::AlreadyExists { .. })),
        "{same:?}"
    );

    // Every model asks to become the default at once, repeatedly.
    for _ in 0..3 {
        let results = race(&a, &b, 17, |store, _| async move {
            let models = store.list_models().await?;
            let mut out = Vec::new();
            for mut m in models {
                let expected = m.revision;
                m.is_default = true;
                m.revision += 1;
                out.push(store.update_model(&m, expected).await?);
            }
            Ok::<_, Error>(out)
        })
        .await;
        for result in results {
            result.expect("no error, only conflicts");
        }
        let listed = a.list_models().await.expect("list");
        assert_eq!(listed.iter().filter(|m| m.is_default).count(), 1);
    }

    // Deleting concurrently promotes one model each time; the last survivor is default.
    let ids: Vec<String> = a
        .list_models()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.id)
        .collect();
    let ids = Arc::new(ids);
    race(&a, &b, ids.len() - 1, |store, i| {
        let ids = ids.clone();
        async move { store.delete_model(&ids[i], None, false).await }
    })
    .await
    .into_iter()
    .for_each(|r| {
        r.expect("delete");
    });
    let left = a.list_models().await.expect("list");
    assert_eq!(left.len(), 1);
    assert!(left[0].is_default);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_counters_and_grants_hold_under_concurrent_writers() {
    let (a, b) = two_servers().await;
    let s = Arc::new(session());
    a.create_session(&s).await.expect("session");

    // One new message written by many at once is counted once.
    let m = Arc::new(text_message(&s, "streaming"));
    race(&a, &b, 16, |store, _| {
        let m = m.clone();
        async move { store.put_message(&m, Fence::NONE).await }
    })
    .await
    .into_iter()
    .for_each(|r| r.expect("put message"));
    // Many different new messages are each counted.
    race(&a, &b, 16, |store, i| {
        let s = s.clone();
        async move {
            store
                .append_user_message(&text_message(&s, &format!("m{i}")), None, Fence::NONE)
                .await
        }
    })
    .await
    .into_iter()
    .for_each(|r| r.expect("append"));

    // One terminal turn written by many at once adds its usage once.
    let mut t = Turn {
        id: new_id(),
        session_id: s.id.clone(),
        status: TurnStatus::Succeeded,
        user_message_id: None,
        model: None,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 20,
            reasoning_tokens: 3,
            cached_input_tokens: 4,
        },
        latency_micros: None,
        time_to_first_token_micros: None,
        error: None,
        create_time: Timestamp(3),
        start_time: None,
        end_time: Some(Timestamp(77)),
        step_count: 1,
        tool_calls: Vec::new(),
    };
    let terminal = Arc::new(t.clone());
    race(&a, &b, 16, |store, _| {
        let t = terminal.clone();
        async move { store.put_turn(&t, Fence::NONE).await }
    })
    .await
    .into_iter()
    .for_each(|r| r.expect("put turn"));
    // A stored running turn finished by many writers at once (a retried write from each
    // server): still once. (Rewriting a finished turn as running and finishing it again
    // would count it again, on SQLite too: the runtime never does.)
    t.id = new_id();
    t.status = TurnStatus::Running;
    a.put_turn(&t, Fence::NONE).await.expect("running");
    t.status = TurnStatus::Failed;
    let finished = Arc::new(t.clone());
    race(&a, &b, 16, |store, _| {
        let t = finished.clone();
        async move { store.put_turn(&t, Fence::NONE).await }
    })
    .await
    .into_iter()
    .for_each(|r| r.expect("put turn"));

    // Concurrent grants all stay.
    race(&a, &b, 16, |store, i| {
        let s = s.clone();
        async move {
            store
                .allow_tool(&s.id, &format!("tool{i:02}"), Fence::NONE)
                .await
        }
    })
    .await
    .into_iter()
    .for_each(|r| r.expect("allow"));

    // The floor only rises, whatever order the raises land in.
    race(&a, &b, 16, |store, i| {
        let s = s.clone();
        async move {
            store
                .set_event_sequence(&s.id, i as i64 * 10, None, Fence::NONE)
                .await
        }
    })
    .await
    .into_iter()
    .for_each(|r| r.expect("floor"));

    let stored = a.get_session(&s.id).await.expect("get").expect("exists");
    assert_eq!(stored.message_count, 17, "1 streamed + 16 appended");
    let once = Usage {
        input_tokens: 10,
        output_tokens: 20,
        reasoning_tokens: 3,
        cached_input_tokens: 4,
    };
    let mut twice = once;
    twice.add(&once);
    assert_eq!(stored.usage, twice, "each terminal turn counted once");
    assert_eq!(stored.last_active_time, Timestamp(77));
    let tools = a.allowed_tools(&s.id).await.expect("tools");
    assert_eq!(
        tools,
        (0..16).map(|i| format!("tool{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(a.event_sequence(&s.id).await.expect("floor"), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_session_while_it_is_written_never_deadlocks() {
    let (a, b) = two_servers().await;
    for _ in 0..20 {
        let s = Arc::new(session());
        a.create_session(&s).await.expect("session");
        let m = Arc::new(text_message(&s, "first"));
        a.put_message(&m, Fence::NONE).await.expect("message");
        let results = race(&a, &b, 12, |store, i| {
            let (s, m) = (s.clone(), m.clone());
            async move {
                match i % 4 {
                    0 if i == 4 => store.delete_session(&s.id).await.map(|_| ()),
                    0 | 1 => store.put_message(&m, Fence::NONE).await,
                    2 => {
                        let mut t = Turn {
                            id: new_id(),
                            session_id: s.id.clone(),
                            status: TurnStatus::Succeeded,
                            user_message_id: None,
                            model: None,
                            usage: Usage::default(),
                            latency_micros: None,
                            time_to_first_token_micros: None,
                            error: None,
                            create_time: Timestamp(3),
                            start_time: None,
                            end_time: None,
                            step_count: 0,
                            tool_calls: Vec::new(),
                        };
                        store.put_turn(&t, Fence::NONE).await?;
                        t.status = TurnStatus::Failed;
                        store.put_turn(&t, Fence::NONE).await
                    }
                    _ => store.allow_tool(&s.id, "shell", Fence::NONE).await,
                }
            }
        })
        .await;
        for result in results {
            // Writing to a session deleted meanwhile fails on its foreign key, as on
            // SQLite; a deadlock is never the reason.
            if let Err(err) = result {
                let text = err.to_string();
                assert!(!text.contains("deadlock"), "{text}");
                assert!(text.contains("foreign key"), "{text}");
            }
        }
        assert_eq!(a.get_session(&s.id).await.expect("get"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_racing_a_disable_leave_it_disabled_with_one_run_per_claim() {
    let (a, b) = two_servers().await;
    for round in 0..10 {
        let schedule = Schedule {
            id: new_id(),
            cron: "* * * * *".into(),
            prompt: "p".into(),
            enabled: true,
            next_run_time: Some(Timestamp(0)),
            ..Schedule::default()
        };
        a.create_schedule(&schedule).await.expect("create");
        let schedule = Arc::new(schedule);
        let results = race(&a, &b, 10, |store, i| {
            let schedule = schedule.clone();
            async move {
                if i == 5 {
                    let mut off = (*schedule).clone();
                    off.enabled = false;
                    off.next_run_time = None;
                    off.revision = 2;
                    store.update_schedule(&off, 1).await.map(|_| None)
                } else {
                    let fire = Timestamp(i as i64);
                    let run = ScheduleRun::new(&schedule.id, RunTrigger::Cron, fire);
                    store
                        .claim_fire_time(&run, fire, Some(Timestamp(i as i64 + 1)))
                        .await
                        .map(Some)
                }
            }
        })
        .await;
        for result in &results {
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
        let stored = a
            .get_schedule(&schedule.id)
            .await
            .expect("get")
            .expect("exists");
        assert!(!stored.enabled);
        assert_eq!(
            stored.next_run_time, None,
            "no claim moved a disabled schedule"
        );
        let claimed = results
            .iter()
            .filter(|r| matches!(r, Ok(Some(true))))
            .count();
        let runs = a.list_runs(&schedule.id, None, 100).await.expect("runs");
        assert_eq!(runs.len(), claimed, "a run for each claim and no other");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_message_text_and_error_texts_is_stored() {
    let store = PostgresStore::open(&common::postgres::database().await)
        .await
        .expect("open");
    let s = session();
    store.create_session(&s).await.expect("session");
    // Message parts are JSON (NUL escaped): they read back exactly.
    let m = text_message(&s, "a\0b");
    store
        .append_user_message(&m, None, Fence::NONE)
        .await
        .expect("append");
    assert_eq!(store.get_message(&s.id, &m.id).await.expect("get"), Some(m));
    let stored = store
        .get_session(&s.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.last_message_preview, "a\u{FFFD}b");
    // A provider's error text with a NUL still finishes the turn.
    let t = Turn {
        id: new_id(),
        session_id: s.id.clone(),
        status: TurnStatus::Failed,
        user_message_id: None,
        model: None,
        usage: Usage::default(),
        latency_micros: None,
        time_to_first_token_micros: None,
        error: Some(TurnError {
            reason: "PROVIDER_ERROR".into(),
            message: "bad\0body".into(),
        }),
        create_time: Timestamp(3),
        start_time: None,
        end_time: None,
        step_count: 0,
        tool_calls: Vec::new(),
    };
    store.put_turn(&t, Fence::NONE).await.expect("turn");
    let stored = store
        .get_turn(&s.id, &t.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        stored.error.map(|e| e.message).as_deref(),
        Some("bad\u{FFFD}body")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_acquiring_one_free_lease_at_once_get_exactly_one_owner() {
    const LIVE: Duration = Duration::from_secs(600);
    let (a, b) = two_servers().await;
    let s = session();
    a.create_session(&s).await.expect("create");
    let id = Arc::new(s.id.clone());
    // 8 servers (each its own id, over two pools) race for the free lease; then, once the
    // winner let it expire, 8 others race to take it over.
    for (round, epoch) in [("first", 1), ("takeover", 2)] {
        let leases: Vec<Lease> = race(&a, &b, 8, |store, i| {
            let id = id.clone();
            async move {
                store
                    .acquire_lease(&id, &format!("{round}-{i}"), LIVE)
                    .await
            }
        })
        .await
        .into_iter()
        .map(|r| r.expect("acquire"))
        .collect();
        let winner = leases[0].clone();
        assert!(winner.owner.starts_with(round), "{winner:?}");
        assert_eq!(winner.epoch, epoch, "{round}");
        assert!(
            leases
                .iter()
                .all(|l| l.owner == winner.owner && l.epoch == epoch),
            "{round}: every racer sees the one owner: {leases:?}"
        );
        assert_eq!(a.get_lease(&id).await.expect("get"), Some(winner.clone()));
        // The winner lets it expire (a renewal with TTL 0) for the next round.
        let expired = a
            .acquire_lease(&id, &winner.owner, Duration::ZERO)
            .await
            .expect("expire");
        assert_eq!((expired.owner, expired.epoch), (winner.owner, epoch));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_waits_for_the_fenced_write_in_flight_and_then_fences_it_out() {
    let url = common::postgres::database().await;
    let store = Arc::new(PostgresStore::open(&url).await.expect("open"));
    let s = session();
    store.create_session(&s).await.expect("create");
    let old = store
        .acquire_lease(&s.id, "a", Duration::ZERO)
        .await
        .expect("acquire");
    let old = Fence(old.epoch);
    let mut t = common::store::turn(&s, TurnStatus::Running, 1);
    store.put_turn(&t, old).await.expect("running");

    // Hold the turn's row, so the owner's next fenced write stops half way: after its
    // fence check (the lease row held FOR SHARE), before its own write.
    let mut blocker = connect(&url).await;
    let hold = blocker.transaction().await.expect("begin");
    hold.query_one("SELECT 1 FROM turns WHERE id = $1 FOR UPDATE", &[&t.id])
        .await
        .expect("lock the turn");
    t.status = TurnStatus::Succeeded;
    let write = tokio::spawn({
        let (store, t) = (store.clone(), t.clone());
        async move { store.put_turn(&t, old).await }
    });
    // Locks waited on in this database, seen in pg_stat_activity: polled, not slept on.
    let watcher = connect(&url).await;
    let waiting_on_locks = async |count: i64| {
        tokio::time::timeout(common::TIMEOUT, async {
            loop {
                let waiting: i64 = watcher
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND wait_event_type = 'Lock'",
                        &[],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get(0);
                if waiting == count {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{count} sessions wait on locks in time (safety net)"));
    };
    // The write is past its fence check (holding the lease row FOR SHARE) and waits
    // on the turn row; only then does the takeover start, so it cannot come first.
    waiting_on_locks(1).await;
    let takeover = tokio::spawn({
        let store = store.clone();
        let id = s.id.clone();
        async move {
            store
                .acquire_lease(&id, "b", Duration::from_secs(600))
                .await
        }
    });
    // And the takeover waits on the write's share lock of the lease row.
    waiting_on_locks(2).await;
    assert!(!takeover.is_finished(), "the takeover waits for the write");

    hold.commit().await.expect("release the turn");
    // The write checked its fence before the takeover: it commits; then the takeover.
    write
        .await
        .expect("task")
        .expect("the write in flight commits");
    let lease = takeover.await.expect("task").expect("takeover");
    assert_eq!((lease.owner.as_str(), lease.epoch), ("b", 2));
    let stored = store.get_turn(&s.id, &t.id).await.expect("get").expect("t");
    assert_eq!(stored.status, TurnStatus::Succeeded);
    // From now on the old owner's writes are refused.
    t.status = TurnStatus::Failed;
    match store.put_turn(&t, old).await {
        Err(err) => assert_eq!(err.reason(), "LEASE_LOST"),
        Ok(()) => panic!("a write at the old epoch went through"),
    }
    store
        .put_turn(&t, Fence(lease.epoch))
        .await
        .expect("the new owner writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_claims_racing_on_two_servers_send_each_delivery_once() {
    use octo::domain::outbox::{AttemptOutcome, DeliveryState, OutboxDelivery, WebhookEndpoint};
    const N: usize = 300;
    let (a, b) = two_servers().await;
    let endpoint = WebhookEndpoint {
        url: "https://example.com/hook".into(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
    };
    let deliveries: Vec<OutboxDelivery> = (0..N)
        .map(|i| OutboxDelivery::new(&endpoint, "turn.finished", &serde_json::json!({ "i": i })))
        .collect();
    a.insert_deliveries(&deliveries).await.expect("insert");
    // Sixteen workers on two pools claim small batches and record each as delivered,
    // until nothing is due: what each claimed must be disjoint and every record count.
    let claimed = race(&a, &b, 16, |store, i| async move {
        let claimer = format!("worker-{i}");
        let mut mine = Vec::new();
        loop {
            let batch = store
                .claim_due_deliveries(Timestamp::now(), &claimer, 5, Duration::from_secs(60))
                .await
                .expect("claim");
            if batch.is_empty() {
                return mine;
            }
            for d in batch {
                let recorded = store
                    .record_attempt(
                        &d.id,
                        &claimer,
                        Timestamp::now(),
                        &AttemptOutcome::Delivered,
                    )
                    .await
                    .expect("record");
                assert!(recorded, "{claimer} lost its own claim on {}", d.id);
                mine.push(d.id);
            }
        }
    })
    .await;
    let all: Vec<String> = claimed.into_iter().flatten().collect();
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (N, N),
        "each claimed exactly once"
    );
    let counts = b.delivery_counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.delivered, counts.dead),
        (0, N as u64, 0)
    );
    let listed = a
        .list_deliveries(Some(DeliveryState::Delivered), None, N)
        .await
        .expect("list");
    assert!(
        listed
            .iter()
            .all(|d| d.attempts == 1 && d.claimed_by.is_empty())
    );
}
