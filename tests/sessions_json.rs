//! SessionService over the JSON/HTTP mapping (derived from google.api.http), with a
//! real HTTP client: routes, errors as google.rpc.Status JSON, SSE, and auth.

use crate::common;

use common::{TIMEOUT, TestServer};
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = tokio::time::timeout(TIMEOUT, request.send())
        .await
        .expect("answer in time")
        .expect("request");
    let status = response.status();
    let body = response.text().await.expect("body");
    let value =
        serde_json::from_str(&body).unwrap_or_else(|err| panic!("JSON body ({err}): {body}"));
    (status, value)
}

fn detail<'a>(error: &'a Value, type_suffix: &str) -> &'a Value {
    error["details"]
        .as_array()
        .and_then(|d| {
            d.iter().find(|d| {
                d["@type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(type_suffix))
            })
        })
        .unwrap_or_else(|| panic!("no {type_suffix} detail in {error}"))
}

fn violations(error: &Value) -> Vec<String> {
    detail(error, "google.rpc.BadRequest")["fieldViolations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|v| v["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn crud_over_json() {
    let server = TestServer::start().await;
    let http = Client::new();
    let base = server.url();

    let (status, created) = send(
        http.post(format!("{base}/v1/sessions"))
            .json(&json!({"displayName": "json made", "labels": {"team": "core"}, "permissionMode": "PERMISSION_MODE_AUTO_APPROVE"})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["displayName"], "json made");
    assert_eq!(created["permissionMode"], "PERMISSION_MODE_AUTO_APPROVE");
    let name = created["name"].as_str().expect("name").to_owned();

    let (status, got) = send(http.get(format!("{base}/v1/{name}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got, created);

    // PATCH with a mask in the query; both proto and JSON spellings of paths work.
    let (status, patched) = send(
        http.patch(format!("{base}/v1/{name}?updateMask=displayName,pinned"))
            .json(&json!({"displayName": "patched", "pinned": true, "systemPrompt": "unmasked"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["displayName"], "patched");
    assert_eq!(patched["pinned"], true);
    assert!(
        patched.get("systemPrompt").is_none(),
        "unmasked field unchanged: {patched}"
    );

    // A stale etag is 409 ABORTED.
    let (status, error) = send(
        http.patch(format!("{base}/v1/{name}?update_mask=display_name"))
            .json(&json!({"displayName": "lost", "etag": created["etag"]})),
    )
    .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], 10);

    let (status, listed) =
        send(http.get(format!("{base}/v1/sessions?pageSize=10&query=PATCHED"))).await;
    assert_eq!(status, 200);
    assert_eq!(listed["sessions"][0]["name"], name.as_str());

    let (status, fork) = send(http.post(format!("{base}/v1/{name}:fork")).json(&json!({}))).await;
    assert_eq!(status, 200, "{fork}");
    assert_eq!(fork["forkedFrom"], name.as_str());

    let (status, archive) = send(http.get(format!("{base}/v1/{name}:export"))).await;
    assert_eq!(status, 200);
    assert_eq!(archive["formatVersion"], 1);
    let (status, imported) = send(
        http.post(format!("{base}/v1/sessions:import"))
            .json(&json!({"archive": archive})),
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["displayName"], "patched");

    // DELETE moves it to the trash (tests/trash.rs); :purge deletes it for good.
    let (status, trashed) = send(http.delete(format!("{base}/v1/{name}"))).await;
    assert_eq!(status, 200);
    assert!(trashed["deleteTime"].is_string(), "{trashed}");
    let (status, empty) = send(
        http.post(format!("{base}/v1/{name}:purge"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(empty, json!({}));
    let (status, error) = send(http.get(format!("{base}/v1/{name}"))).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], 5);
    assert_eq!(
        detail(&error, "google.rpc.ErrorInfo")["reason"],
        "SESSION_NOT_FOUND"
    );
    let (status, _) = send(http.delete(format!("{base}/v1/{name}?allowMissing=true"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_input_is_a_clear_json_error() {
    let server = TestServer::start().await;
    let http = Client::new();
    let sessions = format!("{}/v1/sessions", server.url());

    let (status, error) = send(
        http.post(&sessions)
            .json(&json!({"workingDir": "../../etc"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], 3);
    assert_eq!(violations(&error), ["session.working_dir"]);

    let (status, error) = send(
        http.post(&sessions)
            .header("content-type", "application/json")
            .body("{\"displayName\": "),
    )
    .await;
    assert_eq!(status, 400, "malformed JSON: {error}");
    assert_eq!(error["code"], 3);

    let (status, error) = send(
        http.post(&sessions)
            .json(&json!({"displayName": "x", "colour": "red"})),
    )
    .await;
    assert_eq!(status, 400, "unknown field: {error}");
    assert!(
        error["message"].as_str().unwrap_or("").contains("colour"),
        "{error}"
    );

    let (status, error) = send(
        http.post(&sessions)
            .header("content-type", "text/plain")
            .body("displayName=x"),
    )
    .await;
    assert_eq!(status, 415, "{error}");

    let (status, error) = send(http.get(format!("{sessions}?pageSize=abc"))).await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = send(http.get(format!("{sessions}?noSuchParam=1"))).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("noSuchParam"),
        "{error}"
    );

    let (status, error) = send(http.get(format!("{}/v2/nothing/here", server.url()))).await;
    assert_eq!(status, 404, "unknown path is a JSON 404: {error}");
    assert_eq!(error["code"], 5);

    // Nothing was stored by any of the rejected requests.
    let (_, listed) = send(http.get(&sessions)).await;
    assert!(listed.get("sessions").is_none(), "{listed}");
}

/// Reads SSE events until `predicate` holds for one, returning that event's data.
async fn next_event(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    predicate: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        let value: Value = serde_json::from_str(data.trim()).expect("event JSON");
                        if predicate(&value) {
                            return value;
                        }
                    }
                }
            }
            let chunk = stream.next().await.expect("stream open").expect("chunk");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("event in time")
}

#[tokio::test]
async fn watch_sessions_over_server_sent_events() {
    let server = TestServer::start().await;
    let http = Client::new();
    let response = tokio::time::timeout(
        TIMEOUT,
        http.get(format!("{}/v1/sessions:watch", server.url()))
            .send(),
    )
    .await
    .expect("headers in time")
    .expect("watch");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "{:?}",
        response.headers()
    );
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();

    let mut client = server.sessions().await;
    let created = common::create(&mut client, "seen over sse").await;
    let event = next_event(&mut stream, &mut buffer, |v| v.get("created").is_some()).await;
    assert_eq!(event["created"]["name"], created.name.as_str());
    client
        .delete_session(octo::pb::DeleteSessionRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    let event = next_event(&mut stream, &mut buffer, |v| v.get("deleted").is_some()).await;
    assert_eq!(event["deleted"], created.name.as_str());
}

#[tokio::test]
async fn json_needs_the_token_and_sse_takes_it_as_a_query_parameter() {
    let token = "json-token-123456789";
    let server = TestServer::start_with(|c| c.token = Some(token.into())).await;
    let http = Client::new();
    let sessions = format!("{}/v1/sessions", server.url());

    let (status, error) = send(http.get(&sessions)).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["code"], 16);
    let (status, _) = send(http.get(&sessions).bearer_auth(token)).await;
    assert_eq!(status, 200);

    // access_token is for EventSource only: a unary GET must not accept it.
    let (status, error) = send(http.get(format!("{sessions}?access_token={token}"))).await;
    assert_eq!(status, 400, "{error}");

    let response = tokio::time::timeout(
        TIMEOUT,
        http.get(format!("{sessions}:watch?access_token={token}"))
            .send(),
    )
    .await
    .expect("in time")
    .expect("watch");
    assert_eq!(response.status(), 200);
    let response = tokio::time::timeout(
        TIMEOUT,
        http.get(format!("{sessions}:watch?access_token=wrong"))
            .send(),
    )
    .await
    .expect("in time")
    .expect("watch");
    assert_eq!(response.status(), 401);
}
