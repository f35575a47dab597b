//! The conformance cases of `OutboxStore` on every backend (the shared `conformance!`
//! macro and fixtures of `common/store.rs`): deliveries stored in the transaction of
//! the turn or run that causes them (a stale fence stores neither), claims (due rows
//! only, a claim hides a row until it expires, concurrent claimers on separate handles
//! get disjoint rows), recorded attempts (only under one's own claim), dead-lettering,
//! an operator's retry, listing by state with pages, and the counts by state.
//!
//! Claims never wait for time to pass: every call takes `now`, so the tests move it.

use crate::common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use common::store::{Fixture, conformance, created, turn};
use octo::{
    domain::{
        Error, Timestamp, TurnStatus,
        cluster::Fence,
        new_id,
        outbox::{AttemptOutcome, DeliveryCounts, DeliveryState, OutboxDelivery, WebhookEndpoint},
        schedule::{RunStatus, RunTrigger, Schedule, ScheduleRun},
    },
    store::Store,
};

conformance!(
    a_delivery_is_stored_with_its_turn_and_a_stale_fence_stores_neither,
    a_delivery_is_stored_with_its_runs_final_update,
    a_skipped_runs_deliveries_are_stored_with_its_claim_only_when_it_claims,
    claims_take_due_rows_and_hide_them_until_recorded_or_expired,
    concurrent_claimers_never_get_the_same_delivery,
    attempts_are_recorded_only_under_ones_own_claim,
    a_delivery_is_dead_after_its_budget_and_an_operator_retries_it,
    deliveries_list_by_state_newest_first_in_pages_and_are_counted,
);

const LEASE: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn delivery(url: &str) -> OutboxDelivery {
    let endpoint = WebhookEndpoint {
        url: url.into(),
        secret: SECRET.into(),
    };
    OutboxDelivery::new(&endpoint, "turn.finished", &serde_json::json!({"n": url}))
}

/// A delivery due at `at`.
fn due_at(url: &str, at: i64) -> OutboxDelivery {
    let mut d = delivery(url);
    d.next_attempt_time = Timestamp(at);
    d
}

fn ids(deliveries: &[OutboxDelivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.id.clone()).collect()
}

async fn get(store: &dyn Store, id: &str) -> OutboxDelivery {
    store.get_delivery(id).await.expect("get").expect("stored")
}

async fn a_delivery_is_stored_with_its_turn_and_a_stale_fence_stores_neither(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "outbox").await;
    let fence = Fence(
        store
            .acquire_lease(&s.id, "a", Duration::ZERO)
            .await
            .expect("lease")
            .epoch,
    );
    let mut t = turn(&s, TurnStatus::Running, 1);
    store.put_turn(&t, fence).await.expect("running");

    // Another server takes the expired lease: the old fence is stale, and the terminal
    // write with its delivery stores neither.
    store
        .acquire_lease(&s.id, "b", LEASE)
        .await
        .expect("take over");
    t.status = TurnStatus::Succeeded;
    let lost = delivery("https://example.com/lost");
    let err = store
        .put_turn_with(&t, fence, std::slice::from_ref(&lost))
        .await
        .expect_err("stale fence");
    assert_eq!(err.reason(), "LEASE_LOST");
    assert_eq!(store.get_delivery(&lost.id).await.expect("get"), None);
    let stored = store
        .get_turn(&s.id, &t.id)
        .await
        .expect("get")
        .expect("turn");
    assert_eq!(stored.status, TurnStatus::Running);

    // With the current fence both are stored, as given.
    let current = Fence(
        store
            .get_lease(&s.id)
            .await
            .expect("lease")
            .expect("some")
            .epoch,
    );
    let sent = delivery("https://example.com/hook");
    store
        .put_turn_with(&t, current, std::slice::from_ref(&sent))
        .await
        .expect("finish");
    assert_eq!(get(store, &sent.id).await, sent);
    let stored = store
        .get_turn(&s.id, &t.id)
        .await
        .expect("get")
        .expect("turn");
    assert_eq!(stored.status, TurnStatus::Succeeded);

    // A failing insert (a duplicate id) rolls the turn write back too.
    let mut again = t.clone();
    again.id = new_id();
    again.status = TurnStatus::Failed;
    let err = store
        .put_turn_with(&again, current, std::slice::from_ref(&sent))
        .await
        .expect_err("duplicate delivery");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(store.get_turn(&s.id, &again.id).await.expect("get"), None);
}

async fn a_delivery_is_stored_with_its_runs_final_update(f: Fixture) {
    let store = f.store.as_ref();
    let schedule = Schedule {
        id: new_id(),
        cron: "0 3 * * *".into(),
        prompt: "p".into(),
        time_zone: "UTC".into(),
        ..Schedule::default()
    };
    store.create_schedule(&schedule).await.expect("schedule");
    let mut run = ScheduleRun::new(&schedule.id, RunTrigger::Manual, Timestamp(5));
    store.insert_run(&run).await.expect("run");
    run.status = RunStatus::Succeeded;
    run.end_time = Some(Timestamp(9));
    let d = delivery("https://example.com/run");
    store
        .update_run_with(&run, std::slice::from_ref(&d))
        .await
        .expect("settle");
    assert_eq!(get(store, &d.id).await, d);
    let stored = store
        .get_run(&schedule.id, &run.id)
        .await
        .expect("get")
        .expect("run");
    assert_eq!(stored.status, RunStatus::Succeeded);
}

async fn a_skipped_runs_deliveries_are_stored_with_its_claim_only_when_it_claims(f: Fixture) {
    let store = f.store.as_ref();
    let schedule = Schedule {
        id: new_id(),
        cron: "0 3 * * *".into(),
        prompt: "p".into(),
        time_zone: "UTC".into(),
        enabled: true,
        next_run_time: Some(Timestamp(100)),
        ..Schedule::default()
    };
    store.create_schedule(&schedule).await.expect("schedule");
    let mut run = ScheduleRun::new(&schedule.id, RunTrigger::Cron, Timestamp(100));
    run.status = RunStatus::Skipped;
    let first = delivery("https://example.com/first");
    assert!(
        store
            .claim_fire_time_with(&run, Timestamp(100), None, std::slice::from_ref(&first))
            .await
            .expect("claim")
    );
    assert_eq!(get(store, &first.id).await, first);
    // The same fire time again (another server): not claimed, nothing stored.
    let mut again = ScheduleRun::new(&schedule.id, RunTrigger::Cron, Timestamp(100));
    again.status = RunStatus::Skipped;
    let second = delivery("https://example.com/second");
    assert!(
        !store
            .claim_fire_time_with(&again, Timestamp(100), None, std::slice::from_ref(&second))
            .await
            .expect("claim again")
    );
    assert_eq!(store.get_delivery(&second.id).await.expect("get"), None);
}

async fn claims_take_due_rows_and_hide_them_until_recorded_or_expired(f: Fixture) {
    let store = f.store.as_ref();
    let early = due_at("https://example.com/1", 100);
    let later = due_at("https://example.com/2", 200);
    let future = due_at("https://example.com/3", 1_000_000_000_000_000);
    store
        .insert_deliveries(&[future.clone(), later.clone(), early.clone()])
        .await
        .expect("insert");

    // Due ones only, oldest due first, at most the limit.
    let claimed = store
        .claim_due_deliveries(Timestamp(300), "a", 1, LEASE)
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), std::slice::from_ref(&early.id));
    assert_eq!(claimed[0].claimed_by, "a");
    assert_eq!(claimed[0].next_attempt_time, Timestamp(300).plus(LEASE));
    let claimed = store
        .claim_due_deliveries(Timestamp(300), "b", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), std::slice::from_ref(&later.id));
    // Both are claimed: nothing more is due now.
    assert!(
        store
            .claim_due_deliveries(Timestamp(400), "c", 10, LEASE)
            .await
            .expect("claim")
            .is_empty()
    );

    // a records its attempt (a retry); b dies without recording: its claim expires.
    let retry_at = Timestamp(300).plus(LEASE).plus(Duration::from_secs(1));
    assert!(
        store
            .record_attempt(
                &early.id,
                "a",
                Timestamp(350),
                &AttemptOutcome::Retry {
                    at: retry_at,
                    error: "503".into()
                }
            )
            .await
            .expect("record")
    );
    let after_lease = Timestamp(300).plus(LEASE);
    let claimed = store
        .claim_due_deliveries(after_lease, "c", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(
        ids(&claimed),
        std::slice::from_ref(&later.id),
        "b's claim expired"
    );
    let retried = store
        .claim_due_deliveries(retry_at, "c", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(ids(&retried), std::slice::from_ref(&early.id));
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].last_error, "503");
}

async fn concurrent_claimers_never_get_the_same_delivery(f: Fixture) {
    const N: usize = 200;
    let deliveries: Vec<OutboxDelivery> = (0..N)
        .map(|i| due_at(&format!("https://example.com/{i}"), 1))
        .collect();
    f.store
        .insert_deliveries(&deliveries)
        .await
        .expect("insert");
    // Four handles (four servers' pools), each claiming small batches until none is left.
    let mut handles = Vec::new();
    for claimer in 0..4 {
        let store: Arc<dyn Store> = if claimer == 0 {
            f.store.clone()
        } else {
            f.open_again().await
        };
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claimed = store
                    .claim_due_deliveries(Timestamp(10), &format!("server-{claimer}"), 7, LEASE)
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    return got;
                }
                got.extend(ids(&claimed));
            }
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("claimer"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), N, "every delivery claimed exactly once");
    assert_eq!(distinct.len(), N);
}

async fn attempts_are_recorded_only_under_ones_own_claim(f: Fixture) {
    let store = f.store.as_ref();
    let d = due_at("https://example.com/x", 1);
    store
        .insert_deliveries(std::slice::from_ref(&d))
        .await
        .expect("insert");
    // Not claimed: nobody records.
    assert!(
        !store
            .record_attempt(&d.id, "a", Timestamp(2), &AttemptOutcome::Delivered)
            .await
            .expect("record")
    );
    store
        .claim_due_deliveries(Timestamp(2), "a", 1, Duration::ZERO)
        .await
        .expect("claim a");
    // a's claim (of no length) expired: b takes it; a's late record is refused.
    store
        .claim_due_deliveries(Timestamp(3), "b", 1, LEASE)
        .await
        .expect("claim b");
    assert!(
        !store
            .record_attempt(&d.id, "a", Timestamp(4), &AttemptOutcome::Delivered)
            .await
            .expect("record a")
    );
    assert!(
        store
            .record_attempt(&d.id, "b", Timestamp(5), &AttemptOutcome::Delivered)
            .await
            .expect("record b")
    );
    let stored = get(store, &d.id).await;
    assert_eq!(stored.state, DeliveryState::Delivered);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.claimed_by, "");
    assert_eq!(stored.update_time, Timestamp(5));
    // Delivered is final: not claimable, not retryable.
    assert!(
        store
            .claim_due_deliveries(Timestamp(i64::MAX / 2), "c", 10, LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
    let err = store
        .retry_delivery(&d.id, Timestamp(6))
        .await
        .expect_err("delivered");
    assert_eq!(err.reason(), "WEBHOOK_DELIVERED");
    let err = store
        .retry_delivery("msg_missing", Timestamp(6))
        .await
        .expect_err("missing");
    assert_eq!(err.reason(), "WEBHOOK_DELIVERY_NOT_FOUND");
}

async fn a_delivery_is_dead_after_its_budget_and_an_operator_retries_it(f: Fixture) {
    let store = f.store.as_ref();
    let d = due_at("https://example.com/down", 1);
    store
        .insert_deliveries(std::slice::from_ref(&d))
        .await
        .expect("insert");
    // Three attempts: two retries, then the worker's budget is spent and it records Dead.
    let mut now = 10;
    for attempt in 1..=3 {
        let claimed = store
            .claim_due_deliveries(Timestamp(now), "w", 10, LEASE)
            .await
            .expect("claim");
        assert_eq!(
            ids(&claimed),
            std::slice::from_ref(&d.id),
            "attempt {attempt}"
        );
        let outcome = if attempt < 3 {
            AttemptOutcome::Retry {
                at: Timestamp(now + 5),
                error: format!("refused {attempt}"),
            }
        } else {
            AttemptOutcome::Dead {
                error: "refused 3; none left".into(),
            }
        };
        assert!(
            store
                .record_attempt(&d.id, "w", Timestamp(now + 1), &outcome)
                .await
                .expect("record")
        );
        now += 5;
    }
    let dead = get(store, &d.id).await;
    assert_eq!(dead.state, DeliveryState::Dead);
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error, "refused 3; none left");
    // Dead is never claimed.
    assert!(
        store
            .claim_due_deliveries(Timestamp(i64::MAX / 2), "w", 10, LEASE)
            .await
            .expect("claim")
            .is_empty()
    );

    // The operator's retry: pending, a fresh budget, due at once; the last error kept.
    let retried = store
        .retry_delivery(&d.id, Timestamp(1000))
        .await
        .expect("retry");
    assert_eq!(retried.state, DeliveryState::Pending);
    assert_eq!(retried.attempts, 0);
    assert_eq!(retried.next_attempt_time, Timestamp(1000));
    assert_eq!(retried.last_error, "refused 3; none left");
    let claimed = store
        .claim_due_deliveries(Timestamp(1000), "w", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), std::slice::from_ref(&d.id));
    // Retrying a pending delivery under a live claim changes nothing.
    let same = store
        .retry_delivery(&d.id, Timestamp(1001))
        .await
        .expect("retry pending");
    assert_eq!(same.claimed_by, "w");
    assert_eq!(same.next_attempt_time, Timestamp(1000).plus(LEASE));
}

async fn deliveries_list_by_state_newest_first_in_pages_and_are_counted(f: Fixture) {
    let store = f.store.as_ref();
    assert_eq!(
        store.delivery_counts().await.expect("counts"),
        DeliveryCounts::default()
    );
    let all: Vec<OutboxDelivery> = (0..5)
        .map(|i| due_at(&format!("https://example.com/{i}"), 1))
        .collect();
    store.insert_deliveries(&all).await.expect("insert");
    // Make the oldest delivered and the second dead.
    store
        .claim_due_deliveries(Timestamp(2), "w", 2, LEASE)
        .await
        .expect("claim");
    store
        .record_attempt(&all[0].id, "w", Timestamp(3), &AttemptOutcome::Delivered)
        .await
        .expect("delivered");
    store
        .record_attempt(
            &all[1].id,
            "w",
            Timestamp(3),
            &AttemptOutcome::Dead {
                error: "410 Gone".into(),
            },
        )
        .await
        .expect("dead");

    let newest_first: Vec<String> = all.iter().rev().map(|d| d.id.clone()).collect();
    let listed = store.list_deliveries(None, None, 10).await.expect("list");
    assert_eq!(ids(&listed), newest_first);
    let page = store.list_deliveries(None, None, 2).await.expect("page 1");
    assert_eq!(ids(&page), newest_first[..2]);
    let page = store
        .list_deliveries(None, Some(&page[1].id), 2)
        .await
        .expect("page 2");
    assert_eq!(ids(&page), newest_first[2..4]);
    let dead = store
        .list_deliveries(Some(DeliveryState::Dead), None, 10)
        .await
        .expect("dead");
    assert_eq!(ids(&dead), std::slice::from_ref(&all[1].id));
    let pending = store
        .list_deliveries(Some(DeliveryState::Pending), None, 10)
        .await
        .expect("pending");
    assert_eq!(ids(&pending), newest_first[..3]);
    assert_eq!(
        store.delivery_counts().await.expect("counts"),
        DeliveryCounts {
            pending: 3,
            delivered: 1,
            dead: 1,
        }
    );
}
