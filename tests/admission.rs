//! Admission caps on a real server: open server streams beyond `max_streams` and
//! connections beyond `max_connections` get a clear RESOURCE_EXHAUSTED (gRPC) or 429
//! (JSON) naming the cap, and room comes back when one closes.

use crate::common;

use common::{TestServer, create};
use octo::pb;
use serde_json::Value;

async fn open_stream(
    server: &TestServer,
    session: &str,
) -> Result<tonic::Streaming<pb::SessionEvent>, tonic::Status> {
    server
        .chat()
        .await
        .stream_events(pb::StreamEventsRequest {
            session: session.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn streams_beyond_max_streams_are_refused_until_one_closes() {
    let server = TestServer::start_with(|config| config.max_streams = 2).await;
    let session = create(&mut server.sessions().await, "capped").await;
    let first = open_stream(&server, &session.name).await.expect("first");
    let _second = open_stream(&server, &session.name).await.expect("second");
    let refused = open_stream(&server, &session.name)
        .await
        .expect_err("a third stream is over the cap");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(common::reason(&refused), "TOO_MANY_STREAMS");
    assert!(refused.message().contains("max_streams"), "{refused:?}");

    // Over JSON/SSE the same cap holds (the gateway goes through the same service).
    let response = reqwest::get(format!("{}/v1/{}/events", server.url(), session.name))
        .await
        .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    let body: Value = response.json().await.expect("json");
    assert!(body.to_string().contains("TOO_MANY_STREAMS"), "{body}");

    // Closing one makes room (the server sees the stream reset; a short wait).
    drop(first);
    common::eventually("room after a stream closed", async || {
        match open_stream(&server, &session.name).await {
            Ok(stream) => Some(stream),
            Err(status) if status.code() == tonic::Code::ResourceExhausted => None,
            Err(other) => panic!("{other:?}"),
        }
    })
    .await;
    // Unary calls are not streams: they pass whatever the streams hold.
    server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("unary calls are not capped by max_streams");
}

#[tokio::test]
async fn connections_beyond_max_connections_are_told_so() {
    let server = TestServer::start_with(|config| config.max_connections = 2).await;
    let address = server.url().trim_start_matches("http://").to_owned();
    // Two idle connections hold the two permits.
    let held = [
        tokio::net::TcpStream::connect(&address).await.expect("one"),
        tokio::net::TcpStream::connect(&address).await.expect("two"),
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = format!("{}/v1/sessions", server.url());
    // The server may not have accepted both yet: wait for the refusal.
    let response = common::eventually("the refusal", async || {
        let response = client.get(&url).send().await.expect("request");
        (response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS).then_some(response)
    })
    .await;
    let body: Value = response.json().await.expect("json");
    assert!(body.to_string().contains("TOO_MANY_CONNECTIONS"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_connections"))
    );

    drop(held);
    common::eventually("room after closing", async || {
        let response = client.get(&url).send().await.expect("request");
        (response.status() == reqwest::StatusCode::OK).then_some(())
    })
    .await;
}
