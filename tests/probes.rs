//! The HTTP probes a load balancer or orchestrator polls: `GET /healthz` (the process
//! answers) and `GET /readyz` (the database answers and the server is not stopping),
//! without auth, on SQLite and on a real Postgres that stops taking connections.

mod common;

use std::time::Duration;

use common::TestServer;

async fn probe(server: &TestServer, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{}{path}", server.url()))
        .await
        .expect("probe answered");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

#[tokio::test]
async fn probes_answer_without_a_token() {
    let server = TestServer::start_with(|config| {
        config.token = Some("probe-secret-token".into());
        config.require_token = true;
    })
    .await;
    let (status, content_type, body) = probe(&server, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let (status, _, body) = probe(&server, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    // Everything else still needs the token.
    let (status, _, _) = probe(&server, "/v1/sessions").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let url = common::postgres::database().await;
    let database = url.rsplit('/').next().expect("name").to_owned();
    let admin = url.replace(&format!("/{database}"), "/postgres");
    let server = TestServer::start_with(|config| config.database_url = Some(url.clone())).await;
    assert_eq!(probe(&server, "/readyz").await.0, 200);

    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    // The database refuses new connections and its open ones are cut.
    client
        .batch_execute(&format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .await
        .expect("cut the database off");
    let body = readiness_until(&server, 503).await;
    assert!(body.contains("database"), "{body:?}");
    assert_eq!(probe(&server, "/healthz").await.0, 200, "alive all along");

    client
        .batch_execute(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
        .await
        .expect("let it back");
    assert_eq!(readiness_until(&server, 200).await, "ready\n");
}

/// Polls `/readyz` until it answers `wanted`; returns the body.
async fn readiness_until(server: &TestServer, wanted: u16) -> String {
    tokio::time::timeout(common::TIMEOUT, async {
        loop {
            let (status, _, body) = probe(server, "/readyz").await;
            if status == wanted {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("readiness changes in time (safety net)")
}
