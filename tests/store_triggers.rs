//! Store conformance for triggers, on every backend: triggers round-trip (the secret
//! included) with compare-and-swap updates; a delivery's replay key is claimed once
//! (also by two handles at once), a failed one may be claimed again, a started one
//! never; the log pages newest first, keeps the newest deliveries, and goes with its
//! trigger.

use crate::common;

use std::sync::Arc;

use common::store::{Fixture, conformance};
use octo::{
    domain::{
        Error, Timestamp, new_id,
        trigger::{
            DeliveryClaim, KEPT_DELIVERIES, SignatureScheme, Trigger, TriggerDelivery,
            TriggerDeliveryStatus,
        },
    },
    store::Store,
};

conformance!(
    triggers_round_trip_with_their_secret_and_compare_and_swap,
    a_replay_key_is_claimed_once_and_a_failed_one_again,
    two_handles_claiming_one_call_get_one_claim,
    the_delivery_log_pages_newest_first_keeps_the_newest_and_goes_with_its_trigger,
);

fn trigger(id: &str) -> Trigger {
    let mut t = Trigger::new(id, "whsec_dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==");
    t.display_name = format!("trigger {id} ✓");
    t.profile = Some("triage".into());
    t.prompt_template = "New: {{payload.title}}".into();
    t.create_time = Timestamp(10);
    t.update_time = Timestamp(10);
    t
}

fn delivery(trigger: &str, key: &str) -> TriggerDelivery {
    TriggerDelivery {
        id: new_id(),
        trigger_id: trigger.into(),
        replay_key: key.into(),
        message_id: key.into(),
        event: "issue.opened".into(),
        status: TriggerDeliveryStatus::Received,
        receive_time: Timestamp(100),
        payload_bytes: 42,
        attempts: 0,
        session_id: None,
        turn_id: None,
        error: String::new(),
    }
}

#[track_caller]
fn claimed_of(claim: DeliveryClaim) -> TriggerDelivery {
    match claim {
        DeliveryClaim::Claimed(delivery) => delivery,
        DeliveryClaim::Replayed(earlier) => panic!("a replay of {earlier:?}"),
    }
}

async fn triggers_round_trip_with_their_secret_and_compare_and_swap(f: Fixture) {
    let store = &*f.store;
    assert!(store.list_triggers().await.expect("empty").is_empty());
    let mut github = trigger("gh");
    github.scheme = SignatureScheme::GitHub;
    github.secret = "a-github-secret-of-length".into();
    github.profile = None;
    github.session = Some(new_id());
    github.enabled = false;
    store
        .create_trigger(&trigger("issues"))
        .await
        .expect("create");
    store.create_trigger(&github).await.expect("create");
    assert!(matches!(
        store.create_trigger(&github).await,
        Err(Error::AlreadyExists { .. })
    ));
    let again = f.open_again().await;
    assert_eq!(
        again.list_triggers().await.expect("list"),
        [github.clone(), trigger("issues")]
    );
    assert_eq!(
        again.get_trigger("gh").await.expect("get"),
        Some(github.clone())
    );
    assert_eq!(again.get_trigger("nope").await.expect("get"), None);

    let mut changed = github.clone();
    changed.secret = "another-github-secret-0123".into();
    changed.revision = 2;
    assert!(store.update_trigger(&changed, 1).await.expect("update"));
    assert!(!store.update_trigger(&changed, 1).await.expect("stale"));
    assert_eq!(store.get_trigger("gh").await.expect("get"), Some(changed));
    assert!(store.delete_trigger("gh").await.expect("delete"));
    assert!(!store.delete_trigger("gh").await.expect("again"));
}

async fn a_replay_key_is_claimed_once_and_a_failed_one_again(f: Fixture) {
    let store = &*f.store;
    store.create_trigger(&trigger("t")).await.expect("trigger");
    store.create_trigger(&trigger("u")).await.expect("trigger");
    let first = delivery("t", "msg_1");
    let claimed = claimed_of(store.claim_delivery(&first).await.expect("claim"));
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.status, TriggerDeliveryStatus::Received);
    assert_eq!(claimed.id, first.id);
    // Received (being handled): a replay, naming the earlier record.
    assert_eq!(
        store
            .claim_delivery(&delivery("t", "msg_1"))
            .await
            .expect("replay"),
        DeliveryClaim::Replayed(claimed.clone())
    );
    // The same key on another trigger is another call.
    assert!(matches!(
        store
            .claim_delivery(&delivery("u", "msg_1"))
            .await
            .expect("other"),
        DeliveryClaim::Claimed(_)
    ));

    // Failed: claimable again, under the same record.
    let mut failed = claimed.clone();
    failed.status = TriggerDeliveryStatus::Failed;
    failed.error = "the session is in the trash".into();
    store.finish_delivery(&failed).await.expect("finish");
    let mut retry = delivery("t", "msg_1");
    retry.receive_time = Timestamp(200);
    retry.payload_bytes = 7;
    let reclaimed = claimed_of(store.claim_delivery(&retry).await.expect("retry"));
    assert_eq!(reclaimed.id, first.id, "the record is reused");
    assert_eq!(reclaimed.attempts, 2);
    assert_eq!(reclaimed.receive_time, Timestamp(200));
    assert_eq!(reclaimed.payload_bytes, 7);
    assert_eq!(reclaimed.error, "");

    // Started: never again.
    let mut started = reclaimed.clone();
    started.status = TriggerDeliveryStatus::Started;
    started.session_id = Some("s".into());
    started.turn_id = Some("t1".into());
    store.finish_delivery(&started).await.expect("finish");
    assert_eq!(
        store
            .claim_delivery(&delivery("t", "msg_1"))
            .await
            .expect("replay"),
        DeliveryClaim::Replayed(started.clone())
    );
    let log = store
        .list_trigger_deliveries("t", None, 10)
        .await
        .expect("log");
    assert_eq!(log, [started]);

    assert!(matches!(
        store.claim_delivery(&delivery("gone", "msg_1")).await,
        Err(Error::NotFound { .. })
    ));
}

async fn two_handles_claiming_one_call_get_one_claim(f: Fixture) {
    store_with_trigger(&*f.store).await;
    let other = f.open_again().await;
    for round in 0..10 {
        let key = format!("msg_{round}");
        let (first, second) = (delivery("t", &key), delivery("t", &key));
        let (a, b) = tokio::join!(
            f.store.claim_delivery(&first),
            other.claim_delivery(&second),
        );
        let claims = [a.expect("a"), b.expect("b")];
        assert_eq!(
            claims
                .iter()
                .filter(|c| matches!(c, DeliveryClaim::Claimed(_)))
                .count(),
            1,
            "round {round}: exactly one claim"
        );
    }
}

async fn store_with_trigger(store: &dyn Store) {
    store.create_trigger(&trigger("t")).await.expect("trigger");
}

async fn the_delivery_log_pages_newest_first_keeps_the_newest_and_goes_with_its_trigger(
    f: Fixture,
) {
    let store: Arc<dyn Store> = f.store.clone();
    store_with_trigger(&*store).await;
    let mut ids = Vec::new();
    for i in 0..KEPT_DELIVERIES + 3 {
        let d = delivery("t", &format!("msg_{i}"));
        ids.push(d.id.clone());
        claimed_of(store.claim_delivery(&d).await.expect("claim"));
    }
    // The oldest three were dropped; the newest are kept, newest first.
    let page = store
        .list_trigger_deliveries("t", None, 2)
        .await
        .expect("page");
    let newest: Vec<&str> = page.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        newest,
        [ids[ids.len() - 1].as_str(), ids[ids.len() - 2].as_str()]
    );
    let next = store
        .list_trigger_deliveries("t", Some(&page[1].id), 1)
        .await
        .expect("next page");
    assert_eq!(next[0].id, ids[ids.len() - 3]);
    let all = store
        .list_trigger_deliveries("t", None, KEPT_DELIVERIES + 10)
        .await
        .expect("all");
    assert_eq!(all.len(), KEPT_DELIVERIES);
    assert_eq!(all.last().map(|d| d.id.as_str()), Some(ids[3].as_str()));

    assert!(store.delete_trigger("t").await.expect("delete"));
    assert!(
        store
            .list_trigger_deliveries("t", None, 10)
            .await
            .expect("log")
            .is_empty()
    );
}
