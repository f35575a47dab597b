//! Retention: the background pass that purges sessions for good, so neither the trash
//! nor the database grows without bound.
//!
//! - What it purges: sessions in the trash whose `expire_time` has come (DeleteSession
//!   set it to the delete time plus `trash_retention_days`), and, when
//!   `session_retention_days` is set, sessions with no activity for that long, in the
//!   trash or not. Purging deletes a session with its messages, turns and lease, as
//!   PurgeSession does.
//! - When: once when the server starts serving, then every `interval`. A pass purges at
//!   most [`PURGE_BATCH`] sessions per store call and makes at most [`MAX_BATCHES`]
//!   calls, so a backlog drains over a few passes in short transactions.
//! - Never from under a live session: the store skips sessions with queued or running
//!   turns and sessions whose lease is live (another server of the cluster has them
//!   live), and this server passes the sessions it has live (`keep`). Such a session is
//!   purged by a later pass, once it is live nowhere.
//! - Several servers on one database each run the pass; the store gives each session to
//!   one of them (Postgres: `FOR UPDATE SKIP LOCKED`), so they never fight over rows.
//! - Each purged session is announced as deleted (WatchSessions, on every server).
//! - The task is tracked with the session drivers and stops on the runtime's shutdown
//!   token; a pass in flight finishes its store call first.

use std::{sync::Arc, time::Duration};

use super::{Chat, SessionChange};
use crate::{
    domain::{Result, Timestamp, time::micros},
    store::PurgeRule,
};

/// Sessions one store call purges at most.
pub const PURGE_BATCH: usize = 100;
/// Store calls one pass makes at most (while each purges a full batch).
pub const MAX_BATCHES: usize = 10;

/// When and what the retention pass purges (config `retention_interval_seconds`,
/// `session_retention_days`; the trash's own retention is in each `expire_time`).
#[derive(Clone, Copy, Debug)]
pub struct RetentionPolicy {
    pub interval: Duration,
    /// Purge sessions inactive for longer than this, in the trash or not.
    pub inactive: Option<Duration>,
}

impl Chat {
    /// Starts the retention task (tracked; stops with the runtime).
    pub fn start_retention(self: &Arc<Self>, policy: RetentionPolicy) {
        let chat = self.clone();
        self.drivers.spawn(async move {
            loop {
                if let Err(err) = chat.purge_pass(&policy).await {
                    tracing::warn!(error = %err, "retention pass failed; trying again at the next one");
                }
                tokio::select! {
                    () = chat.deps.shutdown.cancelled() => return,
                    () = tokio::time::sleep(policy.interval) => {}
                }
            }
        });
    }

    /// One retention pass; returns how many sessions it purged.
    pub async fn purge_pass(&self, policy: &RetentionPolicy) -> Result<usize> {
        let mut purged_total = 0;
        for _ in 0..MAX_BATCHES {
            if self.deps.shutdown.is_cancelled() {
                break;
            }
            let now = Timestamp::now();
            let rule = PurgeRule {
                expired_at: now,
                inactive_before: policy
                    .inactive
                    .map(|d| Timestamp(now.0.saturating_sub(micros(d)))),
                keep: self.map().keys().cloned().collect(),
                limit: PURGE_BATCH,
            };
            let purged = self.deps.store.purge_sessions(&rule).await?;
            for id in &purged {
                tracing::debug!(session = %id, "session purged by retention");
                self.deps
                    .sessions
                    .publish(SessionChange::Deleted(id.clone()));
            }
            purged_total += purged.len();
            if purged.len() < PURGE_BATCH {
                break;
            }
        }
        if purged_total > 0 {
            tracing::info!(
                sessions = purged_total,
                "retention purged sessions (expired in the trash or inactive)"
            );
        }
        Ok(purged_total)
    }
}
