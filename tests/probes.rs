//! The HTTP probes a load balancer or orchestrator polls: `GET /healthz` (the process
//! answers) and `GET /readyz` (the database answers and the server is not stopping),
//! without auth, on SQLite and on a real Postgres that stops taking connections.

use crate::common;

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

/// `/metrics`: canonical status code names, bounded method labels that still name
/// reflection, the classic text format unless the scraper asks for OpenMetrics, and the
/// standard process and build metrics.
#[tokio::test]
async fn metrics_speak_the_format_asked_for_with_canonical_labels() {
    let server = TestServer::start().await;
    // A NOT_FOUND answer and a reflection call to count.
    let mut sessions = server.sessions().await;
    let missing = sessions
        .get_session(octo::pb::GetSessionRequest {
            name: "sessions/00000000-0000-7000-8000-000000000000".into(),
        })
        .await
        .expect_err("no such session");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let grpcurl = common::find_tool("grpcurl");
    if let Some(grpcurl) = &grpcurl {
        // Async: the server answers on this test's runtime.
        let listed = tokio::process::Command::new(grpcurl)
            .args(["-plaintext", &server.addr.to_string(), "list"])
            .kill_on_drop(true)
            .output()
            .await
            .expect("grpcurl list");
        assert!(listed.status.success(), "{listed:?}");
    }

    let classic = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .expect("metrics");
    assert_eq!(
        classic.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = classic.text().await.expect("body");
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains(
            r#"octo_rpc_requests_total{method="octo.v1.SessionService/GetSession",code="NOT_FOUND"} 1"#
        ),
        "{text}"
    );
    if grpcurl.is_some() {
        assert!(
            text.contains(r#"method="grpc.reflection.v1.ServerReflection/ServerReflectionInfo""#),
            "{text}"
        );
    }
    assert!(!text.contains(r#"code="NotFound""#), "{text}");
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "octo_active_sessions 0",
        "octo_live_sessions ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} in {text}"
        );
    }
    assert!(
        text.contains(&format!(
            r#"octo_build{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );

    let open = reqwest::Client::new()
        .get(format!("{}/metrics", server.url()))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .expect("metrics");
    assert!(
        open.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    assert!(open.text().await.expect("body").ends_with("# EOF\n"));
}
