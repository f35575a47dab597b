//! Recovery of turns a stopped server left behind, and, in a cluster, the heartbeat
//! that keeps this server's leases and takes over the sessions of dead servers.
//!
//! - At start, one server recovers every session with unfinished turns: turns left
//!   RUNNING end INTERRUPTED (their partial text stays stored, marked incomplete),
//!   QUEUED turns run in their order — unless the session is in the trash (a delete
//!   that its server stopped before finishing): then they end CANCELLED too.
//! - In a cluster a server only recovers sessions whose lease it takes: at start and
//!   every heartbeat it takes the *orphaned* ones (unfinished turns, no live lease:
//!   their owner died or left), and `Chat::route` recovers a session whenever it takes
//!   its lease. Sessions owned by live servers are never touched.
//! - The heartbeat runs every third of the lease TTL. When a lease is gone from what
//!   the store says this server holds (another server took it after this one missed
//!   its heartbeats), the local live state is dropped; when the store cannot be reached
//!   for a whole TTL, every lease is presumed lost.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{Chat, chat::Route, events::EventKind, live::LiveSession};
use crate::domain::{Result, Timestamp, Turn, TurnError, TurnStatus};

/// How many orphaned sessions one heartbeat takes over; the next takes more.
const TAKEOVER_BATCH: usize = 64;

impl Chat {
    /// On start: recovers the sessions with unfinished turns this server may take.
    /// Returns how many sessions it recovered.
    pub async fn recover(self: &Arc<Self>) -> Result<usize> {
        if self.ownership.settings().is_some() {
            self.ownership.join().await?;
            return self.take_over_orphans().await;
        }
        let unfinished = self.deps.store.unfinished_turns(None).await?;
        let sessions = by_session(unfinished);
        let count = sessions.len();
        for (session_id, turns) in sessions {
            if let Route::Here(live) = self.route(&session_id).await? {
                let _sending = live.send_lock.lock().await;
                self.recover_turns(&live, turns, crate::domain::reason::SERVER_RESTARTED)
                    .await?;
            }
        }
        Ok(count)
    }

    /// The session's unfinished turns, left by the server that owned it before: run in
    /// a cluster when this server takes the session's lease (the caller holds the
    /// session's send lock, so new messages queue behind them).
    pub(crate) async fn recover_session(&self, live: &Arc<LiveSession>) -> Result<()> {
        let turns = self.deps.store.unfinished_turns(Some(&live.id)).await?;
        if turns.is_empty() {
            return Ok(());
        }
        self.recover_turns(live, turns, crate::domain::reason::SERVER_LOST)
            .await
    }

    /// Ends the session's running turns INTERRUPTED and queues its queued ones.
    async fn recover_turns(
        &self,
        live: &Arc<LiveSession>,
        turns: Vec<Turn>,
        reason: &str,
    ) -> Result<()> {
        // A session moved to the trash while its server stopped (before the delete
        // could cancel its turns): nothing of it runs again.
        let deleted = match self.deps.sessions.get(&live.id).await {
            Ok(session) => session.is_deleted(),
            Err(crate::domain::Error::NotFound { .. }) => true,
            Err(err) => return Err(err),
        };
        let mut queued = Vec::new();
        for mut turn in turns {
            if turn.status == TurnStatus::Queued && deleted {
                turn.status = TurnStatus::Cancelled;
                turn.error = Some(TurnError {
                    reason: crate::domain::session::SESSION_DELETED.into(),
                    message: "the session was moved to the trash".into(),
                });
                turn.end_time = Some(Timestamp::now());
                super::outbox::store_finished_turn(&self.deps, &turn, live.fence).await?;
                continue;
            }
            if turn.status == TurnStatus::Queued {
                queued.push(turn);
                continue;
            }
            turn.status = TurnStatus::Interrupted;
            turn.error = Some(TurnError {
                reason: reason.into(),
                message: "the server running this turn stopped".into(),
            });
            let end = Timestamp::now();
            turn.end_time = Some(end);
            turn.latency_micros = turn.start_time.map(|s| end.0 - s.0);
            // Stored before anyone hears of it.
            super::outbox::store_finished_turn(&self.deps, &turn, live.fence).await?;
            live.emit(
                Some(&turn.id),
                EventKind::TurnFinished {
                    turn: Box::new(turn.clone()),
                },
            );
            tracing::warn!(session = %turn.session_id, turn = %turn.id, reason, "turn interrupted: its server stopped");
        }
        if !queued.is_empty() {
            let mut state = live.lock();
            state.queue.extend(queued);
            live.publish_summary(&state);
            drop(state);
            live.wake.notify_one();
        }
        Ok(())
    }

    /// Takes the sessions with unfinished turns that no live server owns.
    async fn take_over_orphans(self: &Arc<Self>) -> Result<usize> {
        let orphans = self.deps.store.orphaned_sessions(TAKEOVER_BATCH).await?;
        let mut taken = 0;
        for session_id in orphans {
            match self.route(&session_id).await {
                Ok(Route::Here(_)) => {
                    taken += 1;
                    tracing::info!(session = %session_id, "took over the session of a stopped server");
                }
                Ok(Route::Elsewhere(_)) => {}
                Err(err) => {
                    tracing::warn!(session = %session_id, error = %err, "cannot take over the session");
                }
            }
        }
        Ok(taken)
    }

    /// Starts the cluster heartbeat (a tracked task that stops with the server).
    pub async fn start_cluster(self: &Arc<Self>) {
        let Some(settings) = self.ownership.settings().cloned() else {
            return;
        };
        super::changes::relay(
            super::changes::Relayed {
                sessions: self.deps.sessions.clone(),
                live: self.deps.live.clone(),
                models: self.deps.models.clone(),
            },
            &self.deps.store,
            &settings.server_id,
            &self.drivers,
            &self.deps.shutdown,
        )
        .await;
        let chat = self.clone();
        self.drivers.spawn(async move {
            let interval = settings.heartbeat_interval();
            let mut last_renewed = Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = chat.deps.shutdown.cancelled() => return,
                }
                chat.heartbeat(&mut last_renewed, settings.lease_ttl).await;
            }
        });
    }

    /// One heartbeat: renew, drop what was lost, take over orphans.
    async fn heartbeat(self: &Arc<Self>, last_renewed: &mut Instant, ttl: Duration) {
        // Only sessions live before the renewal started can be judged by its answer.
        let before: HashMap<String, i64> = self
            .map()
            .iter()
            .filter(|(_, live)| !live.fence.is_none())
            .map(|(id, live)| (id.clone(), live.fence.0))
            .collect();
        match self.ownership.heartbeat().await {
            Ok(held) => {
                *last_renewed = Instant::now();
                let held: HashMap<&str, i64> = held
                    .iter()
                    .map(|lease| (lease.session_id.as_str(), lease.epoch))
                    .collect();
                for (id, epoch) in &before {
                    if held.get(id.as_str()) != Some(epoch) {
                        self.forget(id, *epoch);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cluster heartbeat failed");
                if last_renewed.elapsed() >= ttl {
                    for (id, epoch) in &before {
                        self.forget(id, *epoch);
                    }
                }
            }
        }
        if let Err(err) = self.take_over_orphans().await {
            tracing::warn!(error = %err, "cannot look for orphaned sessions");
        }
    }
}

/// Unfinished turns grouped by session, sessions in order of their oldest turn.
fn by_session(turns: Vec<Turn>) -> Vec<(String, Vec<Turn>)> {
    let mut sessions: Vec<(String, Vec<Turn>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for turn in turns {
        let at = *index.entry(turn.session_id.clone()).or_insert_with(|| {
            sessions.push((turn.session_id.clone(), Vec::new()));
            sessions.len() - 1
        });
        sessions[at].1.push(turn);
    }
    sessions
}
