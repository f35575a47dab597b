//! Chat: messages, turns and event streams of sessions. Routes every command to the
//! server that owns the session (this one, or another through [`Peers`]), starts a
//! session's live state where it is owned, applies the busy policy of each message,
//! and serves subscriptions.
//!
//! Ownership (see `cluster`): a session's live state exists on one server at a time.
//! `route` takes the lease when nobody holds it; commands from a client that reach a
//! non-owner are forwarded once, and the owner never forwards a peer's command again
//! (it answers NOT_OWNER, and the caller looks the owner up again, at most
//! [`MAX_HOPS`] times).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio_util::sync::CancellationToken;

use super::{
    Deps,
    cluster::{NoPeers, Owner, Ownership, Peers, Remote, is_moved, not_owner},
    events::{Confirmation, Decision, Event, EventKind, WireCache},
    feed::{EventFeed, Opened, Source},
    live::{ActiveTurn, LiveSession},
    memory::Quiet,
    turn,
};
use crate::domain::{
    Error, Part, Resource, Result, Session, SessionStatus, Timestamp, Turn, TurnError, TurnStatus,
};

/// How often a command follows a moving lease before it gives up with UNAVAILABLE
/// (each hop is one lease read and one call; leases move only on takeover or idling).
pub(crate) const MAX_HOPS: usize = 4;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BusyPolicy {
    #[default]
    Enqueue,
    Steer,
    Interrupt,
    Reject,
}

#[derive(Clone, Debug)]
pub struct SendRequest {
    pub session_id: String,
    pub parts: Vec<Part>,
    pub on_busy: BusyPolicy,
    /// A model for this turn only.
    pub model: Option<String>,
    /// Nobody can answer questions during the turn this starts (SendMessageAndWait, a
    /// schedule run): the model is not offered `ask_user`. (A steered message joins a
    /// running turn as that turn is.)
    pub unattended: bool,
}

/// Who made a command: a client (forwarded to the owner when that is another server)
/// or another server forwarding it (run here, or refused with NOT_OWNER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Client,
    Peer,
}

/// Where a session's commands run.
pub(crate) enum Route {
    Here(Arc<LiveSession>),
    Elsewhere(Remote),
}

/// Where a session is live, without making it live.
pub(super) enum Located {
    Here(Arc<LiveSession>),
    Elsewhere(Remote),
    Idle,
}

pub struct Chat {
    pub(crate) deps: Arc<Deps>,
    live: Mutex<HashMap<String, Arc<LiveSession>>>,
    /// Every driver task (and the cluster heartbeat), so shutdown can wait for them.
    pub(crate) drivers: tokio_util::task::TaskTracker,
    pub(crate) ownership: Ownership,
    pub(crate) peers: Arc<dyn Peers>,
    /// Running turns, for giving memory back after a burst.
    quiet: Quiet,
}

impl Chat {
    /// One server: it owns every session.
    pub fn new(deps: Arc<Deps>) -> Arc<Chat> {
        let ownership = Ownership::solo(deps.store.clone());
        Self::with_ownership(deps, ownership, Arc::new(NoPeers))
    }

    /// A server of a cluster (see `cluster`); call `start_cluster` once serving.
    pub fn with_ownership(
        deps: Arc<Deps>,
        ownership: Ownership,
        peers: Arc<dyn Peers>,
    ) -> Arc<Chat> {
        Arc::new(Chat {
            deps,
            live: Mutex::new(HashMap::new()),
            drivers: tokio_util::task::TaskTracker::new(),
            ownership,
            peers,
            quiet: Quiet::default(),
        })
    }

    pub(crate) fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveSession>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions with live state on this server (a turn running or queued, or subscribers).
    pub fn live_count(&self) -> usize {
        self.map().len()
    }

    /// Sessions with a turn running or queued on this server.
    pub fn busy_count(&self) -> usize {
        self.map()
            .values()
            .filter(|live| live.lock().is_busy())
            .count()
    }

    /// Where the session's commands run: its live state here (started, with its driver,
    /// when this server takes the lease), or the server holding its lease.
    pub(crate) async fn route(self: &Arc<Self>, id: &str) -> Result<Route> {
        if let Some(live) = self.map().get(id) {
            return Ok(Route::Here(live.clone()));
        }
        let fence = match self.ownership.claim(id).await? {
            Owner::Here(fence) => fence,
            Owner::Elsewhere(remote) => return Ok(Route::Elsewhere(remote)),
        };
        let started = LiveSession::start(id, self.deps.clone(), fence).await?;
        // Sends wait until the turns a previous owner left are recovered and queued
        // first, in their order.
        let recovering = started.send_lock.lock().await;
        {
            let mut map = self.map();
            if let Some(existing) = map.get(id) {
                // Another caller started it first; ours was never used.
                return Ok(Route::Here(existing.clone()));
            }
            map.insert(id.to_owned(), started.clone());
            let chat = self.clone();
            let driver = started.clone();
            self.drivers.spawn(async move { chat.drive(driver).await });
        }
        if !fence.is_none() {
            // In a cluster the session may come from a server that died: what it left
            // running ends INTERRUPTED, what it left queued runs here. (One server
            // recovers everything once, at start: `recover`.)
            if let Err(err) = self.recover_session(&started).await {
                tracing::warn!(session = %id, error = %err, "cannot recover the session's turns");
            }
        }
        drop(recovering);
        Ok(Route::Here(started))
    }

    /// `route` for a caller: a peer's command never goes on to a third server.
    pub(crate) async fn route_for(self: &Arc<Self>, id: &str, caller: Caller) -> Result<Route> {
        match self.route(id).await? {
            Route::Elsewhere(_) if caller == Caller::Peer => Err(not_owner(id)),
            route => Ok(route),
        }
    }

    /// Where the session is live, without taking its lease: commands that only act on
    /// live state (cancel, clear, respond) need not make an idle session live.
    pub(super) async fn locate(&self, id: &str, caller: Caller) -> Result<Located> {
        if let Some(live) = self.map().get(id) {
            return Ok(Located::Here(live.clone()));
        }
        match self.ownership.holder(id).await? {
            Some(_) if caller == Caller::Peer => Err(not_owner(id)),
            Some(remote) => Ok(Located::Elsewhere(remote)),
            None => Ok(Located::Idle),
        }
    }

    /// The driver: runs queued turns one after the other; retires when idle.
    async fn drive(self: Arc<Self>, live: Arc<LiveSession>) {
        tracing::debug!(session = %live.id, "session live");
        loop {
            if self.deps.shutdown.is_cancelled() {
                return;
            }
            // Deleted, or moved to another server.
            if live.lock().retired {
                self.retired(&live).await;
                return;
            }
            let next = {
                let mut state = live.lock();
                if state.active.is_none() {
                    state.queue.pop_front().map(|turn| {
                        let cancel = CancellationToken::new();
                        let unattended = state.unattended.remove(&turn.id);
                        let origin = state.origins.remove(&turn.id);
                        state.active =
                            Some(ActiveTurn::new(turn.clone(), cancel.clone(), unattended));
                        live.publish_summary(&state);
                        (turn, cancel, origin)
                    })
                } else {
                    None
                }
            };
            match next {
                Some((turn, cancel, origin)) => {
                    self.quiet.turn_started();
                    turn::run(&live, turn, cancel, origin).await;
                    if self.quiet.turn_ended() {
                        self.trim_when_quiet();
                    }
                    let retired = {
                        let mut state = live.lock();
                        state.active = None;
                        if !state.retired {
                            live.publish_summary(&state);
                        }
                        state.retired
                    };
                    if retired {
                        // Deleted or moved while the turn ran: nothing to publish.
                        self.retired(&live).await;
                        return;
                    }
                    self.publish_session(&live).await;
                }
                None => {
                    tokio::select! {
                        () = live.wake.notified() => {}
                        () = self.deps.shutdown.cancelled() => return,
                        () = live.moved.cancelled() => return,
                        () = tokio::time::sleep(self.deps.limits.idle) => {
                            if self.try_retire(&live) {
                                if let Err(err) = live.store_exact_sequence().await {
                                    tracing::warn!(session = %live.id, error = %err, "cannot store the event sequence");
                                }
                                if let Err(err) = self.ownership.release(&live.id, live.fence).await {
                                    tracing::warn!(session = %live.id, error = %err, "cannot release the session's lease");
                                }
                                tracing::debug!(session = %live.id, "session idle");
                                self.trim_when_quiet();
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// A driver whose live state was retired by a deletion gives the session's lease
    /// back (as an idle one does), so the session is live nowhere: a session in the
    /// trash must not stay leased, or retention would never purge it. One that moved
    /// to another server (`moved`) or was retired idle has nothing to give back.
    async fn retired(&self, live: &LiveSession) {
        if live.moved.is_cancelled() || self.deps.shutdown.is_cancelled() {
            return;
        }
        if let Err(err) = live.store_exact_sequence().await {
            tracing::debug!(session = %live.id, error = %err, "cannot store the event sequence of a deleted session");
        }
        if let Err(err) = self.ownership.release(&live.id, live.fence).await {
            tracing::warn!(session = %live.id, error = %err, "cannot release the deleted session's lease");
        }
    }

    /// Schedules giving freed memory back once no turn runs (see `memory`).
    fn trim_when_quiet(self: &Arc<Self>) {
        if self.quiet.schedule() {
            let chat = self.clone();
            self.drivers.spawn(async move {
                chat.quiet.trim_when_quiet(chat.deps.shutdown.clone()).await;
            });
        }
    }

    fn try_retire(&self, live: &LiveSession) -> bool {
        let mut map = self.map();
        // A send in progress will enqueue: not idle.
        let Ok(_send) = live.send_lock.try_lock() else {
            return false;
        };
        let mut state = live.lock();
        if state.is_busy() || state.is_watched() {
            return false;
        }
        state.retired = true;
        map.remove(&*live.id);
        live.clear_summary();
        true
    }

    /// Drops the live state of a session this server no longer owns (its lease was
    /// taken after a missed heartbeat): the running turn stops (its fenced writes are
    /// refused already), queued turns stay stored for the new owner, and subscribers
    /// here move to the new owner (`EventFeed` resumes by sequence).
    pub(crate) fn forget(&self, session_id: &str, epoch: i64) {
        let live = {
            let mut map = self.map();
            match map.get(session_id) {
                Some(live) if live.fence.0 == epoch => map.remove(session_id),
                _ => None,
            }
        };
        let Some(live) = live else {
            return;
        };
        live.retire(&mut live.lock());
        live.clear_summary();
        live.moved.cancel();
        tracing::warn!(session = %session_id, "lost the session's lease to another server");
    }

    /// Tells watchers of the session list and of the session that it changed.
    async fn publish_session(&self, live: &LiveSession) {
        if let Ok(session) = self.deps.sessions.get(&live.id).await {
            live.emit(
                None,
                EventKind::SessionUpdated {
                    session: Box::new(session.clone()),
                },
            );
            self.deps.sessions.publish_updated(session);
        }
    }

    /// A feed of the session's events after `after_sequence`: snapshot first.
    pub async fn subscribe(
        self: &Arc<Self>,
        session_id: &str,
        after_sequence: i64,
    ) -> Result<EventFeed> {
        self.subscribe_from(session_id, after_sequence, Caller::Client)
            .await
    }

    /// `subscribe`, for `caller`.
    pub async fn subscribe_from(
        self: &Arc<Self>,
        session_id: &str,
        after_sequence: i64,
        caller: Caller,
    ) -> Result<EventFeed> {
        if after_sequence < 0 {
            return Err(Error::invalid("after_sequence", "must not be negative"));
        }
        let opened = self.open(session_id, after_sequence, caller).await?;
        Ok(EventFeed::new(self.clone(), session_id, opened, caller))
    }

    /// The session's events after `after_sequence`, from wherever it is owned.
    pub(crate) async fn open(
        self: &Arc<Self>,
        session_id: &str,
        after_sequence: i64,
        caller: Caller,
    ) -> Result<Opened> {
        let session = self.deps.sessions.get(session_id).await?;
        // A session in the trash has nothing live to follow, and following it would
        // make it live (a lease): read its history with ListMessages, or restore it.
        session.check_not_deleted()?;
        let mut hops = 0;
        loop {
            let live = match self.route_for(session_id, caller).await? {
                Route::Here(live) => live,
                Route::Elsewhere(remote) => {
                    match self
                        .peers
                        .subscribe(&remote, session_id, after_sequence)
                        .await
                    {
                        Ok(events) => {
                            return Ok(Opened {
                                source: Source::Remote(events),
                                pending: Default::default(),
                                delivered: after_sequence,
                            });
                        }
                        Err(err) if is_moved(&err) && hops < MAX_HOPS => {
                            hops += 1;
                            continue;
                        }
                        Err(err) => return Err(err),
                    }
                }
            };
            let subscription = {
                if live.lock().retired {
                    continue;
                }
                live.subscribe(session.clone(), after_sequence)
            };
            // Replayed events advance `delivered` as they go out; with nothing to replay,
            // live events start after the snapshot.
            let delivered = match (&subscription.reset, subscription.replay.is_empty()) {
                (Some(_), _) => 0,
                (None, true) => subscription.snapshot.last_sequence,
                (None, false) => after_sequence,
            };
            let mut pending = std::collections::VecDeque::new();
            pending.push_back(Arc::new(Event {
                sequence: 0,
                session_id: live.id.clone(),
                turn_id: None,
                time: Timestamp::now(),
                kind: EventKind::Snapshot(Box::new(subscription.snapshot)),
                wire: WireCache::default(),
            }));
            if let Some(reset) = subscription.reset {
                pending.push_back(Arc::new(reset));
            }
            pending.extend(subscription.replay);
            return Ok(Opened {
                source: Source::Local(subscription.live),
                pending,
                delivered,
            });
        }
    }

    pub async fn cancel_turn(&self, session_id: &str, turn_id: &str) -> Result<Turn> {
        self.cancel_turn_from(session_id, turn_id, Caller::Client)
            .await
    }

    /// `cancel_turn`, for `caller`.
    pub async fn cancel_turn_from(
        &self,
        session_id: &str,
        turn_id: &str,
        caller: Caller,
    ) -> Result<Turn> {
        let mut hops = 0;
        loop {
            let live = match self.locate(session_id, caller).await? {
                Located::Here(live) => Some(live),
                Located::Idle => None,
                Located::Elsewhere(remote) => {
                    match self.peers.cancel_turn(&remote, session_id, turn_id).await {
                        Err(err) if is_moved(&err) && hops < MAX_HOPS => {
                            hops += 1;
                            continue;
                        }
                        answer => return answer,
                    }
                }
            };
            return self.cancel_turn_here(live, session_id, turn_id).await;
        }
    }

    async fn cancel_turn_here(
        &self,
        live: Option<Arc<LiveSession>>,
        session_id: &str,
        turn_id: &str,
    ) -> Result<Turn> {
        if let Some(live) = live {
            enum Found {
                Queued(Turn),
                Running(Turn),
                No,
            }
            let found = {
                let mut state = live.lock();
                let queued = state.queue.iter().position(|t| t.id == turn_id);
                // Out of the queue first, so the driver cannot start it.
                if let Some(mut turn) = queued.and_then(|p| state.queue.remove(p)) {
                    state.unattended.remove(&turn.id);
                    state.origins.remove(&turn.id);
                    finish_unstarted(&mut turn, TurnStatus::Cancelled, None);
                    live.publish_summary(&state);
                    Found::Queued(turn)
                } else if let Some(active) = state.active.as_ref().filter(|a| a.turn.id == turn_id)
                {
                    active.cancel.cancel();
                    Found::Running(active.turn.clone())
                } else {
                    Found::No
                }
            };
            match found {
                Found::Queued(turn) => {
                    // Stored before anyone hears of it: a crash cannot resurrect it.
                    super::outbox::store_finished_turn(&self.deps, &turn, live.fence).await?;
                    live.emit(
                        Some(turn_id),
                        EventKind::TurnFinished {
                            turn: Box::new(turn.clone()),
                        },
                    );
                    return Ok(turn);
                }
                Found::Running(turn) => return Ok(turn),
                Found::No => {}
            }
        }
        // Finished (or never live here): idempotent, the turn as it is.
        self.get_turn(session_id, turn_id).await
    }

    pub async fn clear_queue(&self, session_id: &str) -> Result<Vec<Turn>> {
        self.clear_queue_from(session_id, Caller::Client).await
    }

    /// `clear_queue`, for `caller`.
    pub async fn clear_queue_from(&self, session_id: &str, caller: Caller) -> Result<Vec<Turn>> {
        self.deps.sessions.get(session_id).await?;
        let mut hops = 0;
        let live = loop {
            match self.locate(session_id, caller).await? {
                Located::Here(live) => break live,
                Located::Idle => return Ok(Vec::new()),
                Located::Elsewhere(remote) => {
                    match self.peers.clear_queue(&remote, session_id).await {
                        Err(err) if is_moved(&err) && hops < MAX_HOPS => hops += 1,
                        answer => return answer,
                    }
                }
            }
        };
        let cancelled: Vec<Turn> = {
            let mut state = live.lock();
            let mut turns: Vec<Turn> = state.queue.drain(..).collect();
            state.unattended.clear();
            state.origins.clear();
            for turn in &mut turns {
                finish_unstarted(turn, TurnStatus::Cancelled, None);
            }
            live.publish_summary(&state);
            turns
        };
        // Stored before anyone hears of it: a crash cannot resurrect them.
        for turn in &cancelled {
            super::outbox::store_finished_turn(&self.deps, turn, live.fence).await?;
            live.emit(
                Some(&turn.id),
                EventKind::TurnFinished {
                    turn: Box::new(turn.clone()),
                },
            );
        }
        Ok(cancelled)
    }

    pub async fn respond(
        &self,
        session_id: &str,
        confirmation_id: &str,
        decision: Decision,
    ) -> Result<Confirmation> {
        self.respond_from(session_id, confirmation_id, decision, Caller::Client)
            .await
    }

    /// `respond`, for `caller`.
    pub async fn respond_from(
        &self,
        session_id: &str,
        confirmation_id: &str,
        decision: Decision,
        caller: Caller,
    ) -> Result<Confirmation> {
        let not_found = || {
            Error::not_found(
                Resource::Confirmation,
                format!("sessions/{session_id}/confirmations/{confirmation_id}"),
            )
        };
        let mut hops = 0;
        let live = loop {
            match self.locate(session_id, caller).await? {
                Located::Here(live) => break live,
                Located::Idle => return Err(not_found()),
                Located::Elsewhere(remote) => {
                    match self
                        .peers
                        .respond(&remote, session_id, confirmation_id, decision)
                        .await
                    {
                        Err(err) if is_moved(&err) && hops < MAX_HOPS => hops += 1,
                        answer => return answer,
                    }
                }
            }
        };
        let confirmation = {
            let mut state = live.lock();
            let active = state.active.as_mut().ok_or_else(not_found)?;
            let position = active
                .confirmations
                .iter()
                .position(|c| c.confirmation.id == confirmation_id)
                .ok_or_else(not_found)?;
            let mut pending = active.confirmations.remove(position);
            let turn_id = active.turn.id.clone();
            if decision == Decision::AllowAlways {
                state
                    .allow_always
                    .insert(pending.confirmation.call.tool.clone());
            }
            if let Some(answer) = pending.answer.take() {
                let _ = answer.send(decision);
            }
            live.emit_locked(
                &mut state,
                Some(&turn_id),
                EventKind::ConfirmationResolved {
                    confirmation_id: confirmation_id.to_owned(),
                    decision: Some(decision),
                },
            );
            live.publish_summary(&state);
            pending.confirmation
        };
        if decision == Decision::AllowAlways {
            // Remembered beyond this live state: idle retirement and restarts keep it.
            self.deps
                .store
                .allow_tool(session_id, &confirmation.call.tool, live.fence)
                .await?;
        }
        Ok(confirmation)
    }

    /// Moves a session to the trash (AIP-164; `etag` must match when given): first the
    /// store marks it (from then on no message joins it), then its live state, wherever
    /// it is owned, ends: queued turns are cancelled, the running turn is cancelled
    /// (killing its processes), subscribers are told (`session_deleted`). Returns the
    /// session as trashed; `None` when it does not exist and `allow_missing`.
    ///
    /// A session already in the trash is NOT_FOUND unless `allow_missing` (then it is
    /// returned as it is); its live state is ended again first, so a delete whose first
    /// attempt could not reach the owner is finished by a retry.
    pub async fn delete_session(
        &self,
        session_id: &str,
        etag: &str,
        allow_missing: bool,
    ) -> Result<Option<Session>> {
        let session = match self.deps.sessions.get(session_id).await {
            Ok(session) => session,
            Err(Error::NotFound { .. }) if allow_missing => return Ok(None),
            Err(err) => return Err(err),
        };
        if session.is_deleted() {
            self.end_session(session_id, Caller::Client).await?;
            return if allow_missing {
                Ok(Some(session))
            } else {
                Err(Error::not_found(
                    Resource::Session,
                    format!("sessions/{session_id}"),
                ))
            };
        }
        let mut trashed = self.deps.sessions.trash(session_id, etag).await?;
        self.end_session(session_id, Caller::Client).await?;
        trashed.status = SessionStatus::Idle;
        trashed.queue_depth = 0;
        trashed.active_turn = None;
        Ok(Some(trashed))
    }

    /// Restores a session from the trash (AIP-164 Undelete).
    pub async fn undelete_session(&self, session_id: &str) -> Result<Session> {
        self.deps.sessions.restore(session_id).await
    }

    /// Purges a session in the trash for good (`etag` must match when given): its live
    /// state ends wherever it is (nothing should be live), then it goes with its
    /// history. FAILED_PRECONDITION (`SESSION_NOT_DELETED`) if it is not in the trash.
    pub async fn purge_session(&self, session_id: &str, etag: &str) -> Result<()> {
        let session = self.deps.sessions.get(session_id).await?;
        if !session.is_deleted() {
            return Err(crate::domain::session::session_not_deleted(session_id));
        }
        session.check_etag(etag)?;
        self.end_session(session_id, Caller::Client).await?;
        self.deps.sessions.purge(session_id).await
    }

    /// Ends the session's live state wherever it is owned (it is being deleted).
    pub async fn end_session(&self, session_id: &str, caller: Caller) -> Result<()> {
        let mut hops = 0;
        loop {
            match self.locate(session_id, caller).await? {
                Located::Here(_) | Located::Idle => {
                    self.session_deleted(session_id).await;
                    return Ok(());
                }
                Located::Elsewhere(remote) => {
                    match self.peers.end_session(&remote, session_id).await {
                        Err(err) if is_moved(&err) && hops < MAX_HOPS => hops += 1,
                        answer => return answer,
                    }
                }
            }
        }
    }

    /// Ends live state of a deleted session here: queued turns end CANCELLED (stored,
    /// so no restart runs them), the running turn is cancelled (it stores its own end),
    /// the driver stops and gives the lease back, subscribers get `session_deleted`.
    /// Waits for a send in progress first, so a message stored just before the session
    /// moved to the trash has its turn queued, and cancelled, here too.
    pub(crate) async fn session_deleted(&self, session_id: &str) {
        let Some(live) = self.map().remove(session_id) else {
            return;
        };
        let _sending = live.send_lock.lock().await;
        let cancelled: Vec<Turn> = {
            let mut state = live.lock();
            let mut turns: Vec<Turn> = state.queue.drain(..).collect();
            for turn in &mut turns {
                finish_unstarted(turn, TurnStatus::Cancelled, Some(deleted_error()));
            }
            live.retire(&mut state);
            turns
        };
        for turn in &cancelled {
            if let Err(err) = super::outbox::store_finished_turn(&self.deps, turn, live.fence).await
            {
                tracing::warn!(session = %session_id, turn = %turn.id, error = %err, "cannot store the cancelled turn of a deleted session");
            }
            live.emit(
                Some(&turn.id),
                EventKind::TurnFinished {
                    turn: Box::new(turn.clone()),
                },
            );
        }
        live.emit(None, EventKind::SessionDeleted);
        live.clear_summary();
        // An idle driver sees `retired` now rather than after its idle time.
        live.wake.notify_one();
    }

    /// Stops every session's turn (call after cancelling `Deps::shutdown`): running
    /// turns end INTERRUPTED, queued ones stay queued and resume on the next start.
    /// Returns when every driver has stored its turn's end and stopped.
    pub async fn shutdown(&self) {
        for live in self.map().values() {
            if let Some(active) = &live.lock().active {
                active.cancel.cancel();
            }
        }
        self.drivers.close();
        self.drivers.wait().await;
        // Queued turns stay stored; another server takes them at its next heartbeat.
        if let Err(err) = self.ownership.leave().await {
            tracing::warn!(error = %err, "cannot leave the cluster cleanly; its leases expire instead");
        }
    }
}

/// Why a turn of a session moved to the trash ended.
fn deleted_error() -> TurnError {
    TurnError {
        reason: crate::domain::session::SESSION_DELETED.into(),
        message: "the session was moved to the trash".into(),
    }
}

fn finish_unstarted(turn: &mut Turn, status: TurnStatus, error: Option<TurnError>) {
    turn.status = status;
    turn.error = error;
    turn.end_time = Some(Timestamp::now());
}
