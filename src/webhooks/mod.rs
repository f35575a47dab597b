//! Outgoing webhooks signed per the Standard Webhooks spec.
//!
//! A notification is queued with [`Webhooks::send`] (which never waits), and a worker
//! delivers it as `POST` of `{"type", "timestamp", "data"}` JSON with the `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers. Failed attempts (connection
//! errors, timeouts, 408, 429, 5xx) are retried with exponential backoff under the same
//! id and body; the timestamp and signature are made anew for every attempt, as the spec
//! says. Messages are delivered concurrently, so one slow receiver holds up no other.
//! URLs pointing at this server are refused, when stored and again before every attempt.
//!
//! The server's own notifications (`turn.finished`, `schedule_run.finished`) do not use
//! the in-memory queue: they are stored in the durable outbox and sent by
//! `crate::outbox`, one attempt at a time through [`Webhooks::attempt_once`] (the same
//! checks, signing and classification of answers as the queue's attempts).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use reqwest::{StatusCode, Url, header};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

mod secret;
pub mod verify;

pub use secret::WebhookSecret;

/// Deliveries in flight at once (across all receivers).
const CONCURRENCY: usize = 16;
/// Sent as `user-agent`.
const USER_AGENT: &str = concat!("octo/", env!("CARGO_PKG_VERSION"));

/// Where a notification goes.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: WebhookSecret,
}

/// Delivery tuning.
#[derive(Clone, Debug)]
pub struct WebhookPolicy {
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for every further one.
    pub initial_backoff: Duration,
    /// The longest delay between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// The whole of one attempt: name resolution, connecting, sending and the answer.
    pub timeout: Duration,
    /// Messages waiting for delivery; beyond it new ones are dropped with a warning.
    pub queue_capacity: usize,
}

impl Default for WebhookPolicy {
    /// 8 attempts, delays doubling from 30 s (30 s + 1 + 2 + 4 + 8 + 16 + 32 min ≈ 64 min):
    /// about an hour, long enough to ride out a receiver's restart or deploy, short
    /// enough that a dead receiver shows up as dead deliveries the same hour.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(40 * 60),
            timeout: Duration::from_secs(10),
            queue_capacity: 1024,
        }
    }
}

/// An HTTP client suited to webhooks: redirects are not followed (the spec counts a
/// `3xx` as a failure, and a redirect could point back at this server), and connecting
/// is bounded by the policy's timeout.
pub fn http_client(policy: &WebhookPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(policy.timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(USER_AGENT)
        .build()
}

/// Delivery outcomes so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Messages a receiver answered with a 2xx.
    pub delivered: u64,
    /// Messages given up: a permanent failure, a refused URL, or attempts exhausted.
    pub failed: u64,
    /// Messages never queued: the queue was full or delivery had stopped.
    pub dropped: u64,
    /// Messages queued or in flight when delivery stopped.
    pub abandoned: u64,
    /// Messages queued or in flight now.
    pub pending: u64,
}

/// One notification on its way.
struct Message {
    target: WebhookTarget,
    /// `msg_…`, the same on every attempt.
    id: String,
    event_type: String,
    /// The JSON body, the same on every attempt.
    payload: Bytes,
}

struct Inner {
    http: reqwest::Client,
    policy: WebhookPolicy,
    server_addr: SocketAddr,
    queue: mpsc::Sender<Message>,
    stats: watch::Sender<WebhookStats>,
}

/// The delivery queue. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("policy", &self.inner.policy)
            .field("server_addr", &self.inner.server_addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The body: `{"type", "timestamp", "data"}` in that order.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: serde_json::Value,
}

/// Why a URL was not accepted.
enum UrlProblem {
    /// Wrong for good: bad syntax or scheme, or it points at this server.
    Invalid(String),
    /// The host name did not resolve (now).
    Unresolved(String),
}

impl UrlProblem {
    fn message(self) -> String {
        match self {
            Self::Invalid(message) | Self::Unresolved(message) => message,
        }
    }
}

/// What one [`Webhooks::attempt_once`] came to.
#[derive(Debug)]
pub(crate) enum AttemptResult {
    /// The receiver answered this 2xx status.
    Delivered(u16),
    /// Worth another attempt, after at least `retry_after` when the receiver said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Failed for good (a 4xx, an invalid URL, one pointing at this server).
    Permanent { error: String },
}

/// What one attempt came to.
enum Attempt {
    Delivered(StatusCode),
    /// Worth another attempt, after at least the given delay when the receiver said so.
    Retry {
        status: Option<StatusCode>,
        error: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        status: Option<StatusCode>,
        error: String,
    },
    Shutdown,
}

impl Webhooks {
    /// Starts the delivery worker(s) on the current runtime. `server_addr` is the address
    /// the server listens on (to refuse URLs pointing at it). Deliveries stop when
    /// `shutdown` is cancelled (pending retries are abandoned with a log line).
    ///
    /// The client is used as given: build it with [`http_client`] so redirects are not
    /// followed.
    pub fn start(
        http: reqwest::Client,
        policy: WebhookPolicy,
        server_addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(policy.queue_capacity.max(1));
        let (stats, _) = watch::channel(WebhookStats::default());
        let webhooks = Self {
            inner: Arc::new(Inner {
                http,
                policy,
                server_addr,
                queue,
                stats,
            }),
        };
        // The worker holds a weak reference so dropping every handle ends it too.
        tokio::spawn(dispatch(
            Arc::downgrade(&webhooks.inner),
            receiver,
            shutdown,
        ));
        webhooks
    }

    /// Checks a URL before it is stored: http or https only, has a host, and does not
    /// point at this server (same port on a loopback, unspecified, or the listen
    /// address' IP; host names are resolved). Err(message) says what is wrong.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        self.inner
            .resolve_and_check(url)
            .await
            .map(|_| ())
            .map_err(UrlProblem::message)
    }

    /// Queues one notification; never waits (when the queue is full, logs a warning and
    /// drops it). `event_type` like "turn.finished" or "schedule_run.finished"; `data`
    /// is the JSON object.
    pub fn send(&self, target: WebhookTarget, event_type: &str, data: serde_json::Value) {
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let envelope = Envelope {
            event_type,
            timestamp: prost_types::Timestamp::from(SystemTime::now()).to_string(),
            data,
        };
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => Bytes::from(payload),
            Err(e) => {
                tracing::warn!(url = %redacted(&target.url), id, event_type, error = %e,
                    "webhook dropped: the event cannot be serialized");
                self.inner.stats.send_modify(|s| s.dropped += 1);
                return;
            }
        };
        let url = redacted(&target.url);
        let message = Message {
            target,
            id,
            event_type: event_type.to_string(),
            payload,
        };
        // Counted before it is queued so the worker never sees it uncounted.
        self.inner.stats.send_modify(|s| s.pending += 1);
        match self.inner.queue.try_send(message) {
            Ok(()) => {}
            Err(e) => {
                let (reason, message) = match e {
                    mpsc::error::TrySendError::Full(message) => ("the queue is full", message),
                    mpsc::error::TrySendError::Closed(message) => {
                        ("webhook delivery has stopped", message)
                    }
                };
                tracing::warn!(url = %url, id = message.id, event_type, reason, "webhook dropped");
                self.inner.stats.send_modify(|s| {
                    s.pending = s.pending.saturating_sub(1);
                    s.dropped += 1;
                });
            }
        }
    }

    /// The policy deliveries follow.
    pub fn policy(&self) -> &WebhookPolicy {
        &self.inner.policy
    }

    /// One attempt outside the queue: re-checks the URL, signs `payload` under `id` with
    /// a fresh timestamp and posts it. Never retries; the caller decides.
    pub(crate) async fn attempt_once(
        &self,
        target: WebhookTarget,
        id: String,
        event_type: String,
        payload: Bytes,
    ) -> AttemptResult {
        let message = Message {
            target,
            id,
            event_type,
            payload,
        };
        match self.inner.attempt(&message).await {
            Attempt::Delivered(status) => AttemptResult::Delivered(status.as_u16()),
            Attempt::Retry {
                error, retry_after, ..
            } => AttemptResult::Retry { error, retry_after },
            Attempt::Permanent { error, .. } => AttemptResult::Permanent { error },
            Attempt::Shutdown => AttemptResult::Retry {
                error: "the server stopped during the attempt".into(),
                retry_after: None,
            },
        }
    }

    /// Delivery outcomes so far.
    pub fn stats(&self) -> WebhookStats {
        *self.inner.stats.borrow()
    }

    /// Waits until no message is queued or in flight (each delivered, failed or
    /// abandoned).
    pub async fn wait_idle(&self) {
        let mut stats = self.inner.stats.subscribe();
        // The sender lives in `self.inner`, so this cannot fail while `self` is here.
        let _ = stats.wait_for(|s| s.pending == 0).await;
    }
}

/// Takes messages off the queue and delivers each on a task of its own, at most
/// [`CONCURRENCY`] at once.
async fn dispatch(
    inner: std::sync::Weak<Inner>,
    mut receiver: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            message = receiver.recv() => message,
        };
        // `None`: every handle is gone.
        let Some(message) = message else { return };
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                abandon_queued(&inner, Some(message), &mut receiver);
                return;
            }
            permit = permits.clone().acquire_owned() => permit,
        };
        let Some(inner) = inner.upgrade() else { return };
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            inner.deliver(message, &shutdown).await;
        });
    }
    abandon_queued(&inner, None, &mut receiver);
}

/// At shutdown: closes the queue and counts what was still in it.
fn abandon_queued(
    inner: &std::sync::Weak<Inner>,
    first: Option<Message>,
    receiver: &mut mpsc::Receiver<Message>,
) {
    receiver.close();
    let mut abandoned = u64::from(first.is_some());
    while receiver.try_recv().is_ok() {
        abandoned += 1;
    }
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "webhook delivery stopped; queued notifications abandoned"
        );
    }
    if let Some(inner) = inner.upgrade() {
        inner.stats.send_modify(|s| {
            s.pending = s.pending.saturating_sub(abandoned);
            s.abandoned += abandoned;
        });
    }
}

impl Inner {
    /// Every attempt at one message, then its outcome logged and counted.
    async fn deliver(&self, message: Message, shutdown: &CancellationToken) {
        let url = redacted(&message.target.url);
        let id = message.id.as_str();
        let event_type = message.event_type.as_str();
        let max_attempts = self.policy.max_attempts.max(1);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let result = tokio::select! {
                biased;
                () = shutdown.cancelled() => Attempt::Shutdown,
                result = self.attempt(&message) => result,
            };
            match result {
                Attempt::Retry {
                    status,
                    error,
                    retry_after,
                } if attempt < max_attempts => {
                    let delay = backoff(&self.policy, attempt, retry_after);
                    tracing::info!(url = %url, id, event_type, attempt,
                        status = status.map(|s| s.as_u16()), error,
                        retry_in_ms = delay.as_millis() as u64,
                        "webhook attempt failed; retrying");
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => break Attempt::Shutdown,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                other => break other,
            }
        };
        self.stats.send_modify(|s| {
            s.pending = s.pending.saturating_sub(1);
            match &outcome {
                Attempt::Delivered(_) => s.delivered += 1,
                Attempt::Shutdown => s.abandoned += 1,
                Attempt::Retry { .. } | Attempt::Permanent { .. } => s.failed += 1,
            }
        });
        match outcome {
            Attempt::Delivered(status) => {
                tracing::info!(url = %url, id, event_type, attempt, status = status.as_u16(),
                    "webhook delivered");
            }
            Attempt::Shutdown => {
                tracing::warn!(url = %url, id, event_type, attempt,
                    "webhook abandoned: the server is shutting down");
            }
            Attempt::Retry { status, error, .. } => {
                tracing::warn!(url = %url, id, event_type, attempt,
                    status = status.map(|s| s.as_u16()), error,
                    "webhook failed: no attempts left");
            }
            Attempt::Permanent { status, error } => {
                tracing::warn!(url = %url, id, event_type, attempt,
                    status = status.map(|s| s.as_u16()), error,
                    "webhook failed");
            }
        }
    }

    /// One attempt: re-checks the URL, signs with the current time and posts.
    async fn attempt(&self, message: &Message) -> Attempt {
        let timeout = self.policy.timeout;
        let checked = tokio::time::timeout(timeout, self.resolve_and_check(&message.target.url));
        match checked.await {
            Err(_) => {
                return Attempt::Retry {
                    status: None,
                    error: "resolving the host timed out".into(),
                    retry_after: None,
                };
            }
            Ok(Err(UrlProblem::Invalid(error))) => {
                return Attempt::Permanent {
                    status: None,
                    error,
                };
            }
            Ok(Err(UrlProblem::Unresolved(error))) => {
                return Attempt::Retry {
                    status: None,
                    error,
                    retry_after: None,
                };
            }
            Ok(Ok(_)) => {}
        }
        let timestamp = unix_now();
        let signature = message
            .target
            .secret
            .sign(&message.id, timestamp, &message.payload);
        let mut signature = match header::HeaderValue::from_str(&signature) {
            Ok(value) => value,
            Err(_) => {
                return Attempt::Permanent {
                    status: None,
                    error: "the signature is not a valid header value".into(),
                };
            }
        };
        signature.set_sensitive(true);
        let request = self
            .http
            .post(&message.target.url)
            .timeout(timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, USER_AGENT)
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.payload.clone());
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    Attempt::Delivered(status)
                } else if status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
                {
                    Attempt::Retry {
                        status: Some(status),
                        error: format!("the receiver answered {status}"),
                        retry_after: crate::providers::http::retry_after(response.headers()),
                    }
                } else {
                    Attempt::Permanent {
                        status: Some(status),
                        error: format!("the receiver answered {status}"),
                    }
                }
            }
            Err(e) if e.is_builder() || e.is_redirect() => Attempt::Permanent {
                status: None,
                error: error_chain(&e.without_url()),
            },
            // Connection refused or reset, timeouts, broken answers: all may pass.
            Err(e) => Attempt::Retry {
                status: None,
                error: error_chain(&e.without_url()),
                retry_after: None,
            },
        }
    }

    /// Parses `url`, requires http(s) and a host, resolves the host and refuses
    /// addresses of this server.
    async fn resolve_and_check(&self, url: &str) -> Result<Vec<SocketAddr>, UrlProblem> {
        let parsed = Url::parse(url.trim())
            .map_err(|e| UrlProblem::Invalid(format!("the webhook URL is not valid: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlProblem::Invalid(format!(
                "the webhook URL must use http or https, not `{}`",
                parsed.scheme()
            )));
        }
        let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
            return Err(UrlProblem::Invalid("the webhook URL has no host".into()));
        };
        let Some(port) = parsed.port_or_known_default() else {
            return Err(UrlProblem::Invalid("the webhook URL has no port".into()));
        };
        // IPv6 literals come bracketed.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    return Err(UrlProblem::Unresolved(format!(
                        "the webhook URL's host `{host}` cannot be resolved: {e}"
                    )));
                }
            },
        };
        if addrs.is_empty() {
            return Err(UrlProblem::Unresolved(format!(
                "the webhook URL's host `{host}` resolves to no address"
            )));
        }
        if let Some(addr) = addrs.iter().find(|a| points_at(a, self.server_addr)) {
            return Err(UrlProblem::Invalid(format!(
                "the webhook URL points at this server ({addr}); webhooks must go elsewhere"
            )));
        }
        Ok(addrs)
    }
}

/// Whether a connection to `addr` would reach a server listening on `server`.
fn points_at(addr: &SocketAddr, server: SocketAddr) -> bool {
    if addr.port() != server.port() {
        return false;
    }
    let ip = addr.ip().to_canonical();
    let server_ip = server.ip().to_canonical();
    ip.is_loopback() || ip.is_unspecified() || ip == server_ip
}

/// The delay after failed attempt number `attempt` (1-based): doubling from the
/// initial backoff with up to 10% jitter, at least the receiver's `Retry-After`, capped
/// by the maximum.
pub(crate) fn backoff(
    policy: &WebhookPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    let base = policy
        .initial_backoff
        .saturating_mul(exp)
        .min(policy.max_backoff);
    let random = getrandom::u32().unwrap_or(0);
    let jitter = base.mul_f64(f64::from(random % 1000) / 10_000.0);
    (base + jitter)
        .max(retry_after.unwrap_or_default())
        .min(policy.max_backoff)
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A URL for logs, without a password it may carry.
pub(crate) fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// An error with its sources, e.g. `error sending request: connection refused`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_leak_the_key() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("parse");
        let target = WebhookTarget {
            url: "https://example.com/hook".into(),
            secret: secret.clone(),
        };
        for text in [
            format!("{secret:?}"),
            format!("{target:?}"),
            format!("{target:#?}"),
        ] {
            assert!(!text.contains("MfKQ9r8"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_honours_retry_after() {
        let policy = WebhookPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..WebhookPolicy::default()
        };
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800)] {
            let delay = backoff(&policy, attempt, None);
            let base = Duration::from_millis(base);
            assert!(
                delay >= base && delay <= base.mul_f64(1.1),
                "{attempt}: {delay:?}"
            );
        }
        assert_eq!(backoff(&policy, 5, None), Duration::from_millis(1000));
        assert_eq!(backoff(&policy, 1000, None), Duration::from_millis(1000));
        let after = backoff(&policy, 1, Some(Duration::from_millis(700)));
        assert_eq!(after, Duration::from_millis(700));
        let capped = backoff(&policy, 1, Some(Duration::from_secs(3600)));
        assert_eq!(capped, Duration::from_millis(1000));
    }

    #[test]
    fn self_pointing_addresses_are_recognised() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let loopback = addr("127.0.0.1:8080");
        assert!(points_at(&addr("127.0.0.1:8080"), loopback));
        assert!(points_at(&addr("127.0.0.2:8080"), loopback));
        assert!(points_at(&addr("[::1]:8080"), loopback));
        assert!(points_at(&addr("[::ffff:127.0.0.1]:8080"), loopback));
        assert!(points_at(&addr("0.0.0.0:8080"), loopback));
        assert!(!points_at(&addr("127.0.0.1:8081"), loopback));
        assert!(!points_at(&addr("192.0.2.1:8080"), loopback));
        let public = addr("192.0.2.7:443");
        assert!(points_at(&addr("192.0.2.7:443"), public));
        assert!(points_at(&addr("127.0.0.1:443"), public));
        assert!(!points_at(&addr("192.0.2.8:443"), public));
    }

    #[test]
    fn the_envelope_is_type_timestamp_data() {
        let envelope = Envelope {
            event_type: "turn.finished",
            timestamp: prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }
            .to_string(),
            data: serde_json::json!({"session_id": "s1"}),
        };
        assert_eq!(
            serde_json::to_string(&envelope).expect("json"),
            r#"{"type":"turn.finished","timestamp":"2023-11-14T22:13:20Z","data":{"session_id":"s1"}}"#
        );
    }

    #[test]
    fn logged_urls_hide_passwords() {
        assert_eq!(
            redacted("https://user:hunter2@example.com/x"),
            "https://user:redacted@example.com/x"
        );
        assert_eq!(redacted("https://example.com/x"), "https://example.com/x");
    }
}
