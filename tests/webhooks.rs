//! Outgoing webhooks against real local HTTP receivers: signatures verified
//! independently, retries, permanent failures, refusal of this server's own address,
//! concurrency and shutdown.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common;

use common::webhook::{Received, header, verify};

use bytes::Bytes;

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use octo::webhooks::{
    WebhookPolicy, WebhookSecret, WebhookStats, WebhookTarget, Webhooks, http_client,
};
use serde_json::{Value, json};

use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc},
};
use tokio_util::sync::CancellationToken;

/// Only a safety net: every wait below ends on a notification long before.
const SAFETY: Duration = Duration::from_secs(20);

/// A local HTTP receiver answering with scripted statuses (the last one repeats).
struct Receiver {
    addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Received>,
    count: Arc<AtomicUsize>,
    /// Answers wait for this when the receiver was made with `hold`.
    release: Arc<Notify>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> Self {
        Self::start_with(statuses, false).await
    }

    async fn start_with(statuses: &[u16], hold: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let statuses: Arc<Vec<u16>> = Arc::new(statuses.to_vec());
        let count = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let (sender, requests) = mpsc::unbounded_channel();
        let (count2, release2) = (count.clone(), release.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (statuses, count, release, sender) = (
                    statuses.clone(),
                    count2.clone(),
                    release2.clone(),
                    sender.clone(),
                );
                let service = service_fn(move |request: Request<Incoming>| {
                    let (statuses, count, release, sender) = (
                        statuses.clone(),
                        count.clone(),
                        release.clone(),
                        sender.clone(),
                    );
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.expect("body").to_bytes();
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let status = statuses[n.min(statuses.len() - 1)];
                        let _ = sender.send(Received {
                            headers: parts.headers,
                            body,
                        });
                        if hold {
                            release.notified().await;
                        }
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        *response.status_mut() = StatusCode::from_u16(status).expect("status");
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
        Self {
            addr,
            requests,
            count,
            release,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/octo", self.addr)
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(SAFETY, self.requests.recv())
            .await
            .expect("a webhook request in time")
            .expect("receiver running")
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Short backoffs so retries take milliseconds.
fn fast_policy() -> WebhookPolicy {
    WebhookPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        queue_capacity: 64,
    }
}

/// A listener standing in for the Octo server (kept open so its port stays ours).
async fn server_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

fn start(policy: WebhookPolicy, server_addr: SocketAddr) -> (Webhooks, CancellationToken) {
    let shutdown = CancellationToken::new();
    let client = http_client(&policy).expect("client");
    (
        Webhooks::start(client, policy, server_addr, shutdown.clone()),
        shutdown,
    )
}

async fn idle(webhooks: &Webhooks) -> WebhookStats {
    tokio::time::timeout(SAFETY, webhooks.wait_idle())
        .await
        .expect("deliveries finish in time");
    webhooks.stats()
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_id_and_a_valid_signature() {
    let (_server, server_addr) = server_listener().await;
    let mut receiver = Receiver::start(&[500, 200]).await;
    let (webhooks, _shutdown) = start(fast_policy(), server_addr);
    let secret = WebhookSecret::generate();
    let data = json!({"session_id": "s-1", "turn_id": "t-7", "status": "completed"});
    webhooks.send(
        WebhookTarget {
            url: receiver.url(),
            secret: secret.clone(),
        },
        "turn.finished",
        data.clone(),
    );

    let first = receiver.next().await;
    let second = receiver.next().await;
    let stats = idle(&webhooks).await;
    assert_eq!(receiver.count(), 2, "exactly two attempts");
    assert_eq!(
        stats,
        WebhookStats {
            delivered: 1,
            ..WebhookStats::default()
        }
    );

    for received in [&first, &second] {
        verify(received, secret.as_str());
        assert_eq!(header(received, "content-type"), "application/json");
        assert!(header(received, "user-agent").starts_with("octo/"));
    }
    let id = header(&first, "webhook-id");
    assert!(id.starts_with("msg_") && id.len() > 20, "{id}");
    assert_eq!(id, header(&second, "webhook-id"), "same id on a retry");
    assert_eq!(first.body, second.body, "same payload on a retry");

    let payload: Value = serde_json::from_slice(&first.body).expect("json body");
    assert_eq!(payload["type"], "turn.finished");
    assert_eq!(payload["data"], data);
    let timestamp = payload["timestamp"].as_str().expect("timestamp");
    assert!(
        timestamp.ends_with('Z') && timestamp.contains('T'),
        "{timestamp}"
    );
    timestamp
        .parse::<prost_types::Timestamp>()
        .expect("RFC 3339 timestamp");
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (_server, server_addr) = server_listener().await;
    let mut receiver = Receiver::start(&[400, 200]).await;
    let (webhooks, _shutdown) = start(fast_policy(), server_addr);
    let secret = WebhookSecret::generate();
    webhooks.send(
        WebhookTarget {
            url: receiver.url(),
            secret: secret.clone(),
        },
        "schedule_run.finished",
        json!({"schedule_id": "daily"}),
    );
    let only = receiver.next().await;
    verify(&only, secret.as_str());
    let stats = idle(&webhooks).await;
    assert_eq!(receiver.count(), 1, "exactly one attempt");
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.delivered, 0);
}

#[tokio::test]
async fn attempts_stop_after_max_attempts() {
    let (_server, server_addr) = server_listener().await;
    let mut receiver = Receiver::start(&[503]).await;
    let (webhooks, _shutdown) = start(fast_policy(), server_addr);
    webhooks.send(
        WebhookTarget {
            url: receiver.url(),
            secret: WebhookSecret::generate(),
        },
        "turn.finished",
        json!({}),
    );
    for _ in 0..3 {
        receiver.next().await;
    }
    let stats = idle(&webhooks).await;
    assert_eq!(receiver.count(), 3);
    assert_eq!(stats.failed, 1);
}

#[tokio::test]
async fn check_url_refuses_this_server_and_other_schemes() {
    let (_server, server_addr) = server_listener().await;
    let port = server_addr.port();
    let (_other, other_addr) = server_listener().await;
    let other = other_addr.port();
    let (webhooks, _shutdown) = start(fast_policy(), server_addr);

    for url in [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("https://localhost:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
        format!("http://127.0.0.2:{port}/x"),
    ] {
        let error = webhooks.check_url(&url).await.unwrap_err();
        assert!(error.contains("points at this server"), "{url}: {error}");
    }
    for url in [
        format!("http://127.0.0.1:{other}/x"),
        format!("http://localhost:{other}/x"),
    ] {
        webhooks
            .check_url(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    for url in ["ftp://example.com/x", "file:///etc/passwd", "ws://host/x"] {
        let error = webhooks.check_url(url).await.unwrap_err();
        assert!(error.contains("http or https"), "{url}: {error}");
    }
    assert!(webhooks.check_url("not a url").await.is_err());
    assert!(webhooks.check_url("http://").await.is_err());

    // A server listening on every interface is reached through loopback too.
    let (everywhere, _) = start(fast_policy(), SocketAddr::from(([0, 0, 0, 0], port)));
    assert!(
        everywhere
            .check_url(&format!("http://127.0.0.1:{port}/x"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_url_pointing_at_this_server_is_refused_at_delivery() {
    // The receiver stands in for the server itself: nothing may reach it.
    let receiver = Receiver::start(&[200]).await;
    let (webhooks, _shutdown) = start(fast_policy(), receiver.addr);
    webhooks.send(
        WebhookTarget {
            url: receiver.url(),
            secret: WebhookSecret::generate(),
        },
        "turn.finished",
        json!({}),
    );
    let stats = idle(&webhooks).await;
    assert_eq!(stats.failed, 1);
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_others() {
    let (_server, server_addr) = server_listener().await;
    let mut slow = Receiver::start_with(&[200], true).await;
    let mut fast = Receiver::start(&[200]).await;
    let (webhooks, _shutdown) = start(fast_policy(), server_addr);
    let secret = WebhookSecret::generate();
    webhooks.send(
        WebhookTarget {
            url: slow.url(),
            secret: secret.clone(),
        },
        "turn.finished",
        json!({"n": 1}),
    );
    // The slow receiver holds its answer until released.
    slow.next().await;
    webhooks.send(
        WebhookTarget {
            url: fast.url(),
            secret,
        },
        "turn.finished",
        json!({"n": 2}),
    );
    // The fast one arrives while the slow one is still unanswered.
    fast.next().await;
    assert!(
        webhooks.stats().pending >= 1,
        "the slow one is still in flight"
    );
    assert_eq!(slow.count(), 1);
    slow.release.notify_one();
    let stats = idle(&webhooks).await;
    assert_eq!(stats.delivered, 2);
}

#[tokio::test]
async fn shutdown_abandons_pending_retries() {
    let (_server, server_addr) = server_listener().await;
    let mut receiver = Receiver::start(&[503]).await;
    let policy = WebhookPolicy {
        initial_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        ..fast_policy()
    };
    let (webhooks, shutdown) = start(policy, server_addr);
    webhooks.send(
        WebhookTarget {
            url: receiver.url(),
            secret: WebhookSecret::generate(),
        },
        "turn.finished",
        json!({}),
    );
    receiver.next().await;
    shutdown.cancel();
    let stats = idle(&webhooks).await;
    assert_eq!(stats.abandoned, 1);
    assert_eq!(receiver.count(), 1);
}

/// The server's own webhooks: a schedule run notifies its schedule's URL and the
/// server-level URL; every finished turn notifies the server-level URL. All signed.
#[tokio::test]
async fn schedule_runs_and_turns_notify_their_webhooks_signed() {
    const SERVER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let schedule_secret = WebhookSecret::generate();
    let mut server_hook = Receiver::start(&[200]).await;
    let mut schedule_hook = Receiver::start(&[503, 200]).await;
    let server = common::TestServer::start_with(|config| {
        config.webhook_url = Some(server_hook.url());
        config.webhook_secret = Some(SERVER_SECRET.into());
    })
    .await;
    let mut schedules = server.schedules().await;
    let schedule = schedules
        .create_schedule(octo::pb::CreateScheduleRequest {
            schedule: Some(octo::pb::Schedule {
                prompt: "notify me".into(),
                cron: "0 0 1 1 *".into(),
                webhook_url: schedule_hook.url(),
                webhook_secret: schedule_secret.as_str().into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner();
    assert!(schedule.webhook_secret.contains("****"));
    assert_ne!(schedule.webhook_secret, schedule_secret.as_str());
    let run = schedules
        .run_schedule(octo::pb::RunScheduleRequest {
            name: schedule.name.clone(),
        })
        .await
        .expect("run")
        .into_inner();

    // The schedule's receiver failed once: the same message came again, signed.
    let first = schedule_hook.next().await;
    let retried = schedule_hook.next().await;
    verify(&retried, schedule_secret.as_str());
    assert_eq!(header(&first, "webhook-id"), header(&retried, "webhook-id"));
    let body: Value = serde_json::from_slice(&retried.body).expect("json");
    assert_eq!(body["type"], "schedule_run.finished");
    assert_eq!(body["data"]["run"], run.name);
    assert_eq!(body["data"]["status"], "succeeded");

    // The server-level receiver hears about the turn and the run.
    let mut types = Vec::new();
    for _ in 0..2 {
        let received = server_hook.next().await;
        verify(&received, SERVER_SECRET);
        let body: Value = serde_json::from_slice(&received.body).expect("json");
        types.push(body["type"].as_str().unwrap_or_default().to_owned());
        if body["type"] == "turn.finished" {
            assert_eq!(body["data"]["status"], "succeeded");
            assert!(
                body["data"]["turn"]
                    .as_str()
                    .is_some_and(|t| t.contains("/turns/"))
            );
        }
    }
    types.sort();
    assert_eq!(types, ["schedule_run.finished", "turn.finished"]);

    // A webhook pointing at the server itself is refused when the schedule is stored.
    let err = schedules
        .create_schedule(octo::pb::CreateScheduleRequest {
            schedule: Some(octo::pb::Schedule {
                prompt: "loop".into(),
                cron: "0 0 1 1 *".into(),
                webhook_url: format!("{}/v1/sessions", server.url()),
                webhook_secret: schedule_secret.as_str().into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("self-pointing");
    assert_eq!(common::violated_fields(&err), ["schedule.webhook_url"]);
}
