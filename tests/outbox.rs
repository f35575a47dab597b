//! The durable webhook outbox end to end, on a real server with SQLite: a receiver that
//! is down when a turn finishes gets the `turn.finished` delivery after a server restart
//! once it is back (same webhook-id, valid signature); a delivery that keeps failing ends
//! dead, is listed by ListWebhookDeliveries (gRPC and the JSON gateway, never with its
//! secret) and is sent again by RetryWebhookDelivery; and a real `octo serve` killed
//! with SIGKILL while its delivery waits for a receiver sends it after a restart.
//!
//! Waits end on conditions (a request arriving, a listed state); the timeouts are only
//! a safety net. Retry backoffs are milliseconds (`config.webhooks`).

use crate::common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::{
    TestServer,
    webhook::{Received, header, verify},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use octo::pb::{self, webhook_service_client::WebhookServiceClient};
use serde_json::Value;

use tokio::{net::TcpListener, sync::mpsc};
use tonic::transport::Channel;

const SAFETY: Duration = Duration::from_secs(60);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A local receiver on `addr` answering with `status` (changeable while it runs).
struct Receiver {
    requests: mpsc::UnboundedReceiver<Received>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start(listener: TcpListener, status: u16) -> Self {
        let status = Arc::new(AtomicU16::new(status));
        let (sender, requests) = mpsc::unbounded_channel();
        let answer = status.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (sender, answer) = (sender.clone(), answer.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (sender, answer) = (sender.clone(), answer.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.expect("body").to_bytes();
                        let _ = sender.send(Received {
                            headers: parts.headers,
                            body,
                        });
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        *response.status_mut() =
                            StatusCode::from_u16(answer.load(Ordering::SeqCst)).expect("status");
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { requests, status }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(SAFETY, self.requests.recv())
            .await
            .expect("a webhook request in time")
            .expect("receiver running")
    }
}

/// A loopback address nothing listens on (bound, then closed).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

async fn webhooks(server: &TestServer) -> WebhookServiceClient<Channel> {
    WebhookServiceClient::new(server.channel().await)
}

async fn list(
    client: &mut WebhookServiceClient<Channel>,
    state: pb::WebhookDeliveryState,
) -> Vec<pb::WebhookDelivery> {
    client
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            state: state.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .webhook_deliveries
}

/// Waits until the deliveries listed (all states) satisfy `done`; returns them.
async fn wait_for(
    client: &mut WebhookServiceClient<Channel>,
    what: &str,
    done: impl Fn(&[pb::WebhookDelivery]) -> bool,
) -> Vec<pb::WebhookDelivery> {
    let deadline = tokio::time::Instant::now() + SAFETY;
    loop {
        let deliveries = list(client, pb::WebhookDeliveryState::Unspecified).await;
        if done(&deliveries) {
            return deliveries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached in time; deliveries: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs one turn to its end on `server`.
async fn finish_a_turn(server: &TestServer) -> pb::Turn {
    finish_a_turn_on(server.channel().await).await
}

/// Runs one turn to its end on the server `channel` reaches.
async fn finish_a_turn_on(channel: Channel) -> pb::Turn {
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    let session = common::create(&mut sessions, "hooked").await;
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel);
    let sent = common::send_text(&mut chat, &session.name, "hi", pb::BusyPolicy::Reject)
        .await
        .expect("send");
    let turn = common::sent_turn(&sent);
    let deadline = tokio::time::Instant::now() + SAFETY;
    loop {
        let current = common::get_turn(&mut chat, &turn.name).await;
        if current.end_time.is_some() {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "turn did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_receiver_down_across_a_restart_gets_the_delivery_when_it_is_back() {
    let addr = closed_port().await;
    let server = TestServer::start_with(|config| {
        config.webhook_url = Some(format!("http://{addr}/hooks"));
        config.webhook_secret = Some(SECRET.into());
        // Enough attempts to outlast the restart.
        config.webhooks.max_attempts = 10_000;
        config.webhooks.max_backoff_ms = 200;
    })
    .await;
    let turn = finish_a_turn(&server).await;
    let mut client = webhooks(&server).await;
    // Attempted (refused) at least once, still pending.
    let listed = wait_for(&mut client, "a failed attempt", |d| {
        d.len() == 1 && d[0].attempts >= 1
    })
    .await;
    let delivery = listed[0].clone();
    assert_eq!(delivery.event_type, "turn.finished");
    assert_eq!(delivery.state(), pb::WebhookDeliveryState::Pending);
    assert!(!delivery.last_error.is_empty());
    assert!(!format!("{delivery:?}").contains("MfKQ9r8"));

    // Restart on the same data dir, then bring the receiver up.
    let (dir, config) = server.stop().await;
    let server = TestServer::start_in(dir, config).await;
    let listener = TcpListener::bind(addr)
        .await
        .expect("rebind the receiver's port");
    let mut receiver = Receiver::start(listener, 200).await;
    let received = receiver.next().await;
    verify(&received, SECRET);
    let id = delivery
        .name
        .strip_prefix("webhookDeliveries/")
        .expect("name");
    assert_eq!(header(&received, "webhook-id"), id);
    let body: Value = serde_json::from_slice(&received.body).expect("json");
    assert_eq!(body["type"], "turn.finished");
    assert_eq!(body["data"]["turn"], turn.name);
    assert_eq!(body["data"]["status"], "succeeded");

    let mut client = webhooks(&server).await;
    wait_for(&mut client, "delivered", |d| {
        d.len() == 1 && d[0].state() == pb::WebhookDeliveryState::Delivered
    })
    .await;
}

#[tokio::test]
async fn a_failing_delivery_ends_dead_is_listed_and_is_retried_by_the_operator() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut receiver = Receiver::start(listener, 503).await;
    let server = TestServer::start_with(|config| {
        config.webhook_url = Some(format!("http://{addr}/hooks"));
        config.webhook_secret = Some(SECRET.into());
        config.webhooks.max_attempts = 2;
    })
    .await;
    finish_a_turn(&server).await;
    let first = receiver.next().await;
    let second = receiver.next().await;
    assert_eq!(header(&first, "webhook-id"), header(&second, "webhook-id"));
    verify(&second, SECRET);

    let mut client = webhooks(&server).await;
    let listed = wait_for(&mut client, "dead", |d| {
        d.len() == 1 && d[0].state() == pb::WebhookDeliveryState::Dead
    })
    .await;
    let dead = listed[0].clone();
    assert_eq!(dead.attempts, 2);
    assert!(dead.last_error.contains("503"), "{}", dead.last_error);
    assert_eq!(
        list(&mut client, pb::WebhookDeliveryState::Dead).await,
        std::slice::from_ref(&dead)
    );
    assert!(
        list(&mut client, pb::WebhookDeliveryState::Pending)
            .await
            .is_empty()
    );

    // The JSON gateway serves the same list, without the secret.
    let json = reqwest::get(format!(
        "{}/v1/webhookDeliveries?state=WEBHOOK_DELIVERY_STATE_DEAD",
        server.url()
    ))
    .await
    .expect("GET")
    .text()
    .await
    .expect("body");
    assert!(json.contains(&dead.name), "{json}");
    assert!(
        !json.contains("MfKQ9r8") && !json.contains("whsec_"),
        "{json}"
    );

    // The CLI lists it; the metrics count it.
    let cli = octo::cli::client::Client::connect(&server.url(), None, None)
        .await
        .expect("cli connects");
    let mut out = Vec::new();
    octo::cli::webhooks::execute(
        &cli,
        octo::cli::webhooks::WebhooksCommand::List(octo::cli::webhooks::ListArgs {
            state: Some(octo::cli::webhooks::StateArg::Dead),
            ..Default::default()
        }),
        false,
        &mut out,
    )
    .await
    .expect("octo webhooks list --state dead");
    let table = String::from_utf8(out).expect("utf-8");
    let id = dead.name.strip_prefix("webhookDeliveries/").expect("name");
    assert!(
        table.contains(id) && table.contains("turn.finished"),
        "{table}"
    );
    let deadline = tokio::time::Instant::now() + SAFETY;
    loop {
        let metrics = reqwest::get(format!("{}/metrics", server.url()))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics");
        if metrics.contains(r#"octo_webhook_deliveries{state="dead"} 1"#) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The receiver recovers; the operator retries: the same id arrives, signed.
    receiver.status.store(200, Ordering::SeqCst);
    let retried = client
        .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
            name: dead.name.clone(),
        })
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried.state(), pb::WebhookDeliveryState::Pending);
    assert_eq!(retried.attempts, 0);
    let third = receiver.next().await;
    verify(&third, SECRET);
    assert_eq!(header(&third, "webhook-id"), header(&first, "webhook-id"));
    assert_eq!(third.body, first.body);
    wait_for(&mut client, "delivered", |d| {
        d.len() == 1 && d[0].state() == pb::WebhookDeliveryState::Delivered
    })
    .await;

    // Retrying a delivered one is refused; a malformed name says which field.
    let err = client
        .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
            name: dead.name.clone(),
        })
        .await
        .expect_err("delivered");
    assert_eq!(common::reason(&err), "WEBHOOK_DELIVERED");
    let err = client
        .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
            name: "webhookDeliveries/nope".into(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(common::violated_fields(&err), ["name"]);
}

/// `octo serve --demo` with the server-level webhook at `addr` and fast retries.
async fn serve_hooked(
    home: &std::path::Path,
    addr: SocketAddr,
) -> (tokio::process::Child, Channel) {
    let config = home.join("octo.toml");
    std::fs::write(
        &config,
        format!(
            "webhook_url = \"http://{addr}/hooks\"\nwebhook_secret = \"{SECRET}\"\n\n\
             [webhooks]\nmax_attempts = 10000\ninitial_backoff_ms = 50\n\
             max_backoff_ms = 200\ntimeout_ms = 1000\n"
        ),
    )
    .expect("config");
    let data = home.join("data");
    let args: [&std::ffi::OsStr; 5] = [
        "--demo".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    let (child, address) = common::spawn_serve(home, &args).await;
    let channel = common::connect(&address).await;
    (child, channel)
}

#[tokio::test]
async fn a_killed_server_sends_its_stored_delivery_after_a_restart() {
    let home = tempfile::tempdir().expect("tempdir");
    let addr = closed_port().await;
    let (mut first, channel) = serve_hooked(home.path(), addr).await;
    let turn = finish_a_turn_on(channel.clone()).await;
    let mut client = WebhookServiceClient::new(channel);
    let listed = wait_for(&mut client, "a failed attempt", |d| {
        d.len() == 1 && d[0].attempts >= 1
    })
    .await;
    first.kill().await.expect("SIGKILL");

    // Restarted on the same data dir (its claim, if it held one, expires), then the
    // receiver comes up: the stored delivery arrives, same id, signed.
    let (_second, channel) = serve_hooked(home.path(), addr).await;
    let listener = TcpListener::bind(addr)
        .await
        .expect("rebind the receiver's port");
    let mut receiver = Receiver::start(listener, 200).await;
    let received = receiver.next().await;
    verify(&received, SECRET);
    let id = listed[0]
        .name
        .strip_prefix("webhookDeliveries/")
        .expect("name");
    assert_eq!(header(&received, "webhook-id"), id);
    let body: Value = serde_json::from_slice(&received.body).expect("json");
    assert_eq!(body["data"]["turn"], turn.name);
    let mut client = WebhookServiceClient::new(channel);
    wait_for(&mut client, "delivered", |d| {
        d.len() == 1 && d[0].state() == pb::WebhookDeliveryState::Delivered
    })
    .await;
}
