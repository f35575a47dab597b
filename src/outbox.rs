//! The webhook delivery worker: sends what the durable outbox holds.
//!
//! Contract:
//! - Every live server runs one worker. It claims due deliveries from the store (a claim
//!   lasts [`claim_lease`]; servers claiming at once get disjoint rows), sends each with
//!   the Standard Webhooks signing and HTTP code of [`crate::webhooks`] (the same
//!   `webhook-id` and body on every attempt, a fresh timestamp and signature) and records
//!   the outcome: delivered; pending again after an exponential backoff (the policy's,
//!   at least the receiver's `Retry-After`); or dead once the policy's attempts are spent
//!   or the failure is permanent (a 4xx other than 408/429, a refused URL).
//! - It wakes when deliveries are stored on this server ([`crate::runtime::Outbox`]'s
//!   `Notify`) and polls every [`POLL`] otherwise, which finds rows other servers stored
//!   and retries that came due.
//! - Nothing is lost on restart: rows are durable, and a claim whose server died expires
//!   after [`claim_lease`], making the row due again (delivery is at least once; receivers
//!   drop duplicates by `webhook-id`). On a clean stop, attempts in flight are cut short and
//!   recorded as due again at once (the cut attempt counts: it may have reached the
//!   receiver).
//! - It refreshes the `octo_webhook_deliveries` gauges (by state) every [`COUNT_EVERY`],
//!   and within about [`POLL`] after it recorded an attempt.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    domain::{
        Timestamp,
        outbox::{AttemptOutcome, OutboxDelivery},
    },
    metrics::Metrics,
    store::Store,
    webhooks::{AttemptResult, WebhookSecret, WebhookTarget, Webhooks, backoff, redacted},
};

/// How often the outbox is looked at without a wake-up: finds other servers' rows and
/// retries that came due. A second keeps the added delay small for a cheap indexed query.
pub const POLL: Duration = Duration::from_secs(1);

/// Deliveries in flight at once per server.
const CONCURRENCY: usize = 16;

/// How often the metrics' counts by state are refreshed (a GROUP BY over the table).
const COUNT_EVERY: Duration = Duration::from_secs(10);

/// How long a claim lasts: longer than one attempt can take (resolving and posting are
/// each bounded by the policy's timeout), so a live claimer always records before its
/// claim expires; short enough that a dead server's claims come due again soon.
pub fn claim_lease(webhooks: &Webhooks) -> Duration {
    webhooks.policy().timeout * 2 + Duration::from_secs(5)
}

/// A running worker.
pub struct OutboxWorker {
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

struct Worker {
    store: Arc<dyn Store>,
    webhooks: Webhooks,
    claimer: String,
    wake: Arc<Notify>,
    metrics: Option<Arc<Metrics>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Set when an attempt was recorded since the counts were last refreshed.
    recorded: AtomicBool,
}

impl OutboxWorker {
    /// Starts the worker on the current runtime. `claimer` names this server in claims
    /// (unique per process); `wake` is notified when deliveries are stored here.
    pub fn start(
        store: Arc<dyn Store>,
        webhooks: Webhooks,
        claimer: String,
        wake: Arc<Notify>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let worker = Arc::new(Worker {
            store,
            webhooks,
            claimer,
            wake,
            metrics,
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            recorded: AtomicBool::new(false),
        });
        tasks.spawn(worker.run());
        Self { tasks, shutdown }
    }

    /// Stops claiming, cuts attempts in flight short (recording them as due again) and
    /// waits up to `grace` for that.
    pub async fn stop(&self, grace: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("webhook deliveries still stopping after the grace period");
        }
    }
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let lease = claim_lease(&self.webhooks);
        let mut counted: Option<tokio::time::Instant> = None;
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            let stale = counted.is_none_or(|t| {
                t.elapsed() >= COUNT_EVERY
                    || (t.elapsed() >= POLL && self.recorded.load(Ordering::Relaxed))
            });
            if stale {
                self.recorded.store(false, Ordering::Relaxed);
                self.refresh_counts().await;
                counted = Some(tokio::time::Instant::now());
            }
            let free = permits.available_permits();
            let mut more = false;
            if free > 0 {
                match self
                    .store
                    .claim_due_deliveries(Timestamp::now(), &self.claimer, free, lease)
                    .await
                {
                    Ok(claimed) => {
                        more = claimed.len() == free;
                        for delivery in claimed {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                return;
                            };
                            let this = self.clone();
                            self.tasks.spawn(this.deliver(delivery, permit));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot claim webhook deliveries");
                    }
                }
            }
            if more && permits.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn refresh_counts(&self) {
        let Some(metrics) = &self.metrics else { return };
        match self.store.delivery_counts().await {
            Ok(counts) => metrics.set_webhook_deliveries(counts),
            Err(err) => tracing::warn!(error = %err, "cannot count webhook deliveries"),
        }
    }

    /// One attempt at a claimed delivery, and its outcome recorded.
    async fn deliver(self: Arc<Self>, delivery: OutboxDelivery, _permit: OwnedSemaphorePermit) {
        let url = redacted(&delivery.url);
        let id = delivery.id.clone();
        let attempt = delivery.attempts.saturating_add(1);
        let policy = self.webhooks.policy().clone();
        let outcome = match WebhookSecret::parse(&delivery.secret) {
            Err(err) => AttemptOutcome::Dead {
                error: format!("the stored webhook secret is invalid: {err}"),
            },
            Ok(secret) => {
                let target = WebhookTarget {
                    url: delivery.url.clone(),
                    secret,
                };
                let sent = tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => None,
                    result = self.webhooks.attempt_once(
                        target,
                        delivery.id.clone(),
                        delivery.event_type.clone(),
                        Bytes::from(delivery.payload.clone()),
                    ) => Some(result),
                };
                match sent {
                    // Cut short by a clean stop: due again at once, on whichever server.
                    None => AttemptOutcome::Retry {
                        at: Timestamp::now(),
                        error: "the server stopped during the attempt".into(),
                    },
                    Some(AttemptResult::Delivered(status)) => {
                        tracing::info!(url = %url, id, event_type = delivery.event_type, attempt, status, "webhook delivered");
                        AttemptOutcome::Delivered
                    }
                    Some(AttemptResult::Retry { error, retry_after })
                        if attempt < policy.max_attempts =>
                    {
                        let delay = backoff(&policy, attempt, retry_after);
                        tracing::info!(url = %url, id, attempt, error, delay_s = delay.as_secs_f64(), "webhook attempt failed; retrying");
                        AttemptOutcome::Retry {
                            at: Timestamp::now().plus(delay),
                            error,
                        }
                    }
                    Some(AttemptResult::Retry { error, .. }) => AttemptOutcome::Dead {
                        error: format!(
                            "{error} (attempt {attempt} of {}; none left)",
                            policy.max_attempts
                        ),
                    },
                    Some(AttemptResult::Permanent { error }) => AttemptOutcome::Dead { error },
                }
            }
        };
        if let AttemptOutcome::Dead { error } = &outcome {
            tracing::warn!(url = %url, id, event_type = delivery.event_type, attempt, error, "webhook dead: an operator may retry it (octo webhooks retry)");
        }
        match self
            .store
            .record_attempt(&id, &self.claimer, Timestamp::now(), &outcome)
            .await
        {
            Ok(true) => self.recorded.store(true, Ordering::Relaxed),
            Ok(false) => {
                tracing::warn!(
                    id,
                    "webhook attempt not recorded: the claim expired and another server took the delivery"
                );
            }
            Err(err) => {
                tracing::error!(id, error = %err, "cannot record a webhook attempt; the claim will expire and it is sent again");
            }
        }
    }
}
