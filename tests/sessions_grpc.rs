//! SessionService over gRPC with the generated tonic client, against a real server.

use crate::common;

use common::{TIMEOUT, TestServer, create, reason, session, violated_fields};
use futures::StreamExt;
use octo::pb;
use prost_types::FieldMask;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;

    let mut wanted = session("first");
    wanted.labels.insert("team".into(), "core".into());
    wanted.permission_mode = pb::PermissionMode::ReadOnly.into();
    wanted.working_dir = "projects/demo".into();
    wanted.source = pb::SessionSource::Manual.into();
    let created = client
        .create_session(pb::CreateSessionRequest {
            session: Some(wanted),
        })
        .await
        .expect("create")
        .into_inner();
    assert!(created.name.starts_with("sessions/"));
    assert_eq!(created.display_name, "first");
    assert_eq!(created.labels.get("team").map(String::as_str), Some("core"));
    assert_eq!(created.permission_mode(), pb::PermissionMode::ReadOnly);
    assert_eq!(created.source(), pb::SessionSource::Manual);
    assert_eq!(created.status(), pb::SessionStatus::Idle);
    let expected_dir = server
        .workspace()
        .canonicalize()
        .expect("root")
        .join("projects/demo");
    assert_eq!(created.working_dir, expected_dir.to_string_lossy());
    assert!(expected_dir.is_dir(), "working dir created");

    let got = client
        .get_session(pb::GetSessionRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, created);

    // Only masked fields change.
    let mut change = created.clone();
    change.display_name = "renamed".into();
    change.pinned = true;
    change.system_prompt = "not in the mask".into();
    let updated = client
        .update_session(pb::UpdateSessionRequest {
            session: Some(change),
            update_mask: mask(&["display_name", "pinned"]),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "renamed");
    assert!(updated.pinned);
    assert_eq!(updated.system_prompt, "");
    assert_ne!(updated.etag, created.etag);

    // A stale etag is ABORTED and changes nothing.
    let mut stale = created.clone();
    stale.display_name = "lost update".into();
    let err = client
        .update_session(pb::UpdateSessionRequest {
            session: Some(stale),
            update_mask: mask(&["display_name"]),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");

    // AIP-164: Delete moves it to the trash and returns it so; Get still finds it.
    let trashed = client
        .delete_session(pb::DeleteSessionRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(trashed.delete_time.is_some() && trashed.expire_time.is_some());
    let got = client
        .get_session(pb::GetSessionRequest {
            name: created.name.clone(),
        })
        .await
        .expect("a session in the trash is still there")
        .into_inner();
    assert_eq!(got.delete_time, trashed.delete_time);
    // AIP-164: deleting again is NOT_FOUND unless allow_missing.
    let err = client
        .delete_session(pb::DeleteSessionRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("already deleted");
    assert_eq!(err.code(), Code::NotFound);
    client
        .delete_session(pb::DeleteSessionRequest {
            name: created.name,
            allow_missing: true,
            ..Default::default()
        })
        .await
        .expect("allow_missing");
}

#[tokio::test]
async fn list_pages_filters_and_orders_pinned_first() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let mut names = Vec::new();
    for i in 0..5 {
        names.push(create(&mut client, &format!("alpha {i}")).await.name);
    }
    create(&mut client, "beta").await;
    // Pin the oldest: it must list first.
    let mut pin = session("");
    pin.name = names[0].clone();
    pin.pinned = true;
    client
        .update_session(pb::UpdateSessionRequest {
            session: Some(pin),
            update_mask: mask(&["pinned"]),
        })
        .await
        .expect("pin");

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_sessions(pb::ListSessionsRequest {
                page_size: 2,
                page_token: page_token.clone(),
                query: "ALPHA".into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.sessions.len() <= 2);
        seen.extend(page.sessions.into_iter().map(|s| s.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut expected = vec![names[0].clone()];
    expected.extend(names[1..].iter().rev().cloned());
    assert_eq!(seen, expected);

    let pinned = client
        .list_sessions(pb::ListSessionsRequest {
            pinned: Some(true),
            ..Default::default()
        })
        .await
        .expect("list pinned")
        .into_inner();
    assert_eq!(pinned.sessions.len(), 1);

    let err = client
        .list_sessions(pb::ListSessionsRequest {
            page_token: "bogus".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["page_token"]);
}

#[tokio::test]
async fn fork_export_import_keep_history() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let original = create(&mut client, "to export").await;
    let mut archive = client
        .export_session(pb::ExportSessionRequest {
            name: original.name.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    assert_eq!(archive.format_version, 1);
    assert_eq!(
        archive.session.as_ref().map(|s| s.display_name.as_str()),
        Some("to export")
    );

    // Give the archive a history, import it, and check it is all there.
    for (role, text) in [
        (pb::Role::User, "question"),
        (pb::Role::Assistant, "answer"),
    ] {
        archive.messages.push(pb::Message {
            role: role.into(),
            parts: vec![pb::Part {
                kind: Some(pb::part::Kind::Text(text.into())),
            }],
            ..Default::default()
        });
    }
    let imported = client
        .import_session(pb::ImportSessionRequest {
            archive: Some(archive),
        })
        .await
        .expect("import")
        .into_inner();
    assert_ne!(imported.name, original.name);
    assert_eq!(imported.message_count, 2);
    assert_eq!(imported.last_message_preview, "answer");

    let exported = client
        .export_session(pb::ExportSessionRequest {
            name: imported.name.clone(),
        })
        .await
        .expect("export imported")
        .into_inner();
    assert_eq!(exported.messages.len(), 2);
    let first_message = exported.messages[0].name.clone();
    assert!(first_message.starts_with(&format!("{}/messages/", imported.name)));

    let fork = client
        .fork_session(pb::ForkSessionRequest {
            name: imported.name.clone(),
            up_to_message: first_message,
            display_name: "forked".into(),
        })
        .await
        .expect("fork")
        .into_inner();
    assert_eq!(fork.display_name, "forked");
    assert_eq!(fork.forked_from, imported.name);
    assert_eq!(fork.message_count, 1);
    assert_eq!(fork.last_message_preview, "question");

    let err = client
        .import_session(pb::ImportSessionRequest {
            archive: Some(pb::SessionArchive {
                format_version: 99,
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown format");
    assert_eq!(violated_fields(&err), ["archive.format_version"]);
}

#[tokio::test]
async fn watch_streams_created_updated_deleted() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let mut watch = server
        .sessions()
        .await
        .watch_sessions(pb::WatchSessionsRequest {})
        .await
        .expect("watch")
        .into_inner();
    // The stream is registered once the response headers arrived; changes from now on are seen.
    let created = create(&mut client, "watched").await;
    let mut change = created.clone();
    change.display_name = "watched 2".into();
    client
        .update_session(pb::UpdateSessionRequest {
            session: Some(change),
            update_mask: mask(&["display_name"]),
        })
        .await
        .expect("update");
    client
        .delete_session(pb::DeleteSessionRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");

    use pb::watch_sessions_response::Change;
    let mut changes = Vec::new();
    while changes.len() < 3 {
        let item = tokio::time::timeout(TIMEOUT, watch.next())
            .await
            .expect("change in time")
            .expect("stream open")
            .expect("ok item");
        changes.push(item.change.expect("change set"));
    }
    assert!(matches!(&changes[0], Change::Created(s) if s.name == created.name));
    assert!(matches!(&changes[1], Change::Updated(s) if s.display_name == "watched 2"));
    assert!(matches!(&changes[2], Change::Deleted(name) if *name == created.name));
}

#[tokio::test]
async fn invalid_input_names_the_field() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;

    let mut bad = session(&"x".repeat(300));
    bad.labels.insert("Not OK".into(), "v".into());
    bad.permission_mode = 99;
    let err = client
        .create_session(pb::CreateSessionRequest { session: Some(bad) })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "session.display_name",
            "session.labels[\"Not OK\"]",
            "session.permission_mode"
        ]
    );

    for (dir, what) in [("../escape", "dot-dot"), ("/etc", "absolute outside")] {
        let mut s = session("t");
        s.working_dir = dir.into();
        let err = client
            .create_session(pb::CreateSessionRequest { session: Some(s) })
            .await
            .expect_err(what);
        assert_eq!(violated_fields(&err), ["session.working_dir"], "{what}");
    }

    // A symlink inside the workspace that points outside is followed and refused.
    let outside = server.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, server.workspace().join("sneaky")).expect("symlink");
    let mut s = session("t");
    s.working_dir = "sneaky/deeper".into();
    let err = client
        .create_session(pb::CreateSessionRequest { session: Some(s) })
        .await
        .expect_err("symlink escape");
    assert_eq!(violated_fields(&err), ["session.working_dir"]);
    assert!(!outside.join("deeper").exists());

    for name in [
        "",
        "sessions/nope",
        "models/0190b5b4-0000-7000-8000-000000000000",
    ] {
        let err = client
            .get_session(pb::GetSessionRequest { name: name.into() })
            .await
            .expect_err(name);
        assert_eq!(err.code(), Code::InvalidArgument, "{name}");
        assert_eq!(violated_fields(&err), ["name"]);
    }

    let created = create(&mut client, "x").await;
    let mut change = created.clone();
    change.display_name = "y".into();
    let err = client
        .update_session(pb::UpdateSessionRequest {
            session: Some(change),
            update_mask: mask(&["status"]),
        })
        .await
        .expect_err("output-only field in mask");
    assert_eq!(violated_fields(&err), ["update_mask"]);

    let mut schedule_source = session("x");
    schedule_source.source = pb::SessionSource::Schedule.into();
    let err = client
        .create_session(pb::CreateSessionRequest {
            session: Some(schedule_source),
        })
        .await
        .expect_err("schedule source is server-set");
    assert_eq!(violated_fields(&err), ["session.source"]);
}

#[tokio::test]
async fn oversized_messages_are_rejected_before_the_handler() {
    let server = TestServer::start_with(|c| c.max_message_bytes = 64 * 1024).await;
    let mut client = server.sessions().await;
    let mut big = session("big");
    big.system_prompt = "p".repeat(100 * 1024);
    let err = client
        .create_session(pb::CreateSessionRequest { session: Some(big) })
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    let listed = client
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.sessions.is_empty(), "nothing stored");
}

#[tokio::test]
async fn sessions_survive_a_restart_on_the_same_data_dir() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let created = create(&mut client, "durable").await;
    drop(client);
    let (dir, mut config) = server.stop().await;
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));

    let server = TestServer::start_in(dir, config).await;
    let mut client = server.sessions().await;
    let got = client
        .get_session(pb::GetSessionRequest {
            name: created.name.clone(),
        })
        .await
        .expect("still there")
        .into_inner();
    assert_eq!(got.display_name, "durable");
    assert_eq!(got.etag, created.etag);
}

#[tokio::test]
async fn health_reports_serving() {
    let server = TestServer::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "octo.v1.SessionService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        status.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}
