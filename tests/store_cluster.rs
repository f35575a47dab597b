//! The conformance cases of `ClusterStore` and of fencing, on every backend (the same
//! `conformance!` macro and fixtures as `tests/store.rs`, from `common/store.rs`): the
//! server registry, session leases with their epochs, expiry, release, takeover of
//! orphaned sessions, owner writes refused once their lease epoch is stale, and schedule
//! runs written only by their runner and taken over from dead ones.
//!
//! Expiry is never waited for: a TTL of zero makes a lease that is expired at once (a
//! lease is live while now < expire_time), and a long TTL one that stays live for the
//! whole test.

use crate::common;

use std::time::Duration;

use common::store::{Fixture, conformance, created, message, schedule, turn};
use octo::{
    domain::{
        Error, Resource, Timestamp, TurnStatus,
        cluster::{Fence, Lease},
        new_id,
        outbox::{OutboxDelivery, WebhookEndpoint},
        schedule::{RunStatus, RunTrigger, ScheduleRun},
    },
    store::Store,
};

conformance!(
    servers_register_heartbeat_list_and_deregister,
    a_lease_is_taken_renewed_refused_while_live_and_taken_over_once_expired,
    a_released_lease_keeps_its_epoch_and_the_next_owner_gets_a_higher_one,
    heartbeat_renews_the_servers_own_leases_only_and_returns_them,
    deregistering_a_server_releases_its_leases,
    orphaned_sessions_have_unfinished_turns_and_no_live_lease,
    fenced_writes_need_the_current_epoch_and_a_stale_one_writes_nothing,
    unfenced_writes_always_write,
    deleting_a_session_removes_its_lease,
    change_notices_reach_every_listener_in_order,
    schedule_runs_are_written_by_their_runner_and_taken_over_from_dead_ones,
    servers_taking_over_runs_at_once_get_disjoint_sets,
);

/// Long enough to stay live for any test.
const LIVE: Duration = Duration::from_secs(600);
/// Expired as soon as it is written.
const EXPIRED: Duration = Duration::ZERO;

async fn acquire(store: &dyn Store, session_id: &str, server: &str, ttl: Duration) -> Lease {
    store
        .acquire_lease(session_id, server, ttl)
        .await
        .expect("acquire lease")
}

async fn lease(store: &dyn Store, session_id: &str) -> Lease {
    store
        .get_lease(session_id)
        .await
        .expect("get lease")
        .expect("a lease")
}

fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(
            err @ Error::Unavailable {
                reason,
                retry_after,
                ..
            },
        ) => {
            assert_eq!(reason, "LEASE_LOST", "{what}");
            assert!(retry_after.is_some(), "{what}");
            assert!(
                err.to_string().contains("no longer current"),
                "{what}: {err}"
            );
        }
        other => panic!("{what}: expected LEASE_LOST, got {other:?}"),
    }
}

// ---- servers ----

async fn servers_register_heartbeat_list_and_deregister(f: Fixture) {
    let store = f.store.as_ref();
    assert!(store.list_servers().await.expect("list").is_empty());
    let b = store
        .register_server("b", "10.0.0.2:7000")
        .await
        .expect("b");
    let a = store
        .register_server("a", "10.0.0.1:7000")
        .await
        .expect("a");
    assert_eq!((a.id.as_str(), a.address.as_str()), ("a", "10.0.0.1:7000"));
    assert_eq!(a.start_time, a.heartbeat_time, "a new server starts now");
    assert!(a.start_time > Timestamp(0));
    // Ordered by id, not by registration.
    assert_eq!(
        store.list_servers().await.expect("list"),
        vec![a.clone(), b]
    );

    // Registering again (a restart on a new address) keeps the start time.
    let again = store
        .register_server("a", "10.0.0.9:7000")
        .await
        .expect("again");
    assert_eq!(again.address, "10.0.0.9:7000");
    assert_eq!(again.start_time, a.start_time);
    assert!(again.heartbeat_time >= a.heartbeat_time);

    // A heartbeat with no leases renews nothing and moves the heartbeat time.
    assert!(store.heartbeat("a", LIVE).await.expect("beat").is_empty());
    let servers = store.list_servers().await.expect("list");
    assert!(servers[0].heartbeat_time >= again.heartbeat_time);
    assert_eq!(servers[0].start_time, a.start_time);

    store.deregister_server("a").await.expect("deregister");
    let ids: Vec<String> = store
        .list_servers()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["b"]);
    // Deregistering an unknown server is a no-op.
    store.deregister_server("a").await.expect("again");
}

// ---- leases ----

async fn a_lease_is_taken_renewed_refused_while_live_and_taken_over_once_expired(f: Fixture) {
    let store = f.store.as_ref();
    store.register_server("a", "addr-a").await.expect("a");
    store.register_server("b", "addr-b").await.expect("b");
    let s = created(store, "leased").await;
    assert_eq!(store.get_lease(&s.id).await.expect("get"), None);

    // A fresh session: epoch 1, the owner's address.
    let first = acquire(store, &s.id, "a", LIVE).await;
    assert_eq!(
        (first.owner.as_str(), first.address.as_str(), first.epoch),
        ("a", "addr-a", 1)
    );
    assert_eq!(first.session_id, s.id);
    assert!(first.expire_time > Timestamp::now());
    assert_eq!(lease(store, &s.id).await, first);

    // The owner re-acquiring renews: same epoch, expiry not earlier.
    let renewed = acquire(store, &s.id, "a", LIVE).await;
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.expire_time >= first.expire_time);

    // Another server is refused while it is live: it gets the owner and its address.
    let refused = acquire(store, &s.id, "b", LIVE).await;
    assert_eq!(refused, renewed, "the live lease is unchanged");
    assert_eq!(
        (refused.owner.as_str(), refused.address.as_str()),
        ("a", "addr-a")
    );

    // Once it expired (a renewal with TTL 0), another server takes it: epoch 2.
    let expiring = acquire(store, &s.id, "a", EXPIRED).await;
    assert_eq!((expiring.owner.as_str(), expiring.epoch), ("a", 1));
    let taken = acquire(store, &s.id, "b", LIVE).await;
    assert_eq!(
        (taken.owner.as_str(), taken.address.as_str(), taken.epoch),
        ("b", "addr-b", 2)
    );
    assert_eq!(lease(store, &s.id).await, taken);
    // ... and the old owner is now the one refused.
    assert_eq!(acquire(store, &s.id, "a", LIVE).await.owner, "b");

    // An owner without a server row has no address.
    let t = created(store, "unregistered owner").await;
    let lease = acquire(store, &t.id, "ghost", LIVE).await;
    assert_eq!(
        (lease.owner.as_str(), lease.address.as_str()),
        ("ghost", "")
    );

    // No session, no lease.
    let missing = new_id();
    match store.acquire_lease(&missing, "a", LIVE).await {
        Err(Error::NotFound { resource, name }) => {
            assert_eq!(resource, Resource::Session);
            assert_eq!(name, format!("sessions/{missing}"));
        }
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
    assert_eq!(store.get_lease(&missing).await.expect("get"), None);
}

async fn a_released_lease_keeps_its_epoch_and_the_next_owner_gets_a_higher_one(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "released").await;
    let first = acquire(store, &s.id, "a", LIVE).await;
    assert_eq!(first.epoch, 1);

    // Only the owner, at its epoch, releases.
    assert!(
        !store
            .release_lease(&s.id, "a", 2)
            .await
            .expect("wrong epoch")
    );
    assert!(!store.release_lease(&s.id, "b", 1).await.expect("not owner"));
    assert_eq!(lease(store, &s.id).await, first);
    assert!(store.release_lease(&s.id, "a", 1).await.expect("release"));
    let released = lease(store, &s.id).await;
    assert_eq!(
        (
            released.owner.as_str(),
            released.epoch,
            released.expire_time
        ),
        ("", 1, Timestamp(0))
    );
    assert!(!store.release_lease(&s.id, "a", 1).await.expect("twice"));

    // The next owner, even the same server, gets a higher epoch.
    assert_eq!(acquire(store, &s.id, "b", LIVE).await.epoch, 2);
    // b releases and takes it again (epoch 3): a release at its old epoch 2 is refused.
    assert!(store.release_lease(&s.id, "b", 2).await.expect("release"));
    assert_eq!(acquire(store, &s.id, "b", LIVE).await.epoch, 3);
    assert!(!store.release_lease(&s.id, "b", 2).await.expect("stale"));
    assert_eq!(lease(store, &s.id).await.owner, "b");
    // A release of a session with no lease releases nothing.
    let none = created(store, "no lease").await;
    assert!(!store.release_lease(&none.id, "b", 1).await.expect("none"));
}

async fn heartbeat_renews_the_servers_own_leases_only_and_returns_them(f: Fixture) {
    let store = f.store.as_ref();
    store.register_server("a", "addr-a").await.expect("a");
    let (s1, s2, s3) = (
        created(store, "one").await,
        created(store, "two").await,
        created(store, "three").await,
    );
    // a holds s1 and s2, both expired; b holds s3, live.
    acquire(store, &s1.id, "a", EXPIRED).await;
    acquire(store, &s2.id, "a", EXPIRED).await;
    let theirs = acquire(store, &s3.id, "b", LIVE).await;

    let mut renewed = store.heartbeat("a", LIVE).await.expect("beat");
    renewed.sort_by(|x, y| x.session_id.cmp(&y.session_id));
    let mut expected = vec![s1.id.clone(), s2.id.clone()];
    expected.sort();
    assert_eq!(
        renewed
            .iter()
            .map(|l| l.session_id.clone())
            .collect::<Vec<_>>(),
        expected
    );
    for l in &renewed {
        assert_eq!(
            (l.owner.as_str(), l.address.as_str(), l.epoch),
            ("a", "addr-a", 1)
        );
        assert!(l.expire_time > Timestamp::now(), "renewed to now + ttl");
        assert_eq!(&lease(store, &l.session_id).await, l);
    }
    // Renewed, so live: nobody else takes them.
    assert_eq!(acquire(store, &s1.id, "b", LIVE).await.owner, "a");
    // Another server's lease is untouched.
    assert_eq!(lease(store, &s3.id).await, theirs);

    // A server without a row still renews its leases (they come back without an
    // address); a server holding nothing gets nothing.
    let ghost = store.heartbeat("b", LIVE).await.expect("beat b");
    assert_eq!(ghost.len(), 1);
    assert_eq!(
        (ghost[0].owner.as_str(), ghost[0].address.as_str()),
        ("b", "")
    );
    assert!(store.heartbeat("c", LIVE).await.expect("beat c").is_empty());
    assert!(
        store
            .list_servers()
            .await
            .expect("list")
            .iter()
            .all(|s| s.id == "a"),
        "a heartbeat does not register a server"
    );
}

async fn deregistering_a_server_releases_its_leases(f: Fixture) {
    let store = f.store.as_ref();
    store.register_server("a", "addr-a").await.expect("a");
    store.register_server("b", "addr-b").await.expect("b");
    let (mine, theirs) = (created(store, "a's").await, created(store, "b's").await);
    acquire(store, &mine.id, "a", LIVE).await;
    let kept = acquire(store, &theirs.id, "b", LIVE).await;

    store.deregister_server("a").await.expect("deregister");
    let released = lease(store, &mine.id).await;
    assert_eq!(
        (
            released.owner.as_str(),
            released.epoch,
            released.expire_time
        ),
        ("", 1, Timestamp(0))
    );
    assert_eq!(lease(store, &theirs.id).await, kept);
    // Free at once for a live server, with the next epoch.
    let taken = acquire(store, &mine.id, "b", LIVE).await;
    assert_eq!((taken.owner.as_str(), taken.epoch), ("b", 2));
}

async fn orphaned_sessions_have_unfinished_turns_and_no_live_lease(f: Fixture) {
    let store = f.store.as_ref();
    // Turns are created in this order, so their ids (UUIDv7) are too: the order of
    // the oldest unfinished turn of each orphan is expired, none, released.
    let expired = created(store, "expired lease").await;
    let none = created(store, "no lease").await;
    let released = created(store, "released lease").await;
    let live = created(store, "live lease").await;
    let done = created(store, "finished").await;
    let with = |s, status| turn(s, status, 1);
    for t in [
        with(&expired, TurnStatus::Running),
        with(&none, TurnStatus::Queued),
        with(&released, TurnStatus::Queued),
        with(&expired, TurnStatus::Queued),
        with(&live, TurnStatus::Queued),
        with(&done, TurnStatus::Succeeded),
        with(&none, TurnStatus::Failed),
    ] {
        store.put_turn(&t, Fence::NONE).await.expect("turn");
    }
    acquire(store, &expired.id, "dead", EXPIRED).await;
    let r = acquire(store, &released.id, "gone", LIVE).await;
    assert!(
        store
            .release_lease(&released.id, "gone", r.epoch)
            .await
            .expect("release")
    );
    acquire(store, &live.id, "alive", LIVE).await;

    let orphans = store.orphaned_sessions(10).await.expect("orphans");
    assert_eq!(
        orphans,
        vec![expired.id.clone(), none.id.clone(), released.id.clone()]
    );
    assert_eq!(
        store.orphaned_sessions(2).await.expect("limited"),
        orphans[..2]
    );
    // Taking one over makes it no orphan.
    acquire(store, &none.id, "alive", LIVE).await;
    assert_eq!(
        store.orphaned_sessions(10).await.expect("orphans"),
        vec![expired.id.clone(), released.id.clone()]
    );
}

// ---- fencing ----

async fn fenced_writes_need_the_current_epoch_and_a_stale_one_writes_nothing(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "fenced").await;

    // Without a lease, any fence is stale.
    let orphan_turn = turn(&s, TurnStatus::Queued, 1);
    assert_lease_lost(store.put_turn(&orphan_turn, Fence(1)).await, "no lease");
    assert_eq!(
        store.get_turn(&s.id, &orphan_turn.id).await.expect("get"),
        None
    );

    let old = Fence(acquire(store, &s.id, "a", EXPIRED).await.epoch);
    assert_eq!(old, Fence(1));

    // With the current epoch every owner write goes through.
    let mut t = turn(&s, TurnStatus::Running, 2);
    store.put_turn(&t, old).await.expect("put turn");
    let mut m = message(&s, "draft", None);
    store.put_message(&m, old).await.expect("put message");
    let user = message(&s, "hello", None);
    let user_turn = turn(&s, TurnStatus::Queued, 3);
    store
        .append_user_message(&user, Some(&user_turn), old)
        .await
        .expect("append");
    store
        .set_event_sequence(&s.id, 10, None, old)
        .await
        .expect("sequence");
    store.allow_tool(&s.id, "shell", old).await.expect("allow");
    store
        .set_message_position(&s.id, &m.id, 1, old)
        .await
        .expect("position");

    // Another server takes the expired lease: the old epoch is stale.
    let current = Fence(acquire(store, &s.id, "b", LIVE).await.epoch);
    assert_eq!(current, Fence(2));
    let before = store.session_content(&s.id).await.expect("content");

    t.status = TurnStatus::Succeeded;
    t.usage.output_tokens = 7;
    assert_lease_lost(store.put_turn(&t, old).await, "put_turn");
    m.parts = message(&s, "overwritten", None).parts;
    assert_lease_lost(store.put_message(&m, old).await, "put_message (existing)");
    let new_message = message(&s, "late", None);
    assert_lease_lost(
        store.put_message(&new_message, old).await,
        "put_message (new)",
    );
    let late = message(&s, "late user", None);
    let late_turn = turn(&s, TurnStatus::Queued, 4);
    assert_lease_lost(
        store
            .append_user_message(&late, Some(&late_turn), old)
            .await,
        "append_user_message",
    );
    assert_lease_lost(
        store.set_event_sequence(&s.id, 99, None, old).await,
        "set_event_sequence",
    );
    assert_lease_lost(
        store.set_event_sequence(&s.id, 5, Some(10), old).await,
        "set_event_sequence only_if",
    );
    assert_lease_lost(store.allow_tool(&s.id, "rm", old).await, "allow_tool");
    assert_lease_lost(
        store.set_message_position(&s.id, &user.id, 2, old).await,
        "set_message_position",
    );
    // A fence from the future is as stale as one from the past.
    assert_lease_lost(store.put_turn(&t, Fence(3)).await, "future epoch");

    // Nothing of it was written: session (counters, usage, tools, floor), messages and
    // turns are exactly as before.
    assert_eq!(store.session_content(&s.id).await.expect("content"), before);
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 10);
    assert_eq!(store.allowed_tools(&s.id).await.expect("tools"), ["shell"]);
    let stored = store
        .get_turn(&s.id, &t.id)
        .await
        .expect("get")
        .expect("turn");
    assert_eq!(stored.status, TurnStatus::Running);
    assert_eq!(store.get_message(&s.id, &late.id).await.expect("get"), None);
    assert_eq!(
        store.get_turn(&s.id, &late_turn.id).await.expect("get"),
        None
    );
    let draft = store
        .get_message(&s.id, &m.id)
        .await
        .expect("get")
        .expect("m");
    assert_eq!(draft.text(), "draft");

    // The new owner's writes, fenced with the current epoch, go through.
    store.put_turn(&t, current).await.expect("current put_turn");
    store
        .put_message(&m, current)
        .await
        .expect("current put_message");
    store
        .set_event_sequence(&s.id, 99, None, current)
        .await
        .expect("current sequence");
    store
        .allow_tool(&s.id, "rm", current)
        .await
        .expect("current allow");
    let stored = store
        .get_turn(&s.id, &t.id)
        .await
        .expect("get")
        .expect("turn");
    assert_eq!(stored.status, TurnStatus::Succeeded);
    let session = store.get_session(&s.id).await.expect("get").expect("s");
    assert_eq!(
        session.usage.output_tokens, 7,
        "usage added once, by the owner"
    );
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 99);
    assert_eq!(
        store.allowed_tools(&s.id).await.expect("tools"),
        ["rm", "shell"]
    );
}

async fn unfenced_writes_always_write(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "unfenced").await;
    // Owned elsewhere at epoch 2: Fence::NONE writes all the same (one server, tests).
    acquire(store, &s.id, "a", EXPIRED).await;
    acquire(store, &s.id, "b", LIVE).await;
    let mut t = turn(&s, TurnStatus::Running, 1);
    store.put_turn(&t, Fence::NONE).await.expect("turn");
    t.status = TurnStatus::Succeeded;
    store.put_turn(&t, Fence::NONE).await.expect("turn again");
    let m = message(&s, "waiting", None);
    store.put_message(&m, Fence::NONE).await.expect("message");
    let user = message(&s, "user", None);
    store
        .append_user_message(&user, None, Fence::NONE)
        .await
        .expect("append");
    store
        .set_message_position(&s.id, &m.id, 1, Fence::NONE)
        .await
        .expect("position");
    store
        .set_event_sequence(&s.id, 42, None, Fence::NONE)
        .await
        .expect("sequence");
    store
        .allow_tool(&s.id, "shell", Fence::NONE)
        .await
        .expect("allow");

    let content = store.session_content(&s.id).await.expect("get").expect("s");
    assert_eq!(content.session.message_count, 2);
    assert_eq!(content.turns[0].status, TurnStatus::Succeeded);
    assert_eq!(store.history(&s.id).await.expect("history")[0].id, m.id);
    assert_eq!(store.event_sequence(&s.id).await.expect("floor"), 42);
    assert_eq!(store.allowed_tools(&s.id).await.expect("tools"), ["shell"]);
    // And a session that never had a lease takes unfenced writes too.
    let free = created(store, "no lease").await;
    store
        .put_turn(&turn(&free, TurnStatus::Queued, 1), Fence::NONE)
        .await
        .expect("turn");
}

async fn deleting_a_session_removes_its_lease(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "deleted").await;
    let other = created(store, "kept").await;
    acquire(store, &s.id, "a", LIVE).await;
    let kept = acquire(store, &other.id, "a", LIVE).await;
    assert!(store.delete_session(&s.id).await.expect("delete"));
    assert_eq!(store.get_lease(&s.id).await.expect("get"), None);
    assert!(matches!(
        store.acquire_lease(&s.id, "a", LIVE).await,
        Err(Error::NotFound { .. })
    ));
    // A fenced write for the deleted session finds no lease: refused, the same on every
    // backend and for every write (an unfenced one is a no-op, as before).
    assert_lease_lost(
        store.allow_tool(&s.id, "shell", Fence(1)).await,
        "allow_tool",
    );
    assert_lease_lost(
        store.set_event_sequence(&s.id, 5, None, Fence(1)).await,
        "set_event_sequence",
    );
    store
        .allow_tool(&s.id, "shell", Fence::NONE)
        .await
        .expect("unfenced no-op");
    // The server's heartbeat no longer returns it.
    assert_eq!(store.heartbeat("a", LIVE).await.expect("beat").len(), 1);
    assert_eq!(lease(store, &other.id).await.epoch, kept.epoch);
}

// ---- change notices ----

async fn change_notices_reach_every_listener_in_order(f: Fixture) {
    use futures::StreamExt as _;
    let store = &*f.store;
    let mut first = store.change_notices().await.expect("listen");
    let mut second = store.change_notices().await.expect("listen");
    store.publish_notice("one").await.expect("publish");
    store
        .publish_notice(r#"{"two": 2}"#)
        .await
        .expect("publish");
    for listener in [&mut first, &mut second] {
        let mut got = Vec::new();
        for _ in 0..2 {
            let notice = tokio::time::timeout(Duration::from_secs(30), listener.next())
                .await
                .expect("a notice in time (safety net)")
                .expect("the listener is still listening");
            got.push(notice);
        }
        assert_eq!(got, ["one", r#"{"two": 2}"#]);
    }
    let too_big = "x".repeat(octo::store::MAX_NOTICE_BYTES + 1);
    assert!(
        store.publish_notice(&too_big).await.is_err(),
        "a notice over the limit is refused, not truncated"
    );
}

// ---- schedule runs and their runners ----

fn run_by(schedule_id: &str, runner: &str, status: RunStatus) -> ScheduleRun {
    let mut run = ScheduleRun::new(schedule_id, RunTrigger::Manual, Timestamp(5));
    run.runner = runner.into();
    run.status = status;
    run
}

fn run_delivery() -> OutboxDelivery {
    let endpoint = WebhookEndpoint {
        url: "https://example.com/runs".into(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
    };
    OutboxDelivery::new(&endpoint, "schedule_run.finished", &serde_json::json!({}))
}

fn run_ids(runs: &[ScheduleRun]) -> Vec<&str> {
    runs.iter().map(|r| r.id.as_str()).collect()
}

async fn schedule_runs_are_written_by_their_runner_and_taken_over_from_dead_ones(f: Fixture) {
    let store = &*f.store;
    let s = schedule(Some(10), true);
    store.create_schedule(&s).await.expect("schedule");
    store
        .register_server("alive", "http://alive")
        .await
        .expect("register");
    // Oldest first: a run from before runners (''), one of a server that is gone (never
    // registered here), one of a live server, one of "me", and a finished one.
    let legacy = run_by(&s.id, "", RunStatus::Pending);
    let gone = run_by(&s.id, "gone", RunStatus::Running);
    let alive = run_by(&s.id, "alive", RunStatus::Running);
    let mine = run_by(&s.id, "me", RunStatus::Running);
    let done = run_by(&s.id, "gone", RunStatus::Succeeded);
    for run in [&legacy, &gone, &alive, &mine, &done] {
        store.insert_run(run).await.expect("insert run");
    }
    assert_eq!(
        store
            .get_run(&s.id, &gone.id)
            .await
            .expect("get")
            .expect("run")
            .runner,
        "gone",
        "the runner is stored"
    );

    let taken = store
        .take_orphaned_runs("me", LIVE, 10)
        .await
        .expect("take over");
    assert_eq!(
        run_ids(&taken),
        [legacy.id.as_str(), gone.id.as_str()],
        "unfinished runs of dead runners only, oldest first"
    );
    assert!(taken.iter().all(|r| r.runner == "me"), "{taken:?}");
    assert!(
        store
            .take_orphaned_runs("me", LIVE, 10)
            .await
            .expect("again")
            .is_empty(),
        "taken runs are the taker's own"
    );

    // The old runner is back (it was only paused): its write is refused, with its
    // webhook, and the run is as the new runner has it.
    let mut late = gone.clone();
    late.status = RunStatus::Failed;
    let d = run_delivery();
    let err = store
        .update_run_with(&late, std::slice::from_ref(&d))
        .await
        .expect_err("a stale runner's write");
    assert_eq!(err.reason(), "RUN_TAKEN_OVER", "{err:?}");
    assert_eq!(store.get_delivery(&d.id).await.expect("get delivery"), None);
    let stored = store
        .get_run(&s.id, &gone.id)
        .await
        .expect("get")
        .expect("run");
    assert_eq!(
        (stored.status, stored.runner.as_str()),
        (RunStatus::Running, "me")
    );
    // The new runner writes.
    let mut settled = stored;
    settled.status = RunStatus::Failed;
    settled.error = "the server stopped".into();
    store
        .update_run_with(&settled, std::slice::from_ref(&d))
        .await
        .expect("the runner's write");
    assert_eq!(
        store.get_run(&s.id, &gone.id).await.expect("get"),
        Some(settled)
    );
    assert!(store.get_delivery(&d.id).await.expect("get").is_some());

    // With no heartbeat counted as recent (TTL 0) every other runner is dead: "alive"'s
    // run and "me"'s are taken, at most `limit`, oldest first.
    let taken = store
        .take_orphaned_runs("other", EXPIRED, 2)
        .await
        .expect("take with TTL 0");
    assert_eq!(run_ids(&taken), [legacy.id.as_str(), alive.id.as_str()]);
    let taken = store
        .take_orphaned_runs("other", EXPIRED, 10)
        .await
        .expect("the rest");
    assert_eq!(run_ids(&taken), [mine.id.as_str()]);

    // A run gone with its schedule: the final write is no error and its webhook goes out.
    store.delete_schedule(&s.id).await.expect("delete schedule");
    let mut orphan = mine.clone();
    orphan.runner = "other".into();
    orphan.status = RunStatus::Succeeded;
    let d = run_delivery();
    store
        .update_run_with(&orphan, std::slice::from_ref(&d))
        .await
        .expect("a deleted run's final write");
    assert!(store.get_delivery(&d.id).await.expect("get").is_some());
}

async fn servers_taking_over_runs_at_once_get_disjoint_sets(f: Fixture) {
    let s = schedule(Some(10), true);
    f.store.create_schedule(&s).await.expect("schedule");
    let mut all: Vec<String> = Vec::new();
    for _ in 0..20 {
        let run = run_by(&s.id, "gone", RunStatus::Running);
        f.store.insert_run(&run).await.expect("insert");
        all.push(run.id);
    }
    all.sort();
    // Two live servers: once one has taken a run, it is not the other's to take.
    for server in ["a", "b"] {
        let address = format!("http://{server}");
        f.store
            .register_server(server, &address)
            .await
            .expect("register");
    }
    let other = f.open_again().await;
    let (a, b) = tokio::join!(
        f.store.take_orphaned_runs("a", LIVE, 100),
        other.take_orphaned_runs("b", LIVE, 100)
    );
    let (a, b) = (a.expect("a takes"), b.expect("b takes"));
    let mut taken: Vec<String> = a.iter().chain(&b).map(|r| r.id.clone()).collect();
    taken.sort();
    assert_eq!(
        taken,
        all,
        "every run taken once: a {} b {}",
        a.len(),
        b.len()
    );
    for run in &a {
        let stored = f.store.get_run(&s.id, &run.id).await.expect("get");
        assert_eq!(stored.expect("run").runner, "a");
    }
}
