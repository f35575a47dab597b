//! Authentication on every protocol when a token is configured (loopback with a token
//! requires it), health staying open, and the refusal to start unprotected.

use crate::common;

use common::{TestServer, with_token};
use octo::pb;
use tonic::Code;

const TOKEN: &str = "test-token-0123456789";

async fn protected() -> TestServer {
    TestServer::start_with(|c| {
        c.token = Some(TOKEN.into());
        c.require_token = true;
    })
    .await
}

#[tokio::test]
async fn grpc_needs_the_exact_token() {
    let server = protected().await;
    let mut client = server.sessions().await;
    let err = client
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(common::reason(&err), "UNAUTHENTICATED");
    let err = client
        .list_sessions(with_token(pb::ListSessionsRequest::default(), "wrong"))
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Code::Unauthenticated);
    client
        .list_sessions(with_token(pb::ListSessionsRequest::default(), TOKEN))
        .await
        .expect("right token");
}

#[tokio::test]
async fn health_stays_open_without_a_token() {
    let server = protected().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no token");
}

#[tokio::test]
async fn grpc_web_and_metrics_need_the_token() {
    let server = protected().await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!(
            "{}/octo.v1.SessionService/ListSessions",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("request");
    assert_eq!(
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()),
        Some("16"),
        "UNAUTHENTICATED"
    );

    let metrics = format!("{}/metrics", server.url());
    assert_eq!(
        client.get(&metrics).send().await.expect("metrics").status(),
        401
    );
    let ok = client
        .get(&metrics)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics");
    assert_eq!(ok.status(), 200);
    let text = ok.text().await.expect("text");
    // The failed gRPC-Web call above was counted with its code.
    assert!(
        text.contains(r#"octo_rpc_requests_total{method="octo.v1.SessionService/ListSessions",code="UNAUTHENTICATED"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn refuses_to_start_without_token_where_one_is_needed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::test_config(&dir);
    config.listen = "0.0.0.0:0".parse().expect("addr");
    let err = octo::server::Server::bind(config.clone())
        .await
        .err()
        .expect("non-loopback without token refused");
    assert!(err.to_string().contains("refusing to listen"), "{err}");

    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.require_token = true;
    let err = octo::server::Server::bind(config)
        .await
        .err()
        .expect("require_token without token refused");
    assert!(err.to_string().contains("require_token"), "{err}");
}
