//! `octo serve` on Postgres (`database_url`), end to end over gRPC: the whole runtime
//! (sessions, a tool turn with its confirmation, models, schedules, recovery after a
//! restart) on the cluster backend, against a real throwaway Postgres. The store
//! semantics themselves are in the conformance suite (tests/store.rs); this shows the
//! server is wired to the backend the URL names.

use crate::common;

use common::{
    TestServer, collect_until, create, finishes, history, message_text, send_text, sent_turn,
    streamed_text, subscribe, text,
};
use octo::pb;

async fn on_postgres(dir: std::sync::Arc<tempfile::TempDir>, url: &str) -> TestServer {
    let mut config = common::test_config(&dir);
    config.database_url = Some(url.to_owned());
    TestServer::start_in(dir, config).await
}

#[tokio::test]
async fn a_server_on_postgres_runs_turns_and_keeps_them_across_a_restart() {
    let url = common::postgres::database().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
    let server = on_postgres(dir.clone(), &url).await;

    let session = create(&mut server.sessions().await, "on postgres").await;
    let mut chat = server.chat().await;
    let mut events = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![text("hello postgres")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = collect_until(&mut events, common::is_turn_finished).await;
    assert_eq!(streamed_text(&events), "Echo: hello postgres");
    let last_sequence = events.last().map(|e| e.sequence).expect("events");

    // A queued second turn, then a restart on the same database.
    let sent = send_text(&mut chat, &session.name, "second", pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    let second = sent_turn(&sent);
    let mut stream = subscribe(&mut chat, &session.name, 0).await;
    collect_until(&mut stream, finishes(&second.name)).await;
    drop(stream);
    let (dir, _) = server.stop().await;
    // Nothing of the first server's lives in the SQLite file it would otherwise use.
    assert!(!dir.path().join("data/octo.db").exists());

    let server = on_postgres(dir, &url).await;
    let mut chat = server.chat().await;
    let texts: Vec<String> = history(&mut chat, &session.name)
        .await
        .iter()
        .map(message_text)
        .collect();
    assert_eq!(
        texts,
        [
            "Echo: second",
            "second",
            "Echo: hello postgres",
            "hello postgres"
        ],
        "newest first, all four kept"
    );
    // Sequences go on above the last one seen before the restart.
    let mut stream = subscribe(&mut chat, &session.name, 0).await;
    let sent = send_text(&mut chat, &session.name, "third", pb::BusyPolicy::Enqueue)
        .await
        .expect("send");
    let third = sent_turn(&sent);
    let events = collect_until(&mut stream, finishes(&third.name)).await;
    assert!(
        events
            .iter()
            .filter(|e| !matches!(e.kind, Some(pb::session_event::Kind::Snapshot(_))))
            .all(|e| e.sequence > last_sequence),
        "sequences restart above {last_sequence}"
    );
    let listed = server
        .sessions()
        .await
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(listed.sessions[0].message_count, 6);
}

#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused_until_clusters_exist() {
    let url = common::postgres::database().await;
    let first_dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
    let first = on_postgres(first_dir, &url).await;
    let second_dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::test_config(&second_dir);
    config.database_url = Some(url.clone());
    let err = match octo::server::Server::bind(config.clone()).await {
        Ok(_) => panic!("a second server bound to the same database"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("another Octo server is using this database"),
        "{err}"
    );
    // The first one still serves; once it stops, the database is free again.
    create(&mut first.sessions().await, "still served").await;
    first.stop().await;
    let server = octo::server::Server::bind(config)
        .await
        .expect("the database is free after the first server stopped");
    drop(server);
}

#[tokio::test]
async fn a_bad_database_url_is_refused_with_a_clear_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let output = common::octo_command_in(home.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "mysql://octo:hunter2@db/octo",
        ])
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database_url"), "{stderr}");
    assert!(stderr.contains("postgres://"), "says what works: {stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is masked: {stderr}"
    );

    // A Postgres nobody listens on: a clear error naming the database, no password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let output = common::octo_command_in(home.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(format!("postgres://octo:hunter2@127.0.0.1:{port}/octo"))
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("opening the database"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
