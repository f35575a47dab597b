//! The conformance cases of the trash, the retention purge and the session list's label
//! filters and orders, on every backend (the `conformance!` macro and fixtures of
//! `common/store.rs`): `delete_time`/`expire_time` round-trip and hide a session from
//! the list; a trashed session takes no message; `purge_session` purges only the trash;
//! `purge_sessions` takes what its rule names and nothing live, disjointly across two
//! handles; label conditions and every order page exactly.

use crate::common;

use std::{collections::BTreeMap, time::Duration};

use common::store::{Fixture, conformance, created, message, session, turn};
use octo::{
    domain::{
        Error, Session, Timestamp, TurnStatus,
        cluster::Fence,
        session_list::{self, SessionOrder, SortKey},
    },
    store::{PurgeRule, SessionCursor, SessionFilter, Store},
};

conformance!(
    trash_fields_round_trip_and_hide_the_session_from_the_list,
    a_session_in_the_trash_takes_no_message,
    purge_session_purges_only_the_trash_with_everything_of_it,
    purge_sessions_takes_what_the_rule_names_and_nothing_live,
    purge_sessions_honours_its_limit_oldest_first,
    two_handles_purging_at_once_take_disjoint_sessions,
    sessions_filter_by_labels,
    sessions_page_exactly_in_every_order,
);

const LIVE: Duration = Duration::from_secs(600);

/// Moves `s` to the trash as the runtime does: a compare-and-swap of the next revision.
async fn trash(store: &dyn Store, s: &mut Session, deleted: i64, expires: i64) {
    let expected = s.revision;
    s.revision += 1;
    s.delete_time = Some(Timestamp(deleted));
    s.expire_time = Some(Timestamp(expires));
    assert!(
        store.update_session(s, expected).await.expect("trash"),
        "trash {}",
        s.id
    );
}

fn ids(sessions: &[Session]) -> Vec<String> {
    sessions.iter().map(|s| s.id.clone()).collect()
}

async fn listed(store: &dyn Store, filter: &SessionFilter) -> Vec<String> {
    ids(&store.list_sessions(filter, None, 100).await.expect("list"))
}

async fn trash_fields_round_trip_and_hide_the_session_from_the_list(f: Fixture) {
    let store = f.store.as_ref();
    let kept = created(store, "kept").await;
    let mut gone = created(store, "gone").await;
    trash(store, &mut gone, 1_000, 2_000).await;
    let stored = store
        .get_session(&gone.id)
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(stored.delete_time, Some(Timestamp(1_000)));
    assert_eq!(stored.expire_time, Some(Timestamp(2_000)));
    assert_eq!(stored, gone, "every field round-trips");

    assert_eq!(
        listed(store, &SessionFilter::default()).await,
        [kept.id.as_str()]
    );
    let all = SessionFilter {
        show_deleted: true,
        ..SessionFilter::default()
    };
    let mut both = listed(store, &all).await;
    both.sort();
    let mut expected = vec![kept.id.clone(), gone.id.clone()];
    expected.sort();
    assert_eq!(both, expected);

    // Restored: listed again, the fields cleared; a reopened store agrees.
    gone.delete_time = None;
    gone.expire_time = None;
    gone.revision += 1;
    assert!(
        store
            .update_session(&gone, gone.revision - 1)
            .await
            .expect("restore")
    );
    let again = f.open_again().await;
    let stored = again
        .get_session(&gone.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!((stored.delete_time, stored.expire_time), (None, None));
    assert_eq!(
        listed(again.as_ref(), &SessionFilter::default())
            .await
            .len(),
        2
    );
}

async fn a_session_in_the_trash_takes_no_message(f: Fixture) {
    let store = f.store.as_ref();
    let mut s = created(store, "trashed").await;
    trash(store, &mut s, 1, 2).await;
    let m = message(&s, "hello?", None);
    let t = turn(&s, TurnStatus::Queued, 10);
    match store.append_user_message(&m, Some(&t), Fence::NONE).await {
        Err(Error::FailedPrecondition { reason, .. }) => assert_eq!(reason, "SESSION_DELETED"),
        other => panic!("expected SESSION_DELETED, got {other:?}"),
    }
    // Nothing of it was written.
    assert!(
        store
            .get_message(&s.id, &m.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(store.get_turn(&s.id, &t.id).await.expect("get").is_none());
    let stored = store.get_session(&s.id).await.expect("get").expect("there");
    assert_eq!(stored.message_count, 0);

    // A session not in the trash still takes messages.
    let open = created(store, "open").await;
    store
        .append_user_message(&message(&open, "hi", None), None, Fence::NONE)
        .await
        .expect("append");
}

async fn purge_session_purges_only_the_trash_with_everything_of_it(f: Fixture) {
    let store = f.store.as_ref();
    let mut s = created(store, "to purge").await;
    let m = message(&s, "hello", Some(1));
    let t = turn(&s, TurnStatus::Succeeded, 10);
    store
        .append_user_message(&m, Some(&t), Fence::NONE)
        .await
        .expect("append");
    assert!(
        !store.purge_session(&s.id).await.expect("purge"),
        "not in the trash: stays"
    );
    assert!(store.get_session(&s.id).await.expect("get").is_some());

    trash(store, &mut s, 1, 2).await;
    assert!(store.purge_session(&s.id).await.expect("purge"));
    assert!(store.get_session(&s.id).await.expect("get").is_none());
    assert!(
        store
            .get_message(&s.id, &m.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(store.get_turn(&s.id, &t.id).await.expect("get").is_none());
    assert!(
        store
            .session_content(&s.id)
            .await
            .expect("content")
            .is_none()
    );
    assert!(!store.purge_session(&s.id).await.expect("again"), "gone");
}

async fn purge_sessions_takes_what_the_rule_names_and_nothing_live(f: Fixture) {
    let store = f.store.as_ref();
    let now = Timestamp::now().0;
    let make = async |title: &str, active: i64| {
        let s = session(title, false, active);
        store.create_session(&s).await.expect("create");
        s
    };
    let mut expired = make("expired", now).await;
    let mut not_yet = make("not yet", now).await;
    let idle = make("idle", now - 1_000_000_000).await;
    let recent = make("recent", now).await;
    let mut kept = make("kept", now).await;
    let mut busy = make("busy", now).await;
    let mut leased = make("leased", now).await;
    let mut released = make("released", now).await;
    for s in [
        &mut expired,
        &mut kept,
        &mut busy,
        &mut leased,
        &mut released,
    ] {
        trash(store, s, now - 10, now - 5).await;
    }
    trash(store, &mut not_yet, now - 10, now + 1_000_000_000).await;
    // A queued turn: work in progress, whatever the trash says.
    store
        .append_user_message(
            &message(&busy, "queued before the delete", None),
            Some(&turn(&busy, TurnStatus::Queued, 10)),
            Fence::NONE,
        )
        .await
        .expect_err("the trash takes no message");
    store
        .put_turn(&turn(&busy, TurnStatus::Queued, 10), Fence::NONE)
        .await
        .expect("a turn left queued");
    // A live lease: another server has the session live.
    store
        .register_server("other", "addr")
        .await
        .expect("register");
    store
        .acquire_lease(&leased.id, "other", LIVE)
        .await
        .expect("lease");
    // A released lease keeps nothing live.
    let lease = store
        .acquire_lease(&released.id, "other", LIVE)
        .await
        .expect("lease");
    assert!(
        store
            .release_lease(&released.id, "other", lease.epoch)
            .await
            .expect("release")
    );

    let rule = PurgeRule {
        expired_at: Timestamp(now),
        inactive_before: None,
        keep: vec![kept.id.clone()],
        limit: 100,
    };
    let mut purged = store.purge_sessions(&rule).await.expect("purge");
    purged.sort();
    let mut expected = vec![expired.id.clone(), released.id.clone()];
    expected.sort();
    assert_eq!(purged, expected);
    for gone in [&expired, &released] {
        assert!(store.get_session(&gone.id).await.expect("get").is_none());
        assert!(store.get_lease(&gone.id).await.expect("lease").is_none());
    }
    for stays in [&not_yet, &idle, &recent, &kept, &busy, &leased] {
        assert!(
            store.get_session(&stays.id).await.expect("get").is_some(),
            "{} stays",
            stays.display_name
        );
    }
    assert!(store.purge_sessions(&rule).await.expect("again").is_empty());

    // With an inactivity limit: the idle session goes too, in the trash or not.
    let rule = PurgeRule {
        inactive_before: Some(Timestamp(now - 1_000)),
        ..rule
    };
    assert_eq!(
        store.purge_sessions(&rule).await.expect("purge"),
        [idle.id.as_str()]
    );
    assert!(store.get_session(&recent.id).await.expect("get").is_some());
}

async fn purge_sessions_honours_its_limit_oldest_first(f: Fixture) {
    let store = f.store.as_ref();
    let mut trashed = Vec::new();
    for i in 0..5 {
        let mut s = created(store, &format!("t{i}")).await;
        // Expiring in reverse order of creation: the oldest expiry goes first.
        trash(store, &mut s, 1, 100 - i).await;
        trashed.push(s);
    }
    let rule = PurgeRule {
        expired_at: Timestamp(1_000),
        inactive_before: None,
        keep: Vec::new(),
        limit: 2,
    };
    assert_eq!(
        store.purge_sessions(&rule).await.expect("first"),
        [trashed[4].id.clone(), trashed[3].id.clone()]
    );
    assert_eq!(
        store.purge_sessions(&rule).await.expect("second"),
        [trashed[2].id.clone(), trashed[1].id.clone()]
    );
    assert_eq!(
        store.purge_sessions(&rule).await.expect("third"),
        [trashed[0].id.clone()]
    );
    assert!(store.purge_sessions(&rule).await.expect("done").is_empty());
}

async fn two_handles_purging_at_once_take_disjoint_sessions(f: Fixture) {
    let store = f.store.clone();
    let other = f.open_again().await;
    let mut all = Vec::new();
    for i in 0..40 {
        let mut s = created(store.as_ref(), &format!("s{i}")).await;
        trash(store.as_ref(), &mut s, 1, 2).await;
        all.push(s.id);
    }
    let rule = PurgeRule {
        expired_at: Timestamp(10),
        inactive_before: None,
        keep: Vec::new(),
        limit: 10,
    };
    let drain = |store: std::sync::Arc<dyn Store>, rule: PurgeRule| async move {
        let mut mine = Vec::new();
        loop {
            let purged = store.purge_sessions(&rule).await.expect("purge");
            if purged.is_empty() {
                return mine;
            }
            mine.extend(purged);
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(store.clone(), rule.clone())),
        tokio::spawn(drain(other.clone(), rule.clone()))
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    let mut union: Vec<String> = a.iter().chain(&b).cloned().collect();
    union.sort();
    all.sort();
    assert_eq!(
        union, all,
        "each session purged exactly once: {a:?} / {b:?}"
    );
}

async fn sessions_filter_by_labels(f: Fixture) {
    let store = f.store.as_ref();
    let make = async |title: &str, labels: &[(&str, &str)]| {
        let mut s = session(title, false, 1);
        s.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>();
        store.create_session(&s).await.expect("create");
        s.display_name
    };
    make("core-prod", &[("team", "core"), ("env", "prod")]).await;
    make("core-dev", &[("team", "core"), ("env", "dev")]).await;
    make("web", &[("team", "web"), ("my-key", "a \"quoted\" value")]).await;
    make("none", &[]).await;
    let titles = async |filter: &str| {
        let filter = SessionFilter {
            labels: session_list::parse_filter(filter).expect("filter"),
            order: SessionOrder {
                pinned_first: false,
                key: SortKey::DisplayName,
                descending: false,
            },
            ..SessionFilter::default()
        };
        store
            .list_sessions(&filter, None, 100)
            .await
            .expect("list")
            .into_iter()
            .map(|s| s.display_name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        titles(r#"labels.team = "core""#).await,
        ["core-dev", "core-prod"]
    );
    assert_eq!(
        titles(r#"labels.team != "core""#).await,
        ["none", "web"],
        "!= matches sessions without the label"
    );
    assert_eq!(
        titles(r#"labels.team = "core" AND labels.env = prod"#).await,
        ["core-prod"]
    );
    assert_eq!(titles("labels.env:*").await, ["core-dev", "core-prod"]);
    assert_eq!(titles("labels:my-key").await, ["web"]);
    assert_eq!(
        titles(r#"labels.my-key = "a \"quoted\" value""#).await,
        ["web"]
    );
    assert_eq!(
        titles(r#"labels.team = "core" AND labels.env != "prod" AND labels.team:*"#).await,
        ["core-dev"]
    );
    assert!(
        titles(r#"labels.team = "CORE""#).await.is_empty(),
        "values are exact"
    );
    assert!(titles("labels.nothing:*").await.is_empty());
}

async fn sessions_page_exactly_in_every_order(f: Fixture) {
    let store = f.store.as_ref();
    let mut all = Vec::new();
    // Ties on every key (same times, same titles), pinned and not: the id decides.
    for i in 0..9i64 {
        let mut s = session(&format!("title {}", i % 3), i % 4 == 0, 0);
        s.create_time = Timestamp(100 + (i * 7) % 5);
        s.last_active_time = Timestamp(200 + (i * 5) % 4);
        store.create_session(&s).await.expect("create");
        all.push(s);
    }
    let mut trashed = all.pop().expect("one");
    trash(store, &mut trashed, 1, 2).await;
    for pinned_first in [false, true] {
        for key in [
            SortKey::LastActiveTime,
            SortKey::CreateTime,
            SortKey::DisplayName,
        ] {
            for descending in [false, true] {
                let order = SessionOrder {
                    pinned_first,
                    key,
                    descending,
                };
                let mut expected = all.clone();
                expected.sort_by(|a, b| {
                    let by_key = match key {
                        SortKey::LastActiveTime => a.last_active_time.cmp(&b.last_active_time),
                        SortKey::CreateTime => a.create_time.cmp(&b.create_time),
                        SortKey::DisplayName => a.display_name.cmp(&b.display_name),
                    }
                    .then_with(|| a.id.cmp(&b.id));
                    let by_key = if descending { by_key.reverse() } else { by_key };
                    if pinned_first {
                        b.pinned.cmp(&a.pinned).then(by_key)
                    } else {
                        by_key
                    }
                });
                let filter = SessionFilter {
                    order,
                    ..SessionFilter::default()
                };
                let mut seen = Vec::new();
                let mut after: Option<SessionCursor> = None;
                loop {
                    let page = store
                        .list_sessions(&filter, after.as_ref(), 2)
                        .await
                        .expect("page");
                    if page.is_empty() {
                        break;
                    }
                    after = page.last().map(|s| SessionCursor::of(s, &order));
                    seen.extend(ids(&page));
                }
                assert_eq!(seen, ids(&expected), "{}", order.canonical());
            }
        }
    }
}
