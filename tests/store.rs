//! The store conformance suite: every case runs unchanged against every backend, SQLite
//! (a file in a temp dir) and Postgres (a database of its own on the test binary's
//! throwaway cluster, `common/postgres.rs`). Each method of each store trait has a case
//! that could fail on a backend that got it wrong; cases that need two handles on one
//! database (a restart, two servers) get them from [`Fixture::open_again`]. The fixtures
//! and the `conformance!` macro are in `common/store.rs`; the cluster cases (servers,
//! leases, fencing) in `store_cluster.rs`.
//!
//! Adding a method to a store trait: add a case below (or in `store_cluster.rs`) and its
//! name to `conformance!`.

use crate::common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::store::{Fixture, conformance, created, message, schedule, session, turn};
use octo::{
    domain::{
        Error, Message, Model, Part, Session, SessionSource, Timestamp, ToolCallRecord,
        ToolCallStatus, Turn, TurnError, TurnStatus, Usage,
        cluster::Fence,
        mcp::{McpServer, McpTransport},
        model::{ModelCapabilities, ProviderKind},
        new_id,
        schedule::{RunStatus, RunTrigger, ScheduleRun},
        session_list::SessionOrder,
    },
    store::{SessionContent, SessionCursor, SessionFilter, Store},
};

conformance!(
    a_fresh_store_answers_the_readiness_check,
    sessions_round_trip_and_survive_reopen,
    sessions_list_in_order_and_page_by_keyset,
    sessions_filter_by_text_source_pin_and_time,
    session_update_is_compare_and_swap,
    session_content_is_atomic_and_deleted_with_the_session,
    allowed_tools_accumulate_without_duplicates,
    event_sequence_floor_rises_or_is_set_conditionally,
    history_follows_positions_not_arrival,
    user_message_and_turn_are_stored_together,
    messages_page_between_before_and_after,
    turns_upsert_page_and_add_usage_once,
    unfinished_turns_span_sessions_oldest_first_or_one_session,
    models_keep_exactly_one_default,
    model_update_is_compare_and_swap,
    deleting_the_last_model_in_use_needs_force,
    mcp_servers_round_trip_with_secrets_and_compare_and_swap,
    schedules_crud_and_paging,
    due_schedules_and_next_fire_time,
    each_fire_time_is_claimed_once_across_two_handles,
    runs_record_page_and_report_latest,
    flush_keeps_everything,
);

// ---- fixtures ----

fn model(id: &str, is_default: bool) -> Model {
    Model {
        id: id.into(),
        display_name: format!("model {id}"),
        provider: ProviderKind::OpenAiCompatible,
        provider_model: "gpt-test".into(),
        base_url: "http://127.0.0.1:1/v1".into(),
        api_key: Some("sk-stored".into()),
        api_key_env: None,
        capabilities: ModelCapabilities {
            tools: true,
            vision: false,
            reasoning: true,
        },
        context_window: 128_000,
        max_output_tokens: 4096,
        is_default,
        extra_headers: BTreeMap::from([("x-org".to_owned(), "octo".to_owned())]),
        options: serde_json::Map::from_iter([("temperature".to_owned(), serde_json::json!(0.2))]),
        create_time: Timestamp(10),
        update_time: Timestamp(10),
        revision: 1,
    }
}

fn titles(sessions: &[Session]) -> Vec<&str> {
    sessions.iter().map(|s| s.display_name.as_str()).collect()
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages.iter().map(Message::text).collect()
}

// ---- sessions ----

async fn sessions_round_trip_and_survive_reopen(f: Fixture) {
    let mut s = session("hello", true, 10);
    s.model = Some("gpt".into());
    s.forked_from = Some("sessions/x".into());
    s.source = SessionSource::Schedule;
    f.store.create_session(&s).await.expect("create");
    assert_eq!(
        f.store.get_session(&s.id).await.expect("get"),
        Some(s.clone())
    );
    let again = f.open_again().await;
    assert_eq!(
        again.get_session(&s.id).await.expect("get"),
        Some(s.clone())
    );
    assert_eq!(f.store.get_session(&new_id()).await.expect("get"), None);
    assert!(
        matches!(
            f.store.create_session(&s).await,
            Err(Error::AlreadyExists { .. })
        ),
        "a second create of one id"
    );
}

async fn sessions_list_in_order_and_page_by_keyset(f: Fixture) {
    let store = &*f.store;
    for s in [
        session("a", false, 100),
        session("b", true, 50),
        session("c", false, 300),
        session("d", false, 200),
    ] {
        store.create_session(&s).await.expect("create");
    }
    let filter = SessionFilter::default();
    let first = store.list_sessions(&filter, None, 2).await.expect("page 1");
    assert_eq!(titles(&first), ["b", "c"]);
    let cursor = SessionCursor::of(&first[1], &SessionOrder::default());
    // A session inserted at the front after page 1 must not shift page 2.
    store
        .create_session(&session("new", false, 999))
        .await
        .expect("insert");
    let second = store
        .list_sessions(&filter, Some(&cursor), 5)
        .await
        .expect("page 2");
    assert_eq!(titles(&second), ["d", "a"]);
    // Equal activity: the id breaks the tie, newest first, and pages do not overlap.
    let (x, y) = (session("x", false, 7), session("y", false, 7));
    store.create_session(&x).await.expect("x");
    store.create_session(&y).await.expect("y");
    let all = store.list_sessions(&filter, None, 100).await.expect("all");
    let tie: Vec<&str> = titles(&all)
        .into_iter()
        .filter(|t| *t == "x" || *t == "y")
        .collect();
    assert_eq!(tie, ["y", "x"], "ids are time-ordered: y is newer");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_sessions(&filter, after.as_ref(), 2)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        after = page
            .last()
            .map(|s| SessionCursor::of(s, &SessionOrder::default()));
        paged.extend(page);
    }
    assert_eq!(titles(&paged), titles(&all));
}

async fn sessions_filter_by_text_source_pin_and_time(f: Fixture) {
    let store = &*f.store;
    let mut percent = session("100% done", true, 1);
    percent.create_time = Timestamp(1_000);
    let mut plain = session("1000 done", false, 2);
    plain.create_time = Timestamp(2_000);
    plain.source = SessionSource::Schedule;
    let mut preview = session("other", false, 3);
    preview.create_time = Timestamp(3_000);
    for s in [&percent, &plain, &preview] {
        store.create_session(s).await.expect("create");
    }
    // The preview is searched too: it comes from the session's messages.
    store
        .append_user_message(
            &message(&preview, "Deploy THE thing", None),
            None,
            Fence::NONE,
        )
        .await
        .expect("message");
    let list = |filter: SessionFilter| async move {
        let mut found = titles(&store.list_sessions(&filter, None, 10).await.expect("list"))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        found.sort();
        found
    };
    let query = |q: &str| SessionFilter {
        query: Some(q.into()),
        ..SessionFilter::default()
    };
    assert_eq!(list(query("0%")).await, ["100% done"], "% is a literal");
    assert_eq!(
        list(query("0_d")).await,
        Vec::<String>::new(),
        "_ is a literal"
    );
    assert_eq!(list(query("DONE")).await, ["100% done", "1000 done"]);
    assert_eq!(list(query("the thing")).await, ["other"]);
    let source = SessionFilter {
        source: Some(SessionSource::Schedule),
        ..SessionFilter::default()
    };
    assert_eq!(list(source).await, ["1000 done"]);
    let pinned = SessionFilter {
        pinned: Some(false),
        ..SessionFilter::default()
    };
    assert_eq!(list(pinned).await, ["1000 done", "other"]);
    let window = SessionFilter {
        created_after: Some(Timestamp(1_000)),
        created_before: Some(Timestamp(3_000)),
        ..SessionFilter::default()
    };
    assert_eq!(
        list(window).await,
        ["100% done", "1000 done"],
        "at or after the lower bound, before the upper"
    );
}

async fn session_update_is_compare_and_swap(f: Fixture) {
    let store = &*f.store;
    let mut s = session("x", false, 1);
    store.create_session(&s).await.expect("create");
    s.display_name = "y".into();
    s.pinned = true;
    s.labels.insert("env".into(), "prod".into());
    s.revision = 2;
    assert!(store.update_session(&s, 1).await.expect("update"));
    let mut stale = s.clone();
    stale.display_name = "z".into();
    stale.revision = 3;
    assert!(!store.update_session(&stale, 1).await.expect("stale update"));
    let stored = store
        .get_session(&s.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored, s);
    let mut missing = session("gone", false, 1);
    missing.revision = 2;
    assert!(!store.update_session(&missing, 1).await.expect("missing"));
}

async fn session_content_is_atomic_and_deleted_with_the_session(f: Fixture) {
    let store = &*f.store;
    let s = session("x", false, 1);
    let mut done = turn(&s, TurnStatus::Succeeded, 6);
    done.tool_calls = vec![ToolCallRecord {
        id: "call_1".into(),
        tool: "shell".into(),
        arguments_json: r#"{"command":"ls"}"#.into(),
        status: ToolCallStatus::Succeeded,
        output: "a\nb".into(),
        is_error: false,
        exit_code: Some(0),
        start_time: Some(Timestamp(7)),
        end_time: Some(Timestamp(8)),
    }];
    let content = SessionContent {
        session: s.clone(),
        messages: vec![message(&s, "hi", Some(1))],
        turns: vec![done.clone()],
    };
    store
        .insert_session_content(&content)
        .await
        .expect("insert");
    assert_eq!(
        store.session_content(&s.id).await.expect("read"),
        Some(content.clone())
    );
    // A second insert of the same session fails and leaves no partial rows behind.
    let mut again = content.clone();
    again.messages.push(message(&s, "extra", Some(2)));
    assert!(matches!(
        store.insert_session_content(&again).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(
        store.session_content(&s.id).await.expect("read"),
        Some(content.clone())
    );
    assert!(store.delete_session(&s.id).await.expect("delete"));
    assert_eq!(store.session_content(&s.id).await.expect("read"), None);
    assert_eq!(store.get_turn(&s.id, &done.id).await.expect("turn"), None);
    assert_eq!(
        store
            .get_message(&s.id, &content.messages[0].id)
            .await
            .expect("message"),
        None
    );
    assert!(!store.delete_session(&s.id).await.expect("delete again"));
}

async fn allowed_tools_accumulate_without_duplicates(f: Fixture) {
    let store = &*f.store;
    let s = created(store, "x").await;
    let other = created(store, "y").await;
    assert!(store.allowed_tools(&s.id).await.expect("none").is_empty());
    for tool in ["shell", "write_file", "shell"] {
        store
            .allow_tool(&s.id, tool, Fence::NONE)
            .await
            .expect("allow");
    }
    let mut tools = store.allowed_tools(&s.id).await.expect("tools");
    tools.sort();
    assert_eq!(tools, ["shell", "write_file"]);
    assert!(
        store
            .allowed_tools(&other.id)
            .await
            .expect("other")
            .is_empty()
    );
}

async fn event_sequence_floor_rises_or_is_set_conditionally(f: Fixture) {
    let store = &*f.store;
    let s = created(store, "x").await;
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 0);
    store
        .set_event_sequence(&s.id, 40, None, Fence::NONE)
        .await
        .expect("up");
    store
        .set_event_sequence(&s.id, 10, None, Fence::NONE)
        .await
        .expect("not down");
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 40);
    // A retiring session lowers its own floor only if nobody moved it since.
    store
        .set_event_sequence(&s.id, 30, Some(39), Fence::NONE)
        .await
        .expect("stale");
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 40);
    store
        .set_event_sequence(&s.id, 30, Some(40), Fence::NONE)
        .await
        .expect("current");
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 30);
    assert_eq!(
        f.open_again()
            .await
            .event_sequence(&s.id)
            .await
            .expect("durable"),
        30
    );
}

// ---- messages ----

async fn history_follows_positions_not_arrival(f: Fixture) {
    let store = &*f.store;
    let s = created(store, "x").await;
    let waiting = message(&s, "queued early", None);
    store
        .append_user_message(&waiting, None, Fence::NONE)
        .await
        .expect("queued");
    assert_eq!(store.next_position(&s.id).await.expect("next"), 1);
    let first = message(&s, "first", Some(1));
    store.put_message(&first, Fence::NONE).await.expect("first");
    assert_eq!(store.next_position(&s.id).await.expect("next"), 2);
    assert_eq!(
        texts(&store.history(&s.id).await.expect("history")),
        ["first"],
        "waiting messages are not in the history"
    );

    store
        .set_message_position(&s.id, &waiting.id, 2, Fence::NONE)
        .await
        .expect("position");
    // A checkpoint upsert without a position keeps the one it has.
    let mut rewritten = first.clone();
    rewritten.position = None;
    rewritten.incomplete = true;
    rewritten.parts = vec![Part::Text {
        text: "first!".into(),
    }];
    store
        .put_message(&rewritten, Fence::NONE)
        .await
        .expect("upsert");
    assert_eq!(
        texts(&store.history(&s.id).await.expect("history")),
        ["first!", "queued early"]
    );
    assert_eq!(store.next_position(&s.id).await.expect("next"), 3);
    let stored = store
        .get_message(&s.id, &first.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((stored.position, stored.incomplete), (Some(1), true));
    let s = store
        .get_session(&s.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(s.message_count, 2, "an upsert counts once");
}

async fn user_message_and_turn_are_stored_together(f: Fixture) {
    let store = &*f.store;
    let s = created(store, "x").await;
    let mut m = message(&s, "hello there", None);
    let mut t = turn(&s, TurnStatus::Queued, 9);
    m.turn_id = Some(t.id.clone());
    t.user_message_id = Some(m.id.clone());
    store
        .append_user_message(&m, Some(&t), Fence::NONE)
        .await
        .expect("append");
    assert_eq!(
        store.get_message(&s.id, &m.id).await.expect("m"),
        Some(m.clone())
    );
    assert_eq!(
        store.get_turn(&s.id, &t.id).await.expect("t"),
        Some(t.clone())
    );
    let stored = store
        .get_session(&s.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.message_count, 1);
    assert_eq!(stored.last_message_preview, "hello there");
    // A message of another session is not found under this one.
    let other = created(store, "y").await;
    assert_eq!(store.get_message(&other.id, &m.id).await.expect("m"), None);
    assert_eq!(store.get_turn(&other.id, &t.id).await.expect("t"), None);
}

async fn messages_page_between_before_and_after(f: Fixture) {
    let store = &*f.store;
    let s = created(store, "x").await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        let m = message(&s, &format!("m{i}"), Some(i));
        store.put_message(&m, Fence::NONE).await.expect("put");
        ids.push(m.id);
    }
    let session_id = s.id.as_str();
    let list = |before: Option<usize>, after: Option<usize>, limit| {
        let before = before.map(|i| ids[i - 1].clone());
        let after = after.map(|i| ids[i - 1].clone());
        async move {
            texts(
                &store
                    .list_messages(session_id, before.as_deref(), after.as_deref(), limit)
                    .await
                    .expect("list"),
            )
        }
    };
    assert_eq!(list(None, None, 10).await, ["m5", "m4", "m3", "m2", "m1"]);
    assert_eq!(list(None, None, 2).await, ["m5", "m4"]);
    assert_eq!(list(Some(4), None, 2).await, ["m3", "m2"]);
    assert_eq!(list(None, Some(3), 10).await, ["m5", "m4"]);
    assert_eq!(list(Some(5), Some(2), 10).await, ["m4", "m3"]);
    assert!(list(Some(1), None, 10).await.is_empty());
}

// ---- turns ----

async fn turns_upsert_page_and_add_usage_once(f: Fixture) {
    let store = &*f.store;
    let s = created(store, "x").await;
    let mut t = turn(&s, TurnStatus::Running, 10);
    t.start_time = Some(Timestamp(11));
    store.put_turn(&t, Fence::NONE).await.expect("running");
    t.status = TurnStatus::Failed;
    t.end_time = Some(Timestamp(500));
    t.usage = Usage {
        input_tokens: 10,
        output_tokens: 20,
        reasoning_tokens: 3,
        cached_input_tokens: 4,
    };
    t.latency_micros = Some(489);
    t.time_to_first_token_micros = Some(12);
    t.step_count = 2;
    t.error = Some(TurnError {
        reason: "PROVIDER_ERROR".into(),
        message: "boom".into(),
    });
    store.put_turn(&t, Fence::NONE).await.expect("finished");
    // A terminal turn written again (a retried write) adds nothing more.
    store.put_turn(&t, Fence::NONE).await.expect("again");
    assert_eq!(
        store.get_turn(&s.id, &t.id).await.expect("get"),
        Some(t.clone())
    );
    let stored = store
        .get_session(&s.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.usage, t.usage);
    assert_eq!(stored.last_active_time, Timestamp(500));

    let mut ids = vec![t.id.clone()];
    for i in 0..4 {
        let next = turn(&s, TurnStatus::Succeeded, 20 + i);
        store.put_turn(&next, Fence::NONE).await.expect("put");
        ids.push(next.id);
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let page = store.list_turns(&s.id, None, 2).await.expect("page 1");
    assert_eq!(
        page.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        newest_first[..2]
    );
    let rest = store
        .list_turns(&s.id, Some(&page[1].id), 10)
        .await
        .expect("page 2");
    assert_eq!(
        rest.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        newest_first[2..]
    );
}

async fn unfinished_turns_span_sessions_oldest_first_or_one_session(f: Fixture) {
    let store = &*f.store;
    let a = created(store, "a").await;
    let b = created(store, "b").await;
    let running = turn(&a, TurnStatus::Running, 1);
    let done = turn(&a, TurnStatus::Succeeded, 2);
    let queued_b = turn(&b, TurnStatus::Queued, 3);
    let queued_a = turn(&a, TurnStatus::Queued, 4);
    for t in [&running, &done, &queued_b, &queued_a] {
        store.put_turn(t, Fence::NONE).await.expect("put");
    }
    let ids = |turns: Vec<Turn>| turns.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let unfinished = ids(store.unfinished_turns(None).await.expect("unfinished"));
    assert_eq!(
        unfinished,
        [running.id.clone(), queued_b.id.clone(), queued_a.id.clone()]
    );
    // One session's: what a server taking the session over recovers.
    let of_a = ids(store.unfinished_turns(Some(&a.id)).await.expect("of a"));
    assert_eq!(of_a, [running.id, queued_a.id]);
    let of_b = ids(store.unfinished_turns(Some(&b.id)).await.expect("of b"));
    assert_eq!(of_b, [queued_b.id]);
}

// ---- models ----

async fn models_keep_exactly_one_default(f: Fixture) {
    let store = &*f.store;
    let first = store.create_model(&model("a", false)).await.expect("a");
    assert!(first.is_default, "the first model becomes the default");
    let b = store.create_model(&model("b", false)).await.expect("b");
    assert!(!b.is_default);
    let c = store.create_model(&model("c", true)).await.expect("c");
    assert!(c.is_default);
    let listed = store.list_models().await.expect("list");
    assert_eq!(
        listed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["c", "a", "b"],
        "the default first, then by creation"
    );
    assert_eq!(listed.iter().filter(|m| m.is_default).count(), 1);
    assert_eq!(listed[1].api_key.as_deref(), Some("sk-stored"));
    assert_eq!(listed[1].options, model("a", false).options);
    assert_eq!(listed[1].extra_headers, model("a", false).extra_headers);
    assert!(matches!(
        store.create_model(&model("b", false)).await,
        Err(Error::AlreadyExists { .. })
    ));
    // Deleting the default promotes the oldest remaining model.
    let deletion = store
        .delete_model("c", None, false)
        .await
        .expect("delete c");
    assert_eq!(deletion.promoted.as_deref(), Some("a"));
    let listed = store.list_models().await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.id.as_str(), m.is_default))
            .collect::<Vec<_>>(),
        [("a", true), ("b", false)]
    );
    let deletion = store
        .delete_model("b", None, false)
        .await
        .expect("delete b");
    assert_eq!(deletion.promoted, None);
    assert!(matches!(
        store.delete_model("b", None, false).await,
        Err(Error::NotFound { .. })
    ));
}

async fn model_update_is_compare_and_swap(f: Fixture) {
    let store = &*f.store;
    store.create_model(&model("a", false)).await.expect("a");
    store.create_model(&model("b", false)).await.expect("b");
    let mut b = model("b", true);
    b.display_name = "B".into();
    b.revision = 2;
    let updated = store
        .update_model(&b, 1)
        .await
        .expect("update")
        .expect("no conflict");
    assert!(updated.is_default && updated.display_name == "B");
    let a = store
        .list_models()
        .await
        .expect("list")
        .into_iter()
        .find(|m| m.id == "a")
        .expect("a");
    assert!(!a.is_default, "making b the default cleared a");
    // The default stays until another model takes over.
    let mut undefault = updated.clone();
    undefault.is_default = false;
    undefault.revision = 3;
    match store.update_model(&undefault, 2).await {
        Err(Error::FailedPrecondition { reason, .. }) => {
            assert_eq!(reason, "DEFAULT_MODEL_REQUIRED")
        }
        other => panic!("expected DEFAULT_MODEL_REQUIRED, got {other:?}"),
    }
    b.revision = 3;
    assert_eq!(store.update_model(&b, 1).await.expect("stale"), None);
    let mut gone = model("zz", false);
    gone.revision = 2;
    assert!(matches!(
        store.update_model(&gone, 1).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        store.delete_model("b", Some(1), false).await.is_err(),
        "stale revision"
    );
}

async fn mcp_servers_round_trip_with_secrets_and_compare_and_swap(f: Fixture) {
    let store = &*f.store;
    assert!(store.list_mcp_servers().await.expect("empty").is_empty());
    let mut stdio = McpServer::new(
        "files",
        McpTransport::Stdio {
            command: "node".into(),
            args: vec!["server.js".into(), "--flag".into()],
            env: BTreeMap::from([("API_KEY".into(), "sk-secret-value".into())]),
            working_dir: "/srv".into(),
        },
    );
    stdio.display_name = "Files".into();
    let mut http = McpServer::new(
        "api",
        McpTransport::Http {
            url: "https://mcp.example.com/mcp".into(),
            headers: BTreeMap::from([("Authorization".into(), "Bearer t0ken".into())]),
        },
    );
    http.enabled = false;
    store.create_mcp_server(&stdio).await.expect("stdio");
    store.create_mcp_server(&http).await.expect("http");
    assert!(matches!(
        store.create_mcp_server(&stdio).await,
        Err(Error::AlreadyExists { .. })
    ));
    // By id, every field (secrets included) as stored, after a reopen too.
    let reopened = f.open_again().await;
    let listed = reopened.list_mcp_servers().await.expect("list");
    assert_eq!(listed, [http.clone(), stdio.clone()]);

    let mut changed = stdio.clone();
    changed.enabled = false;
    changed.revision = 2;
    assert!(store.update_mcp_server(&changed, 1).await.expect("update"));
    changed.revision = 3;
    assert!(
        !store.update_mcp_server(&changed, 1).await.expect("stale"),
        "a stale revision changes nothing"
    );
    let mut missing = changed.clone();
    missing.id = "gone".into();
    assert!(!store.update_mcp_server(&missing, 2).await.expect("gone"));
    let stored = store.list_mcp_servers().await.expect("list");
    assert_eq!(stored[1].revision, 2);
    assert!(!stored[1].enabled);

    assert!(store.delete_mcp_server("files").await.expect("delete"));
    assert!(!store.delete_mcp_server("files").await.expect("again"));
    let ids: Vec<String> = store
        .list_mcp_servers()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["api"]);

    // A session's choice of servers: none stored, an empty choice, and back.
    let mut chooser = created(store, "chooser").await;
    assert_eq!(chooser.mcp_servers, None);
    chooser.mcp_servers = Some(Vec::new());
    chooser.revision = 2;
    assert!(store.update_session(&chooser, 1).await.expect("update"));
    let stored = store
        .get_session(&chooser.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(stored.mcp_servers, Some(Vec::new()));
    chooser.mcp_servers = None;
    chooser.revision = 3;
    assert!(store.update_session(&chooser, 2).await.expect("update"));
    let stored = store
        .get_session(&chooser.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(stored.mcp_servers, None);
}

async fn deleting_the_last_model_in_use_needs_force(f: Fixture) {
    let store = &*f.store;
    store
        .create_model(&model("only", false))
        .await
        .expect("create");
    let mut s = session("uses it", false, 1);
    s.model = Some("only".into());
    store.create_session(&s).await.expect("session");
    match store.delete_model("only", None, false).await {
        Err(Error::FailedPrecondition { reason, .. }) => assert_eq!(reason, "MODEL_IN_USE"),
        other => panic!("expected MODEL_IN_USE, got {other:?}"),
    }
    assert_eq!(store.list_models().await.expect("list").len(), 1);
    store
        .delete_model("only", None, true)
        .await
        .expect("forced");
    assert!(store.list_models().await.expect("list").is_empty());
}

// ---- schedules ----

async fn schedules_crud_and_paging(f: Fixture) {
    let store = &*f.store;
    let mut all = Vec::new();
    for _ in 0..5 {
        let s = schedule(Some(100), true);
        store.create_schedule(&s).await.expect("create");
        all.push(s);
    }
    // Schedule ids are the server's own (no client-chosen ids): a repeat is a fault.
    assert!(store.create_schedule(&all[0]).await.is_err());
    assert_eq!(
        store.get_schedule(&all[2].id).await.expect("get"),
        Some(all[2].clone())
    );
    let page = store.list_schedules(None, 3).await.expect("page 1");
    let rest = store
        .list_schedules(Some(&page[2].id), 10)
        .await
        .expect("page 2");
    let ids: Vec<&str> = page.iter().chain(&rest).map(|s| s.id.as_str()).collect();
    let mut expected: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    expected.sort();
    assert_eq!(ids, expected, "by id, which is by creation");

    let mut changed = all[1].clone();
    changed.prompt = "a new prompt".into();
    changed.enabled = false;
    changed.revision = 2;
    assert!(store.update_schedule(&changed, 1).await.expect("update"));
    assert!(!store.update_schedule(&changed, 1).await.expect("stale"));
    assert_eq!(
        store.get_schedule(&changed.id).await.expect("get"),
        Some(changed.clone())
    );

    let run = ScheduleRun::new(&all[3].id, RunTrigger::Manual, Timestamp(5));
    store.insert_run(&run).await.expect("run");
    assert!(store.delete_schedule(&all[3].id).await.expect("delete"));
    assert!(!store.delete_schedule(&all[3].id).await.expect("again"));
    assert_eq!(store.get_schedule(&all[3].id).await.expect("get"), None);
    assert_eq!(
        store.get_run(&all[3].id, &run.id).await.expect("run"),
        None,
        "its runs go with it"
    );
}

async fn due_schedules_and_next_fire_time(f: Fixture) {
    let store = &*f.store;
    assert_eq!(store.next_fire_time().await.expect("none"), None);
    let due = schedule(Some(100), true);
    let exactly = schedule(Some(200), true);
    let later = schedule(Some(300), true);
    let disabled = schedule(Some(50), false);
    let never = schedule(None, true);
    for s in [&due, &exactly, &later, &disabled, &never] {
        store.create_schedule(s).await.expect("create");
    }
    let mut found: Vec<String> = store
        .due_schedules(Timestamp(200))
        .await
        .expect("due")
        .into_iter()
        .map(|s| s.id)
        .collect();
    found.sort();
    let mut expected = vec![due.id.clone(), exactly.id.clone()];
    expected.sort();
    assert_eq!(found, expected, "enabled and at or before now");
    assert_eq!(
        store.next_fire_time().await.expect("next"),
        Some(Timestamp(100)),
        "disabled schedules do not count"
    );
}

/// Two handles on one database stand for two servers: however their claims
/// interleave, each fire time is claimed exactly once.
async fn each_fire_time_is_claimed_once_across_two_handles(f: Fixture) {
    let s = schedule(Some(0), true);
    f.store.create_schedule(&s).await.expect("create");
    let claims = |store: Arc<dyn Store>| {
        let id = s.id.clone();
        tokio::spawn(async move {
            let mut won = Vec::new();
            for fire in 0..100i64 {
                let run = ScheduleRun::new(&id, RunTrigger::Cron, Timestamp(fire));
                if store
                    .claim_fire_time(&run, Timestamp(fire), Some(Timestamp(fire + 1)))
                    .await
                    .expect("claim")
                {
                    won.push(fire);
                }
            }
            won
        })
    };
    let (a, b) = (claims(f.store.clone()), claims(f.open_again().await));
    let mut all = a.await.expect("a");
    all.extend(b.await.expect("b"));
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>(), "every fire time once");
    let stored = f
        .store
        .get_schedule(&s.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.next_run_time, Some(Timestamp(100)));
    assert_eq!(
        f.store
            .list_runs(&s.id, None, 500)
            .await
            .expect("runs")
            .len(),
        100
    );
}

async fn runs_record_page_and_report_latest(f: Fixture) {
    let store = &*f.store;
    let a = schedule(Some(10), true);
    let b = schedule(Some(10), true);
    store.create_schedule(&a).await.expect("a");
    store.create_schedule(&b).await.expect("b");
    let mut runs = Vec::new();
    for i in 0..4 {
        let run = ScheduleRun::new(&a.id, RunTrigger::Manual, Timestamp(i));
        store.insert_run(&run).await.expect("insert");
        runs.push(run);
    }
    let mut finished = runs[0].clone();
    finished.status = RunStatus::Failed;
    finished.start_time = Some(Timestamp(1));
    finished.end_time = Some(Timestamp(2));
    finished.session_id = Some(new_id());
    finished.turn_id = Some(new_id());
    finished.error = "provider down".into();
    finished.attempt = 2;
    finished.next_retry_delay = Some(Duration::from_secs(4));
    store.update_run(&finished).await.expect("update");
    assert_eq!(
        store.get_run(&a.id, &finished.id).await.expect("get"),
        Some(finished.clone())
    );
    assert_eq!(store.get_run(&b.id, &finished.id).await.expect("get"), None);

    let page = store.list_runs(&a.id, None, 2).await.expect("page");
    assert_eq!(
        page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [runs[3].id.as_str(), runs[2].id.as_str()],
        "newest first"
    );
    let rest = store
        .list_runs(&a.id, Some(&page[1].id), 10)
        .await
        .expect("rest");
    assert_eq!(
        rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [runs[1].id.as_str(), runs[0].id.as_str()]
    );

    let b_run = ScheduleRun::new(&b.id, RunTrigger::Cron, Timestamp(9));
    store.insert_run(&b_run).await.expect("b run");
    let mut latest = store
        .latest_runs(&[a.id.clone(), b.id.clone(), new_id()])
        .await
        .expect("latest");
    latest.sort_by(|x, y| x.schedule_id.cmp(&y.schedule_id));
    let mut expected = vec![runs[3].clone(), b_run];
    expected.sort_by(|x, y| x.schedule_id.cmp(&y.schedule_id));
    assert_eq!(
        latest, expected,
        "the newest run of each, none for unknown ids"
    );
    assert!(store.latest_runs(&[]).await.expect("none").is_empty());
}

async fn flush_keeps_everything(f: Fixture) {
    let s = created(&*f.store, "kept").await;
    f.store.flush().await.expect("flush");
    assert_eq!(
        f.open_again().await.get_session(&s.id).await.expect("get"),
        Some(s)
    );
}

// ---- readiness ----

async fn a_fresh_store_answers_the_readiness_check(f: Fixture) {
    f.store.check().await.expect("a migrated store answers");
    f.open_again()
        .await
        .check()
        .await
        .expect("and once reopened");
}
