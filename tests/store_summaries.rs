//! Store conformance for context summaries (compaction), on every backend: one per
//! session, replaced whole, fenced like every owner write, deleted with the session.

use std::time::Duration;

use crate::common;

use common::store::{Fixture, conformance, created};
use octo::domain::{Error, Timestamp, cluster::Fence, summary::Summary};

conformance!(
    a_summary_round_trips_and_is_replaced_whole,
    a_stale_fence_writes_no_summary,
    a_summary_goes_with_its_session,
);

fn summary(session_id: &str, through: i64, text: &str) -> Summary {
    Summary {
        session_id: session_id.to_owned(),
        through_position: through,
        text: text.to_owned(),
        replaced_messages: through as u32 + 1,
        tokens_before: 9_000,
        tokens_after: 1_200,
        model: "mock".to_owned(),
        create_time: Timestamp(42),
    }
}

async fn a_summary_round_trips_and_is_replaced_whole(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "compacted").await;
    let other = created(store, "other").await;
    assert_eq!(store.get_summary(&s.id).await.expect("get"), None);

    let first = summary(&s.id, 5, "the user wants a parser; decided on nom");
    store.put_summary(&first, Fence::NONE).await.expect("put");
    assert_eq!(store.get_summary(&s.id).await.expect("get"), Some(first));

    let second = summary(&s.id, 12, "parser done; tests pass; next: docs ✓");
    store
        .put_summary(&second, Fence::NONE)
        .await
        .expect("put again");
    assert_eq!(
        store.get_summary(&s.id).await.expect("get"),
        Some(second.clone())
    );
    // Per session: the other one has none, and a reopened store reads the same.
    assert_eq!(store.get_summary(&other.id).await.expect("get"), None);
    let again = f.open_again().await;
    assert_eq!(again.get_summary(&s.id).await.expect("get"), Some(second));
}

async fn a_stale_fence_writes_no_summary(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "fenced").await;
    // No lease: any fence is stale.
    assert!(matches!(
        store.put_summary(&summary(&s.id, 1, "x"), Fence(1)).await,
        Err(Error::Unavailable {
            reason: "LEASE_LOST",
            ..
        })
    ));
    let old = store
        .acquire_lease(&s.id, "a", Duration::ZERO)
        .await
        .expect("lease");
    let kept = summary(&s.id, 3, "written by the owner");
    store
        .put_summary(&kept, Fence(old.epoch))
        .await
        .expect("owner writes");
    let current = store
        .acquire_lease(&s.id, "b", Duration::from_secs(600))
        .await
        .expect("taken over");
    assert!(current.epoch > old.epoch);
    assert!(matches!(
        store
            .put_summary(&summary(&s.id, 9, "late"), Fence(old.epoch))
            .await,
        Err(Error::Unavailable {
            reason: "LEASE_LOST",
            ..
        })
    ));
    assert_eq!(store.get_summary(&s.id).await.expect("get"), Some(kept));
}

async fn a_summary_goes_with_its_session(f: Fixture) {
    let store = f.store.as_ref();
    let s = created(store, "deleted").await;
    store
        .put_summary(&summary(&s.id, 2, "gone soon"), Fence::NONE)
        .await
        .expect("put");
    assert!(store.delete_session(&s.id).await.expect("delete"));
    assert_eq!(store.get_summary(&s.id).await.expect("get"), None);
}
