//! Store conformance for profiles, on every backend: every field round-trips, exactly one
//! default while any profile exists (first is default, a new default clears the old,
//! deleting the default promotes the oldest, the default cannot be cleared), updates are
//! compare-and-swap, and a session keeps the profile it was created from.

use crate::common;

use common::store::{Fixture, conformance, session};
use octo::domain::{Error, PermissionMode, ReasoningEffort, Timestamp, profile::Profile};

conformance!(
    profiles_round_trip_every_field,
    profiles_keep_exactly_one_default,
    profile_update_is_compare_and_swap,
    sessions_record_their_profile,
);

fn profile(id: &str, created: i64) -> Profile {
    Profile {
        display_name: format!("profile {id}"),
        system_prompt: "You review code. ✓".into(),
        model: Some("gpt".into()),
        reasoning_effort: ReasoningEffort::High,
        permission_mode: Some(PermissionMode::ReadOnly),
        mcp_servers: Some(vec!["git".into()]),
        working_dir_template: "reviews/{date}/{session}".into(),
        create_time: Timestamp(created),
        update_time: Timestamp(created),
        ..Profile::new(id)
    }
}

fn defaults(profiles: &[Profile]) -> Vec<&str> {
    profiles
        .iter()
        .filter(|p| p.is_default)
        .map(|p| p.id.as_str())
        .collect()
}

async fn profiles_round_trip_every_field(f: Fixture) {
    let store = f.store.as_ref();
    assert!(store.list_profiles().await.expect("empty").is_empty());
    assert_eq!(store.default_profile().await.expect("none"), None);
    let full = profile("reviewer", 10);
    let mut bare = Profile::new("bare");
    bare.create_time = Timestamp(20);
    bare.update_time = Timestamp(20);
    let stored = store.create_profile(&full).await.expect("create");
    assert!(stored.is_default, "the first profile becomes the default");
    store.create_profile(&bare).await.expect("create bare");
    assert!(matches!(
        store.create_profile(&bare).await,
        Err(Error::AlreadyExists { .. })
    ));

    // Every field as stored, after a reopen too; unset fields stay unset.
    let again = f.open_again().await;
    let listed = again.list_profiles().await.expect("list");
    assert_eq!(listed, [stored.clone(), bare.clone()]);
    assert_eq!(
        again.get_profile("bare").await.expect("get"),
        Some(bare.clone())
    );
    assert_eq!(again.get_profile("nope").await.expect("get"), None);
    assert_eq!(
        again.default_profile().await.expect("default"),
        Some(stored)
    );
}

async fn profiles_keep_exactly_one_default(f: Fixture) {
    let store = f.store.as_ref();
    store.create_profile(&profile("a", 1)).await.expect("a");
    store.create_profile(&profile("b", 2)).await.expect("b");
    let mut c = profile("c", 3);
    c.is_default = true;
    store.create_profile(&c).await.expect("c");
    assert_eq!(defaults(&store.list_profiles().await.expect("list")), ["c"]);

    // Making another the default clears the old one.
    let mut b = store.get_profile("b").await.expect("get").expect("b");
    b.is_default = true;
    b.revision += 1;
    store
        .update_profile(&b, b.revision - 1)
        .await
        .expect("update")
        .expect("not stale");
    let listed = store.list_profiles().await.expect("list");
    assert_eq!(defaults(&listed), ["b"]);
    assert_eq!(listed[0].id, "b", "the default lists first");
    // The old default's revision moved on: a write with its old etag is stale.
    let stale_c = store.get_profile("c").await.expect("get").expect("c");
    assert_eq!(stale_c.revision, 2);

    // The default cannot be cleared by an update.
    let mut cleared = store.get_profile("b").await.expect("get").expect("b");
    cleared.is_default = false;
    cleared.revision += 1;
    assert!(matches!(
        store.update_profile(&cleared, cleared.revision - 1).await,
        Err(Error::FailedPrecondition {
            reason: "DEFAULT_PROFILE_REQUIRED",
            ..
        })
    ));

    // Deleting the default promotes the oldest remaining one; the last leaves none.
    assert_eq!(
        store.delete_profile("b", None).await.expect("delete b"),
        Some("a".to_owned())
    );
    assert_eq!(
        store
            .default_profile()
            .await
            .expect("default")
            .map(|p| p.id),
        Some("a".to_owned())
    );
    assert!(matches!(
        store.delete_profile("c", Some(99)).await,
        Err(Error::EtagMismatch { .. })
    ));
    assert_eq!(store.delete_profile("c", Some(2)).await.expect("c"), None);
    assert_eq!(store.delete_profile("a", None).await.expect("a"), None);
    assert!(matches!(
        store.delete_profile("a", None).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.default_profile().await.expect("none"), None);
}

async fn profile_update_is_compare_and_swap(f: Fixture) {
    let store = f.store.as_ref();
    let created = store.create_profile(&profile("p", 1)).await.expect("p");
    let mut changed = created.clone();
    changed.system_prompt = "Be terse.".into();
    changed.permission_mode = None;
    changed.mcp_servers = None;
    changed.revision = 2;
    let stored = store
        .update_profile(&changed, 1)
        .await
        .expect("update")
        .expect("current");
    assert_eq!(stored, changed);
    assert_eq!(
        store.update_profile(&changed, 1).await.expect("stale"),
        None,
        "an old revision changes nothing"
    );
    assert_eq!(
        store.get_profile("p").await.expect("get"),
        Some(changed.clone())
    );
    let mut gone = changed.clone();
    gone.id = "gone".into();
    assert!(matches!(
        store.update_profile(&gone, 2).await,
        Err(Error::NotFound { .. })
    ));
}

async fn sessions_record_their_profile(f: Fixture) {
    let store = f.store.as_ref();
    let mut from_profile = session("from a profile", false, 1);
    from_profile.profile = Some("reviewer".into());
    let plain = session("plain", false, 2);
    store.create_session(&from_profile).await.expect("create");
    store.create_session(&plain).await.expect("create");
    let again = f.open_again().await;
    let read = again
        .get_session(&from_profile.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read.profile.as_deref(), Some("reviewer"));
    assert_eq!(read, from_profile);
    let read = again
        .get_session(&plain.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read.profile, None);
    // Updates keep it (it is set at creation only), as does the list.
    let mut renamed = read_back(store, &from_profile.id).await;
    renamed.display_name = "renamed".into();
    renamed.revision += 1;
    assert!(
        store
            .update_session(&renamed, renamed.revision - 1)
            .await
            .expect("update")
    );
    assert_eq!(
        read_back(store, &from_profile.id).await.profile.as_deref(),
        Some("reviewer")
    );
}

async fn read_back(store: &dyn octo::store::Store, id: &str) -> octo::domain::Session {
    store.get_session(id).await.expect("get").expect("exists")
}
